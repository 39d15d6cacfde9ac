"""Instagram professional accounts through the Instagram API with Instagram Login (graph.instagram.com): images,
carousels and Reels by containers fetched from the media host's public URLs (``adapter``; the container flow is
``bot.platforms.graph.containers``)."""

from bot.platforms.instagram.adapter import Instagram

__all__ = ["Instagram"]
