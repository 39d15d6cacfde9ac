"""Threads through the Threads API (graph.threads.net, its own ``v1.0``): text, images, videos, carousels by
containers, reposts of tracked tag mentions where the account has keyword search (``adapter``)."""

from bot.platforms.threads.adapter import Threads

__all__ = ["Threads"]
