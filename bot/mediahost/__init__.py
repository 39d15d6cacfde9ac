"""Media hosting: public, expiring URLs for platforms that fetch media themselves (Instagram, Threads).

``S3MediaHost`` implements ``bot.core.values.MediaHost`` over an S3-compatible bucket (AWS S3,
Cloudflare R2, Backblaze B2, MinIO) through boto3, configured by ``config/media_host.yaml``
(``bot.core.model.MediaHostSettings``; keys come from the environment variables it names). Objects are
keyed by content hash, so a file shared by 500 accounts is uploaded once; each publication that uses one
holds it through a marker object in the bucket, and ``release`` deletes the file when no marker is left
(the markers live in the bucket so that every worker, on any host, and a restarted one, sees them).
``probe`` is ``bot check --online``'s proof that the bucket is writable and its URLs fetchable.

Sits at the platforms' level: imports only ``bot.core``, ``bot.observability`` and ``bot.media``;
boto3 is imported when a host is built, so commands that never host media do not load it.
"""

from bot.mediahost.s3 import MediaHostRefused, MediaHostUnavailable, S3MediaHost, from_settings, probe

__all__ = ["MediaHostRefused", "MediaHostUnavailable", "S3MediaHost", "from_settings", "probe"]
