"""Bluesky sandbox: the reference AT Protocol servers (``bluesky_network``) behind our fault proxy.

Our fault-injecting proxy sits in front of the PDS and is the ``base_url`` accounts use (their
DID documents point at it, so the SDK keeps going through it). Our fake video service
(``bluesky_video``) runs beside them; accounts name it in their ``options: video_service``, so
their videos take the same road as on bsky.social. Sandbox helpers (accounts, ``post_as``,
``posts``) talk to the PDS directly, past the proxy.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

import requests

from bot.platforms.bluesky.text import build_facets, post_url
from sandboxes.base import Draft, Sandbox, SandboxAccount, ServerPost, env_name
from sandboxes.bluesky.network import BlueskyNetwork
from sandboxes.bluesky.video import VideoService
from sandboxes.proxy import FaultProxy

RESERVED = {"bot", "admin", "support", "help", "bsky", "atproto"}
SENSITIVE_LABEL = "graphic-media"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BlueskySandbox(Sandbox):
    platform = "bluesky"

    def __init__(
        self,
        *,
        appview: bool = True,
        rate_limits: bool = False,
        blob_limit: int = 100 * 1024 * 1024,
        startup_timeout: float = 90.0,
        video_polls: int = 1,
        **base: Any,
    ) -> None:
        """``base`` holds what every sandbox takes (latency, workdir)."""
        super().__init__(**base)
        self.appview = appview
        self.rate_limits = rate_limits  # the PDS's own limits (global per IP): off by default for bulk tests
        self.blob_limit = blob_limit
        self.startup_timeout = startup_timeout
        self.proxy = FaultProxy(latency=self.latency)
        self.video_polls = video_polls  # getJobStatus answers saying ENCODING before the COMPLETED one
        self.video: VideoService | None = None
        self.info: dict[str, Any] = {}  # the network's URLs: plc, pds, appview, control
        self.network: BlueskyNetwork | None = None
        self._http = requests.Session()
        self._accounts: dict[str, dict[str, str]] = {}  # handle -> {did, jwt}
        self._handles: dict[str, str] = {}  # did -> handle
        self._lock = threading.Lock()

    # ---- life cycle ----

    def start(self) -> None:
        self.proxy.start()
        self.network = BlueskyNetwork(
            appview=self.appview,
            rate_limits=self.rate_limits,
            blob_limit=self.blob_limit,
            startup_timeout=self.startup_timeout,
        )
        try:
            self.info = self.network.start(public_url=self.proxy.url)
            self.proxy.upstream = self.info["pds"]
            pds_did = self.xrpc("GET", "com.atproto.server.describeServer")["did"]
            self.video = VideoService(
                plc_url=self.info["plc"],
                pds_did=pds_did,
                max_bytes=self.blob_limit,
                processing_polls=self.video_polls,
                latency=self.latency,
            ).start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.video is not None:
            self.video.stop()
            self.video = None
        if self.network is not None:
            self.network.stop()
            self.network = None
        self.proxy.stop()
        self._http.close()

    @property
    def base_url(self) -> str:
        return self.proxy.url

    @property
    def pds_url(self) -> str:
        """The PDS itself, past the proxy (no faults, no latency, not in the request log)."""
        return self.info["pds"]

    # ---- XRPC helpers (direct to the PDS) ----

    def xrpc(
        self, method: str, nsid: str, *, jwt: str | None = None, params: dict | None = None, body: Any = None
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {jwt}"} if jwt else {}
        response = self._http.request(
            method, f"{self.pds_url}/xrpc/{nsid}", params=params, json=body, headers=headers, timeout=30
        )
        if response.status_code >= 400:
            raise RuntimeError(f"{nsid} -> {response.status_code} {response.text[:300]}")
        return response.json() if response.content else {}

    # ---- accounts and posts ----

    def create_account(self, name: str, *, display_name: str | None = None) -> SandboxAccount:
        base = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40] or "user"
        if base in RESERVED or len(base) < 3:  # the PDS refuses reserved and short (under 3) names
            base = f"{base}-account"
        with self._lock:
            handle, n = f"{base}.test", 1
            while handle in self._accounts:
                n += 1
                handle = f"{base}-{n}.test"
            self._accounts[handle] = {}
        password = f"pw-{base}-{n}-sandbox"
        created = self.xrpc(
            "POST",
            "com.atproto.server.createAccount",
            body={"handle": handle, "email": f"{base}-{n}@example.com", "password": password},
        )
        did, jwt = created["did"], created["accessJwt"]
        app = self.xrpc("POST", "com.atproto.server.createAppPassword", jwt=jwt, body={"name": "campaign-bot"})
        self.xrpc(
            "POST",
            "com.atproto.repo.putRecord",
            jwt=jwt,
            body={
                "repo": did,
                "collection": "app.bsky.actor.profile",
                "rkey": "self",
                "record": {"$type": "app.bsky.actor.profile", "displayName": display_name or name},
            },
        )
        with self._lock:
            self._accounts[handle] = {"did": did, "jwt": jwt}
            self._handles[did] = handle
        variable = env_name("bluesky", handle.removesuffix(".test"), "app_password")
        entry = {
            "platform": "bluesky",
            "base_url": self.base_url,
            "handle": handle,
            "credentials": {"app_password": variable},
        }
        if self.video is not None:
            entry["options"] = {"video_service": self.video.url}
        return SandboxAccount(id=name, handle=handle, entry=entry, env={variable: app["password"]})

    def did_of(self, account: SandboxAccount) -> str:
        return self._accounts[account.handle]["did"]

    def _strong_ref(self, uri: str) -> dict[str, str]:
        repo, collection, rkey = uri.removeprefix("at://").split("/")
        got = self.xrpc(
            "GET", "com.atproto.repo.getRecord", params={"repo": repo, "collection": collection, "rkey": rkey}
        )
        return {"uri": got["uri"], "cid": got["cid"], "record": got["value"]}

    def _post_as(self, account: SandboxAccount, draft: Draft) -> str:
        me = self._accounts[account.handle]
        if draft.reshare_of:
            ref = self._strong_ref(draft.reshare_of)
            record: dict[str, Any] = {
                "$type": "app.bsky.feed.repost",
                "subject": {"uri": ref["uri"], "cid": ref["cid"]},
                "createdAt": _now(),
            }
            collection = "app.bsky.feed.repost"
        else:
            record = {
                "$type": "app.bsky.feed.post",
                "text": draft.text,
                "createdAt": _now(),
                "facets": build_facets(draft.text, self._resolve_handle),
            }
            if draft.reply_to:
                parent = self._strong_ref(draft.reply_to)
                root = parent["record"].get("reply", {}).get("root") or {"uri": parent["uri"], "cid": parent["cid"]}
                record["reply"] = {"root": root, "parent": {"uri": parent["uri"], "cid": parent["cid"]}}
            # Bluesky has no content-warning text: a spoiler becomes a self-label, as the official app does.
            if draft.sensitive or draft.spoiler_text:
                record["labels"] = {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": SENSITIVE_LABEL}]}
            if draft.card_title:
                record["embed"] = {
                    "$type": "app.bsky.embed.external",
                    "external": {"uri": "https://example.org/", "title": draft.card_title, "description": ""},
                }
            collection = "app.bsky.feed.post"
        made = self.xrpc(
            "POST",
            "com.atproto.repo.createRecord",
            jwt=me["jwt"],
            body={"repo": me["did"], "collection": collection, "record": record},
        )
        return made["uri"]

    def delete_as(self, account: SandboxAccount, remote_id: str) -> None:
        me = self._accounts[account.handle]
        _, _, rest = remote_id.partition("at://")
        did, collection, rkey = rest.split("/", 2)
        body = {"repo": did, "collection": collection, "rkey": rkey}
        self.xrpc("POST", "com.atproto.repo.deleteRecord", jwt=me["jwt"], body=body)

    def _resolve_handle(self, handle: str) -> str | None:
        try:
            return self.xrpc("GET", "com.atproto.identity.resolveHandle", params={"handle": handle})["did"]
        except RuntimeError:
            return None

    def _handle(self, did: str) -> str:
        if did not in self._handles:
            self._handles[did] = self.xrpc("GET", "com.atproto.repo.describeRepo", params={"repo": did})["handle"]
        return self._handles[did]

    def records(self, did: str, collection: str) -> list[dict[str, Any]]:
        """Every record of ``collection`` in ``did``'s repository, as the PDS holds it."""
        out, cursor = [], None
        while True:
            page = self.xrpc(
                "GET",
                "com.atproto.repo.listRecords",
                params={"repo": did, "collection": collection, "limit": 100, "cursor": cursor},
            )
            out.extend(page.get("records", []))
            cursor = page.get("cursor")
            if not cursor or not page.get("records"):
                return out

    def posts(self, account: SandboxAccount | None = None) -> list[ServerPost]:
        if account is not None:
            dids = [self.did_of(account)]
        else:
            dids = [
                repo["did"] for repo in self.xrpc("GET", "com.atproto.sync.listRepos", params={"limit": 1000})["repos"]
            ]
        found: list[tuple[str, ServerPost]] = []
        for did in dids:
            handle = self._handle(did)
            for rec in self.records(did, "app.bsky.feed.post"):
                found.append((rec["value"].get("createdAt", ""), self._server_post(did, handle, rec)))
            for rec in self.records(did, "app.bsky.feed.repost"):
                found.append(
                    (
                        rec["value"].get("createdAt", ""),
                        ServerPost(
                            remote_id=rec["uri"],
                            author=handle,
                            text="",
                            url=post_url(handle, rec["uri"]),
                            reshare_of=rec["value"]["subject"]["uri"],
                        ),
                    )
                )
        return [post for _, post in sorted(found, key=lambda item: item[0])]

    def _server_post(self, did: str, handle: str, rec: dict[str, Any]) -> ServerPost:
        value = rec["value"]
        embed = value.get("embed") or {}
        media: list[dict[str, Any]] = []
        for image in embed.get("images", []):
            media.append(
                {
                    "kind": "image",
                    "alt": image.get("alt", ""),
                    "bytes": image["image"]["size"],
                    "mime": image["image"]["mimeType"],
                    "aspect_ratio": image.get("aspectRatio"),
                }
            )
        if embed.get("$type") == "app.bsky.embed.video":
            media.append(
                {
                    "kind": "video",
                    "alt": embed.get("alt", ""),
                    "bytes": embed["video"]["size"],
                    "mime": embed["video"]["mimeType"],
                    "captions": [{"lang": c["lang"], "bytes": c["file"]["size"]} for c in embed.get("captions", [])],
                }
            )
        labels = (value.get("labels") or {}).get("values") or []
        return ServerPost(
            remote_id=rec["uri"],
            author=handle,
            text=value.get("text", ""),
            url=post_url(handle, rec["uri"]),
            media=media,
            reply_to=(value.get("reply") or {}).get("parent", {}).get("uri"),
            sensitive=bool(labels),
        )

    # ---- faults, request log, indexing ----

    def fail_next(
        self, fault: str, *, count: int = 1, retry_after: float | None = None, path: str | None = None
    ) -> None:
        """Faults for ``app.bsky.video.*`` paths go to the video service, the rest to the PDS's proxy."""
        if path and "app.bsky.video" in path and self.video is not None:
            self.video.fail_next(fault, count=count, retry_after=retry_after, path=path)
        else:
            self.proxy.fail_next(fault, count=count, retry_after=retry_after, path=path)

    def clear_faults(self) -> None:
        self.proxy.clear_faults()
        if self.video is not None:
            self.video.clear_faults()

    def restore_defaults(self) -> None:
        """Drop pending faults and put the video service's processing polls back, between tests."""
        self.clear_faults()
        if self.video is not None:
            self.video.set_processing_polls(self.video_polls)

    def requests(self) -> list[dict[str, Any]]:
        """The PDS's request log (through the proxy); ``video_requests`` holds the video service's."""
        return self.proxy.requests()

    def video_requests(self) -> list[dict[str, Any]]:
        return self.video.requests() if self.video is not None else []

    def index(self) -> None:
        response = self._http.post(f"{self.info['control']}/process-all", timeout=60)
        response.raise_for_status()
