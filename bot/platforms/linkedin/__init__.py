"""LinkedIn organization pages (Community Management API): posts, images, videos and reshares over plain requests.

``client`` is a small typed client for the endpoints we use (the official ``linkedin-api-client`` 0.3.0 dates
from 2023 and covers none of the Images or Videos flows we need), ``text`` the "little text" escaping of
commentary, ``errors`` what LinkedIn's answers mean for the bot, ``adapter`` the Platform itself.
"""

from bot.platforms.linkedin.adapter import LinkedIn

__all__ = ["LinkedIn"]
