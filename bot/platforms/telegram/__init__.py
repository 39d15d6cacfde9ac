"""Telegram channels (Bot API): pyTelegramBotAPI's TeleBot, HTML-escaped texts, albums, pacing within the flood
limits per bot token counting each message from its send until its answer plus the window (``pacing``), notes
instead of read-back for exactly-once (``adapter``, ``errors``), and ``bot check --online``'s check that the bot
may post in each channel (``online``)."""

from bot.platforms.telegram.adapter import Telegram

__all__ = ["Telegram"]
