"""Telegram channels (Bot API): pyTelegramBotAPI's TeleBot, HTML-escaped texts, albums, pacing within the flood
limits per bot token (``pacing``), and notes instead of read-back for exactly-once (``adapter``, ``errors``)."""

from bot.platforms.telegram.adapter import Telegram

__all__ = ["Telegram"]
