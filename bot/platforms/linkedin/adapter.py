"""LinkedIn organization pages: the Platform hooks over ``client``.

Exactly once without an idempotency key: LinkedIn answers a retry of identical content with 422 naming the
post it duplicates, which we record as the publication; after an unknown outcome we read the page's recent
posts back and match our commentary; a token that may not read (no r_organization_social) makes that
``OutcomeUnknown``, for a person to decide. A post LinkedIn accepted is never sent again.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bot.core.errors import (
    BotError,
    ContentRejected,
    DuplicateContent,
    NotFound,
    OutcomeUnknown,
    PermanentError,
    PlatformUnavailable,
)
from bot.core.values import AccountLike, Identity, Limits, Mention, MentionPage, Outgoing, Progress, Receipt
from bot.platforms.base import Platform
from bot.platforms.linkedin import text as little
from bot.platforms.linkedin.errors import LinkedInHTTPError, duplicate_of, map_error

if TYPE_CHECKING:
    from bot.platforms.linkedin.client import LinkedInClient

MB = 1024 * 1024
# Versions are YYYYMM and each lives about a year (https://learn.microsoft.com/en-us/linkedin/marketing/versioning).
DEFAULT_VERSION = "202605"
VERSION_WARN_MONTHS = 10
RECONCILE_COUNT = 50  # recent posts read back after an unknown outcome: far more than a page posts between retries
VIDEO_POLL = 5.0  # seconds between status reads while LinkedIn processes a video
VIDEO_WAIT = 600.0  # then the attempt gives up (retryable: the video's URN is in the notes, nothing is re-uploaded)
REFRESH_BEFORE = 10 * 86400.0  # refresh a token this close to expiry, before the worker's 7-day warning
NOTE_VIDEO = "linkedin.video"
NOTE_IMAGES = "linkedin.images"
NOTE_SENT = "linkedin.sent_at"  # the post request of this publication may have reached LinkedIn
_VERSION = re.compile(r"^20\d\d(0[1-9]|1[0-2])$")
_URN = re.compile(r"urn:li:(?:share|ugcPost):\d+")


def organization_urn(handle: str | None) -> str:
    """``urn:li:organization:{id}`` from an account's handle (the page's numeric id, or its URN)."""
    value = (handle or "").strip()
    return value if value.startswith("urn:li:organization:") else f"urn:li:organization:{value}"


def post_url(urn: str) -> str:
    """The public URL of a post (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api:
    "View URL Structure")."""
    return f"https://www.linkedin.com/feed/update/{urn}/"


def post_urn(reference: str) -> str | None:
    """The share or ugcPost URN in a LinkedIn post URL or URN, or None (reshareContext.parent takes only these)."""
    found = _URN.search(reference.replace("%3A", ":"))
    return found.group(0) if found else None


def version_age_months(version: str, today: date) -> int:
    return (today.year - int(version[:4])) * 12 + today.month - int(version[4:6])


def comparable(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def srt_from_vtt(vtt: str) -> str:
    """SubRip from WebVTT: LinkedIn's captions upload takes SRT (Videos API, ``captionsUploadUrl``)."""
    cues, number = [], 0
    for block in re.split(r"\n\s*\n", vtt.replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        at = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if at is None:
            continue  # the WEBVTT header, NOTE and STYLE blocks
        start, _, end = lines[at].partition("-->")
        number += 1
        times = [_srt_time(t.split()[0]) for t in (start, end)]
        cues.append(f"{number}\n{times[0]} --> {times[1]}\n" + "\n".join(lines[at + 1 :]))
    return "\n\n".join(cues) + "\n"


def _srt_time(value: str) -> str:
    parts = value.strip().replace(",", ".").split(":")
    if len(parts) == 2:
        parts.insert(0, "00")
    return f"{int(parts[0]):02d}:{parts[1]}:{parts[2].replace('.', ',')}"


class LinkedIn(Platform):
    name: ClassVar[str] = "linkedin"
    default_base_url: ClassVar[str] = "https://api.linkedin.com"
    oauth_base_url: ClassVar[str] = "https://www.linkedin.com"
    required_credentials: ClassVar[tuple[str, ...]] = ("access_token",)
    # Token introspection and refresh need the app's id and secret; refresh tokens only approved partners have.
    optional_credentials: ClassVar[tuple[str, ...]] = ("client_id", "client_secret", "refresh_token")
    needs_handle: ClassVar[bool] = True  # the organization's numeric id (or its URN)
    supports_tracking: ClassVar[bool] = False  # no hashtag search on LinkedIn: only scheduled reshares
    limits: ClassVar[Limits] = Limits(
        max_text=3000,  # commentary (Posts API)
        max_images=20,  # multiImage takes 2 to 20 (Multi-Image API)
        # The Images API states a pixel limit (36,152,320), not bytes: this is a conservative source cap.
        image_max_bytes=8 * MB,
        image_formats=frozenset({"PNG", "JPEG", "GIF"}),  # Images API: JPG, GIF, PNG
        video_max_bytes=500 * MB,  # Videos API: 75 KB to 500 MB, MP4, 3 s to 30 min
        video_max_seconds=1800.0,
        video_formats=frozenset({"mp4"}),
        alt_max=4086,  # Posts API, altText
        captions=True,
    )

    def __init__(
        self,
        account: AccountLike,
        secrets: Mapping[str, str],
        *,
        sleep: Callable[[float], None] = time.sleep,
        **base: Any,
    ) -> None:
        """``base`` holds the options every Platform takes (timeout, wall, state_dir, media_host)."""
        super().__init__(account, secrets, **base)
        self._sleep = sleep
        self.version = str(account.options.get("linkedin_version") or DEFAULT_VERSION)
        self.author = organization_urn(account.handle)
        # A sandbox (any configured base_url) serves OAuth too; LinkedIn's is on www.linkedin.com.
        default_oauth = self.base_url if account.base_url else self.oauth_base_url
        self.oauth_url = str(account.options.get("oauth_base_url") or default_oauth)
        self._client_instance: LinkedInClient | None = None

    # ---- offline checks ----

    @classmethod
    def option_problems(cls, base_url: str | None, options: Mapping[str, Any]) -> dict[str, str]:
        """``bot check``: the pinned version must read YYYYMM."""
        version = options.get("linkedin_version")
        if version is not None and not _VERSION.match(str(version)):
            return {
                "linkedin_version": f"'{version}' is not a LinkedIn API version (expected YYYYMM, like {DEFAULT_VERSION})"
            }
        return {}

    @classmethod
    def option_warnings(cls, options: Mapping[str, Any], today: date) -> dict[str, str]:
        """``bot check``: a pinned version over 10 months old is close to its sunset (then every call answers 426)."""
        version = str(options.get("linkedin_version") or DEFAULT_VERSION)
        if not _VERSION.match(version):
            return {}
        months = version_age_months(version, today)
        if months > VERSION_WARN_MONTHS:
            return {
                "linkedin_version": f"LinkedIn API version {version} is {months} months old; LinkedIn sunsets versions "
                f"after about a year: test a newer one and set options.linkedin_version"
            }
        return {}

    @classmethod
    def reshare_of_refusal(cls, reference: str) -> str | None:
        """``bot check``: a post's ``reshare_of`` must name a share or ugcPost (reshareContext.parent takes no other)."""
        if post_urn(reference) is None:
            return (
                f"'{reference}' names no LinkedIn post (expected its URL, like "
                "https://www.linkedin.com/feed/update/urn:li:share:7123/, or its URN urn:li:share:7123 or urn:li:ugcPost:7123)"
            )
        return None

    @classmethod
    def media_refusals(cls, images: Sequence[Any], video: Any | None) -> list[tuple[tuple[str | int, ...], str]]:
        """Videos API (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/videos-api):
        a video lasts 3 seconds to 30 minutes (the upper bound is in ``limits``)."""
        if video is not None and video.duration is not None and video.duration < 3:
            return [(("video",), f"lasts {video.duration:.1f} s; linkedin takes videos of 3 s to 30 minutes")]
        return []

    def validate(self, out: Outgoing) -> None:
        super().validate(out)
        for item in out.images:
            if len(item.alt) > self.limits.alt_max:
                raise ContentRejected(f"{item.path.name}: alt text over {self.limits.alt_max} characters")

    # ---- the client ----

    @property
    def _client(self) -> LinkedInClient:
        if self._client_instance is None:
            from bot.platforms.linkedin.client import LinkedInClient  # requests loads only when LinkedIn is used

            self._client_instance = LinkedInClient(
                self.base_url,
                self.oauth_url,
                self._secret("access_token"),
                version=self.version,
                timeout=self.timeout,
            )
        return self._client_instance

    def close(self) -> None:
        if self._client_instance is not None:
            self._client_instance.close()

    def _map_error(self, exc: Exception) -> BotError:
        mapped = map_error(exc, self.account, version=self.version, wall=self._wall, secrets=self._secrets.values())
        return mapped if mapped is not None else self._unavailable(exc)

    # ---- publishing ----

    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt:
        if out.reshare_of and (out.images or out.video):
            raise ContentRejected("a linkedin reshare carries commentary only, no images or video")
        content = self._content(out, progress)
        body: dict[str, Any] = {**self._envelope(out.text), **content}
        if out.reshare_of:
            parent = post_urn(out.reshare_of)
            if parent is None:
                raise ContentRejected(f"{out.reshare_of!r} names no LinkedIn share or ugcPost")
            body["reshareContext"] = {"parent": parent}
        # Noted (durably) before the request leaves: a 422 duplicate is ours only if this publication sent before.
        sent_before = out.notes.get(NOTE_SENT)
        out.notes.put(NOTE_SENT, datetime.fromtimestamp(self._wall(), UTC).isoformat())
        return self._create(body, ours=bool(sent_before))

    def _envelope(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "author": self.author,
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if text.strip():
            body["commentary"] = little.escape(text)
        return body

    def _create(self, body: dict[str, Any], *, ours: bool = True) -> Receipt:
        try:
            urn = self._client.create_post(body)
        except LinkedInHTTPError as exc:
            existing = duplicate_of(exc)
            if existing is None:
                raise
            if not ours:
                # First attempt of this publication: the page already had these words (another publication, or
                # staff by hand). Recording that post would claim a publication that never happened.
                raise DuplicateContent(
                    f"linkedin refused the post as a duplicate of {existing} (the page already has this text)"
                ) from exc
            # Our own earlier attempt went out (its answer was lost): that post is the publication.
            self.log.info("duplicate_recorded", remote_id=existing, url=post_url(existing))
            return Receipt(existing, post_url(existing))
        return Receipt(urn, post_url(urn))

    def _content(self, out: Outgoing, progress: Progress | None) -> dict[str, Any]:
        if out.video is not None:
            video = self._video(out, progress)
            return {"content": {"media": {"id": video, "altText": out.video.alt}}}
        if not out.images:
            return {}
        urns = self._images(out, progress)
        items = [{"id": urn, "altText": image.alt} for urn, image in zip(urns, out.images, strict=True)]
        if len(items) == 1:
            return {"content": {"media": items[0]}}
        return {"content": {"multiImage": {"images": items}}}

    def _images(self, out: Outgoing, progress: Progress | None) -> list[str]:
        noted = out.notes.get(NOTE_IMAGES)
        if noted:
            urns = json.loads(noted)
            if isinstance(urns, list) and len(urns) == len(out.images):
                return [str(u) for u in urns]
        urns, total = [], sum(i.path.stat().st_size for i in out.images)
        sent = 0
        for image in out.images:
            url, urn = self._client.initialize_image(self.author)
            data = image.path.read_bytes()
            self._client.upload(url, data)
            urns.append(urn)
            sent += len(data)
            if progress:
                progress(sent, total)
        out.notes.put(NOTE_IMAGES, json.dumps(urns))
        return urns

    def _video(self, out: Outgoing, progress: Progress | None) -> str:
        assert out.video is not None
        noted = out.notes.get(NOTE_VIDEO)
        if noted:
            try:
                status = self._client.video_status(noted)
            except LinkedInHTTPError as exc:
                if exc.status != 404:
                    raise
                status = "GONE"
            if status in ("AVAILABLE", "PROCESSING"):
                self.log.info("video_reused", video=noted, status=status)
                return self._await_video(noted)
        video_path = out.video.path
        size = video_path.stat().st_size
        captions = out.video.captions
        upload = self._client.initialize_video(self.author, size, captions=captions is not None)
        # Noted before any byte goes: after a crash the retry asks LinkedIn about this video instead of guessing.
        out.notes.put(NOTE_VIDEO, upload.video)
        etags: list[str] = []
        with video_path.open("rb") as file:
            for url, first, last in upload.parts:
                file.seek(first)
                etags.append(self._client.upload(url, file.read(last - first + 1)))
                if progress:
                    progress(last + 1, size)
        if captions is not None and upload.captions_url:
            srt = srt_from_vtt(captions.read_text(encoding="utf-8"))
            self._client.upload(upload.captions_url, srt.encode("utf-8"), "application/x-subrip")
        self._client.finalize_video(upload.video, upload.upload_token, etags)
        return self._await_video(upload.video)

    def _await_video(self, video: str) -> str:
        """Poll until LinkedIn says AVAILABLE (a post naming a video still processing is refused), bounded."""
        waited = 0.0
        while (status := self._client.video_status(video)) != "AVAILABLE":
            if status == "PROCESSING_FAILED":
                raise ContentRejected(f"linkedin could not process video {video}")
            if waited >= VIDEO_WAIT:
                raise PlatformUnavailable(f"linkedin still processing video {video} after {waited:.0f}s")
            self._sleep(VIDEO_POLL)
            waited += VIDEO_POLL
        return video

    # ---- reconciling ----

    def _find_published(self, out: Outgoing) -> Receipt | None:
        try:
            elements = self._client.posts_by_author(self.author, RECONCILE_COUNT)
        except LinkedInHTTPError as exc:
            if exc.status != 403:
                raise
            raise OutcomeUnknown(
                f"linkedin: account {self.account.id} cannot read its page's posts back (the token lacks "
                f"r_organization_social), so whether publication {out.key} went out is unknown; it is not sent again"
            ) from exc
        want = comparable(out.text)
        parent = post_urn(out.reshare_of) if out.reshare_of else None
        for element in elements:
            said = comparable(little.unescape(str(element.get("commentary") or "")))
            shared = (element.get("reshareContext") or {}).get("parent")
            if said == want and shared == parent and element.get("id"):
                urn = str(element["id"])
                return Receipt(urn, post_url(urn))
        return None

    # ---- resharing ----

    def _reshare(self, mention: Mention) -> Receipt:
        parent = post_urn(mention.remote_id) or post_urn(mention.url)
        if parent is None:
            raise NotFound(f"{mention.remote_id!r} is not a LinkedIn share or ugcPost URN")
        return self._create({**self._envelope(""), "reshareContext": {"parent": parent}})

    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        raise PermanentError("linkedin has no hashtag search: LinkedIn accounts cannot track hashtags")

    def _whoami(self) -> Identity:
        org_id = self.author.rsplit(":", 1)[-1]
        data = self._client.organization(org_id)
        return Identity(id=self.author, handle=str(data.get("id") or org_id))

    # ---- tokens ----

    def credentials_expire_at(self) -> datetime | None:
        """From token introspection (needs client_id and client_secret); refreshes first when a refresh token allows."""
        client_id, client_secret = self._secrets.get("client_id"), self._secrets.get("client_secret")
        if not (client_id and client_secret):
            return None  # LinkedIn answers introspection only to the app that issued the token
        info = self._guarded("introspect", ("read",), lambda: self._client.introspect(client_id, client_secret))
        expires = info.get("expires_at")
        if not info.get("active", True) or not isinstance(expires, (int, float)):
            return datetime.fromtimestamp(self._wall(), UTC)  # already unusable: warn now
        refresh = self._secrets.get("refresh_token")
        if refresh and expires - self._wall() < REFRESH_BEFORE:
            answer = self._guarded(
                "refresh_token", ("read",), lambda: self._client.refresh(client_id, client_secret, refresh)
            )
            from bot.observability.redaction import register_secret

            token = str(answer["access_token"])
            register_secret(token)
            self._client.token = self._secrets["access_token"] = token
            expires = self._wall() + float(answer.get("expires_in", 0))
            # In memory only: a restarted worker refreshes again from the same refresh token (valid a year).
            self.log.info("token_refreshed", expires_at=datetime.fromtimestamp(expires, UTC).isoformat())
        return datetime.fromtimestamp(expires, UTC)
