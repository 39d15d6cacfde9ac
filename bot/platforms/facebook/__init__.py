"""Facebook Pages through the Graph API: text and links, photos with alt text, videos by resumable upload with
captions, vertical videos as Reels; reconciled by reading the Page's published posts back (``adapter``)."""

from bot.platforms.facebook.adapter import Facebook

__all__ = ["Facebook"]
