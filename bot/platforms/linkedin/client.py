"""A small typed client for the LinkedIn REST endpoints the adapter uses, over one requests ``Session``.

Every call carries the pinned ``LinkedIn-Version`` (YYYYMM) and ``X-Restli-Protocol-Version: 2.0.0``, which
every versioned API requires
(https://learn.microsoft.com/en-us/linkedin/marketing/versioning). A non-2xx answer raises ``LinkedInHTTPError``
with what LinkedIn said; transport errors are requests' own. ``errors.map_error`` turns both into bot errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from bot.platforms.base import environment_read_once
from bot.platforms.linkedin.errors import LinkedInHTTPError

RESTLI = "2.0.0"


@dataclass(frozen=True)
class VideoUpload:
    """``initializeUpload``'s answer for a video: its URN, one upload URL per byte range, the captions URL."""

    video: str
    parts: list[tuple[str, int, int]]  # (upload URL, first byte, last byte), in order
    upload_token: str
    captions_url: str | None


class LinkedInClient:
    """One account's calls; ``on_answer`` sees every API response (rate headers), before errors are raised."""

    def __init__(
        self,
        api_url: str,
        oauth_url: str,
        token: str,
        *,
        version: str,
        timeout: float,
        on_answer: Callable[[requests.Response], None] = lambda r: None,
    ) -> None:
        self.api_url, self.oauth_url = api_url.rstrip("/"), oauth_url.rstrip("/")
        self.token, self.version, self.timeout = token, version, timeout
        self._on_answer = on_answer
        self.session = environment_read_once(requests.Session())

    def close(self) -> None:
        self.session.close()

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "LinkedIn-Version": self.version,
            "X-Restli-Protocol-Version": RESTLI,
        }

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        # Rest.li keys and finder values are URNs: the query is encoded by hand so ':' stays as LinkedIn shows it.
        query = "&".join(f"{k}={quote(v, safe=':(),')}" for k, v in (params or {}).items())
        url = f"{self.api_url}{path}{'?' + query if query else ''}"
        response: requests.Response = self.session.request(
            method, url, json=json, headers={**self._headers(), **(headers or {})}, timeout=self.timeout
        )
        self._on_answer(response)
        if not 200 <= response.status_code < 300:
            raise LinkedInHTTPError(method, path, response)
        return response

    # ---- posts (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api) ----

    def create_post(self, body: Mapping[str, Any]) -> str:
        """The new post's URN, from the ``x-restli-id`` header of the 201."""
        response = self.call("POST", "/rest/posts", json=body)
        urn = response.headers.get("x-restli-id") or response.headers.get("x-linkedin-id") or ""
        if not urn:
            raise LinkedInHTTPError("POST", "/rest/posts", response)
        return urn

    def posts_by_author(self, author: str, count: int) -> list[dict[str, Any]]:
        """The author's latest posts, newest first (the ``author`` finder; needs r_organization_social)."""
        response = self.call(
            "GET",
            "/rest/posts",
            params={"author": author, "q": "author", "count": str(count), "sortBy": "CREATED"},
            headers={"X-RestLi-Method": "FINDER"},
        )
        elements = response.json().get("elements", [])
        return [e for e in elements if isinstance(e, dict)]

    def organization(self, org_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", f"/rest/organizations/{quote(org_id)}").json()
        return data

    # ---- images (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/images-api) ----

    def initialize_image(self, owner: str) -> tuple[str, str]:
        """(upload URL, image URN) for one image owned by ``owner``."""
        body = {"initializeUploadRequest": {"owner": owner}}
        value = self.call("POST", "/rest/images", params={"action": "initializeUpload"}, json=body).json()["value"]
        return str(value["uploadUrl"]), str(value["image"])

    # ---- videos (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/videos-api) ----

    def initialize_video(self, owner: str, size: int, *, captions: bool) -> VideoUpload:
        body = {
            "initializeUploadRequest": {
                "owner": owner,
                "fileSizeBytes": size,
                "uploadCaptions": captions,
                "uploadThumbnail": False,
            }
        }
        value = self.call("POST", "/rest/videos", params={"action": "initializeUpload"}, json=body).json()["value"]
        parts = [(str(p["uploadUrl"]), int(p["firstByte"]), int(p["lastByte"])) for p in value["uploadInstructions"]]
        return VideoUpload(
            str(value["video"]), parts, str(value.get("uploadToken") or ""), value.get("captionsUploadUrl")
        )

    def finalize_video(self, video: str, upload_token: str, etags: list[str]) -> None:
        body = {"finalizeUploadRequest": {"video": video, "uploadToken": upload_token, "uploadedPartIds": etags}}
        self.call("POST", "/rest/videos", params={"action": "finalizeUpload"}, json=body)

    def video_status(self, video: str) -> str:
        """WAITING_UPLOAD, PROCESSING, AVAILABLE or PROCESSING_FAILED."""
        return str(self.call("GET", f"/rest/videos/{quote(video, safe='')}").json().get("status", ""))

    def upload(self, url: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """PUT bytes to an upload URL LinkedIn gave; the answer's ETag (a video part's id for finalizing)."""
        headers = {"Content-Type": content_type}
        # The token goes only to LinkedIn (or to the host we were configured with), never to a third host.
        host = urlsplit(url).hostname or ""
        if host.endswith("linkedin.com") or host == urlsplit(self.api_url).hostname:
            headers["Authorization"] = f"Bearer {self.token}"
        response = self.session.put(url, data=data, headers=headers, timeout=self.timeout)
        self._on_answer(response)
        if not 200 <= response.status_code < 300:
            raise LinkedInHTTPError("PUT", urlsplit(url).path, response)
        return str(response.headers.get("ETag", ""))

    # ---- tokens (https://learn.microsoft.com/en-us/linkedin/shared/authentication/token-introspection,
    #      https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens) ----

    def introspect(self, client_id: str, client_secret: str) -> dict[str, Any]:
        form = {"client_id": client_id, "client_secret": client_secret, "token": self.token}
        return self._oauth("/oauth/v2/introspectToken", form)

    def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> dict[str, Any]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        return self._oauth("/oauth/v2/accessToken", form)

    def _oauth(self, path: str, form: Mapping[str, str]) -> dict[str, Any]:
        response = self.session.post(f"{self.oauth_url}{path}", data=dict(form), timeout=self.timeout)
        if not 200 <= response.status_code < 300:
            raise LinkedInHTTPError("POST", path, response)
        data: dict[str, Any] = response.json()
        return data
