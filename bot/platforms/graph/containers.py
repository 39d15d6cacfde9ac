"""Instagram's and Threads' container flow, exactly once without an idempotency key.

Create a container (Instagram and Threads fetch the media from a public URL), keep its id in the publication's
notes, poll its status until FINISHED (bounded, on the adapter's injected sleep), then publish it. After a crash
or a lost answer, the container's status decides (content publishing guide,
https://developers.facebook.com/docs/instagram-platform/content-publishing/ and
https://developers.facebook.com/docs/threads/posts): PUBLISHED means it went out (record it, never publish
again); FINISHED or IN_PROGRESS means publish that same container; ERROR or EXPIRED (24 hours) means make a new
one. The container id is written before ``*_publish`` is called, so a crash at any point leaves either an
unpublished container (harmless: it expires) or a published one the next attempt finds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bot.core.errors import ContentRejected, PermanentError, PlatformUnavailable, RateLimited
from bot.core.values import Outgoing, Progress, Receipt
from bot.platforms.graph.adapter import GraphPlatform
from bot.platforms.graph.client import GraphApiError

POLLS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # then every 30 s
MAX_WAIT = 300.0  # Threads: "up to 5 minutes"; Instagram: "once per minute for no more than 5 minutes"
CONTAINER = "container"
MEDIA = "media"


@dataclass(frozen=True)
class Product:
    create_edge: str
    publish_edge: str
    status_field: str
    list_edge: str
    text_field: str
    limit_edge: str
    expects: str  # what the platform wants at a media URL, for error messages
    image: Mapping[str, str]  # what an image container's parameters add to its text (or carousel flag) and alt text
    video: Mapping[str, str]  # what a video container's parameters add to its text (and alt text, where taken)


INSTAGRAM = Product(
    "media",
    "media_publish",
    "status_code",
    "media",
    "caption",
    "content_publishing_limit",
    "a JPEG image or MP4 video",
    image={},
    video={"media_type": "REELS", "share_to_feed": "true"},
)
THREADS = Product(
    "threads",
    "threads_publish",
    "status",
    "threads",
    "text",
    "threads_publishing_limit",
    "a JPEG/PNG image or MP4",
    image={"media_type": "IMAGE"},
    video={"media_type": "VIDEO"},
)


class ContainerFlow:
    def __init__(self, adapter: GraphPlatform, product: Product, max_wait: float = MAX_WAIT) -> None:
        self.adapter, self.product, self.max_wait = adapter, product, max_wait
        self.client, self.log = adapter.client, adapter.log

    # ---- publishing ----

    def stage(self, out: Outgoing, create: Callable[[], str]) -> bool:
        """Before the slot: make the container now, so Instagram or Threads fetch and process the media ahead and
        only ``*_publish`` is left for the slot. The id is kept by the adapter (the ledger row may not exist yet)
        until ``publish`` moves it into the publication's notes; one a dead worker leaves behind expires unused."""
        if out.notes.get(CONTAINER) is not None or out.key in self.adapter.staged:
            return False
        self.check_quota()
        self.adapter.staged[out.key] = create()
        self.log.info("container_staged", container=self.adapter.staged[out.key])
        return True

    def publish(self, out: Outgoing, create: Callable[[], str]) -> Receipt:
        """Publish ``out`` once: resume the container in its notes if it can still go out, else ``create`` one."""
        cid = out.notes.get(CONTAINER)
        if cid is None and (staged := self.adapter.staged.pop(out.key, None)) is not None:
            out.notes.put(CONTAINER, staged)  # from here on a crash is reconciled by this id, like any other
            cid = staged
        if cid is not None:
            status = self.status(cid)
            if status == "PUBLISHED":
                self.log.info("container_found_published", container=cid)
                return self.recorded(out, cid)
            if status in ("FINISHED", "IN_PROGRESS"):
                self.log.info("container_resumed", container=cid, status=status)
            else:
                self.log.info("container_replaced", container=cid, status=status)
                cid = None
        for attempt in (1, 2):
            if cid is None:
                self.check_quota()
                cid = create()
                out.notes.put(CONTAINER, cid)  # before publishing: a crash from here on is reconciled by this id
            status = self.wait(cid)
            if status == "FINISHED":
                break
            detail = self.detail(cid)
            self.log.warning("container_failed", container=cid, status=status, detail=detail, attempt=attempt)
            if attempt == 2:
                raise ContentRejected(f"{self.adapter.name} could not process the media twice ({status}: {detail})")
            cid = None  # one new container, with fresh media URLs
        assert cid is not None  # the loop breaks only on a FINISHED container
        try:
            answer = self.client.post(f"me/{self.product.publish_edge}", {"creation_id": cid}, write=True)
        except GraphApiError as exc:
            if exc.code in (4, 17, 32, 613) or exc.status >= 500 or exc.transient:
                raise  # the base maps it; the container in the notes is resumed on the retry
            # Refused: check whether it is out after all (a second publish of a published container is refused).
            if self.status(cid) == "PUBLISHED":
                return self.recorded(out, cid)
            raise
        media_id = str(answer["id"])
        out.notes.put(MEDIA, media_id)
        return self.receipt(media_id)

    def find(self, out: Outgoing) -> Receipt | None:
        """The post made from ``out``'s container, if it went out; None when it surely did not (yet)."""
        cid = out.notes.get(CONTAINER)
        if cid is None:
            return None  # no container was ever made for it, so nothing can have been published
        return self.recorded(out, cid) if self.status(cid) == "PUBLISHED" else None

    def recorded(self, out: Outgoing, cid: str) -> Receipt:
        """The receipt of a container known to be PUBLISHED whose publish answer we may not have read."""
        media_id = out.notes.get(MEDIA)
        if media_id is not None:
            return self.receipt(media_id)
        wanted = self.adapter._comparable(out.text)
        answer = self.client.get(
            f"me/{self.product.list_edge}", {"fields": f"id,{self.product.text_field},permalink,timestamp", "limit": 50}
        )
        matches = [
            d
            for d in self.adapter._data(answer)
            if self.adapter._comparable(str(d.get(self.product.text_field) or "")) == wanted
        ]
        if matches:
            found = matches[-1]  # newest first: the oldest match is the earliest post, made from this container
            out.notes.put(MEDIA, str(found["id"]))
            return Receipt(remote_id=str(found["id"]), url=str(found.get("permalink") or ""))
        # Published (the container says so) but not among the recent posts: the container id stands in for the
        # post's id, so the publication is recorded and never sent again.
        self.log.warning("published_media_not_listed", container=cid)
        return Receipt(remote_id=f"container:{cid}", url="")

    def receipt(self, media_id: str) -> Receipt:
        try:
            answer = self.client.get(media_id, {"fields": "id,permalink"})
            return Receipt(remote_id=media_id, url=str(answer.get("permalink") or ""))
        except GraphApiError:
            return Receipt(remote_id=media_id, url="")  # it is out; the link is a nicety

    # ---- containers ----

    def status(self, cid: str) -> str | None:
        """The container's status, or None when Graph no longer knows it (treated as gone: a new container)."""
        try:
            answer = self.client.get(cid, {"fields": f"id,{self.product.status_field}"})
        except GraphApiError as exc:
            if exc.code == 100 and exc.subcode == 33:
                return None
            raise
        return str(answer.get(self.product.status_field) or "").split(":")[0].strip().upper() or None

    def detail(self, cid: str) -> str:
        try:
            answer = self.client.get(cid, {"fields": "id,status,error_message"})
        except GraphApiError as exc:
            return exc.describe()
        return str(answer.get("error_message") or answer.get("status") or "")

    def wait(self, cid: str) -> str | None:
        """Poll until the container is no longer IN_PROGRESS, for at most ``max_wait`` seconds of the adapter's
        sleep; still IN_PROGRESS then is retryable (its id stays in the notes and the retry resumes it)."""
        waited, polls = 0.0, iter(POLLS)
        while True:
            status = self.status(cid)
            if status != "IN_PROGRESS":
                return status
            pause = next(polls, POLLS[-1])
            if waited + pause > self.max_wait:
                raise PlatformUnavailable(
                    f"{self.adapter.name} container {cid} still IN_PROGRESS after {waited:.0f} s; the retry resumes it"
                )
            self.adapter.sleep(pause)
            waited += pause

    def create(
        self,
        params: dict[str, Any],
        media: Path | None = None,
        *,
        out: Outgoing | None = None,
        url_field: str = "",
        also: Mapping[str, Path] | None = None,
    ) -> str:
        """POST a container. With ``media``, its URL comes from the media host (and each of ``also``'s files, a Reel's
        ``cover_url``, under its field); a URL the platform could not fetch (expired before it came, unreachable:
        9004/2207052) gets fresh URLs once, then a clear error naming the files."""
        if media is None or out is None:
            return str(self.client.post(f"me/{self.product.create_edge}", params)["id"])
        files = {url_field: media, **(also or {})}
        names = " with ".join(path.name for path in files.values())
        for attempt in (1, 2):
            try:
                urls = {field: self.adapter._url(out, path) for field, path in files.items()}
                return str(self.client.post(f"me/{self.product.create_edge}", {**params, **urls})["id"])
            except GraphApiError as exc:
                if not exc.download_failed:
                    raise
                self.log.warning("media_url_refused", file=names, attempt=attempt, error=exc.describe())
                if attempt == 2:
                    raise ContentRejected(
                        f"{names}: {self.adapter.name} could not download it from the media host twice "
                        f"({exc.describe()}); it expects a public URL that answers with {self.product.expects}"
                    ) from None
        raise AssertionError("unreachable")

    def check_quota(self) -> None:
        """Read the daily publishing quota before making a container; a spent quota waits instead of erroring."""
        answer = self.client.get(f"me/{self.product.limit_edge}", {"fields": "quota_usage,config"})
        for entry in self.adapter._data(answer):
            used = int(entry.get("quota_usage") or 0)
            total = int((entry.get("config") or {}).get("quota_total") or 0)
            if total and used >= total:
                raise RateLimited(
                    f"{self.adapter.name} account {self.adapter.account.id} used its {total} posts of the last 24 hours",
                    retry_after=3600.0,
                )


class ContainerPlatform(GraphPlatform):
    """Instagram and Threads: every post a container (``product``'s edges) made, polled and published by a
    ``ContainerFlow``; containers with media are made ahead of the slot, one per account."""

    product: ClassVar[Product]
    needs_media_host: ClassVar[bool] = True
    stage_group: ClassVar[int] = 1
    carousel_refusal: ClassVar[type[PermanentError]] = PermanentError  # a carousel item that ends in ERROR

    @property
    def flow(self) -> ContainerFlow:
        return ContainerFlow(self, self.product)

    def _stage(self, out: Outgoing, together: Sequence[Any]) -> bool:
        if not out.images and out.video is None:
            return False  # a text container is ready at once: nothing to gain ahead of the slot
        return self.flow.stage(out, self._creator(out))

    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt:
        return self.flow.publish(out, self._creator(out))  # the publisher releases the hosted media after

    def _find_published(self, out: Outgoing) -> Receipt | None:
        return self.flow.find(out)

    def _creator(self, out: Outgoing) -> Callable[[], str]:
        flow, product = self.flow, self.product
        text = {product.text_field: out.text}

        def create() -> str:
            if out.video is not None:
                alt = {"alt_text": out.video.alt} if self.video_alt_text else {}
                # Instagram Reels take a cover image (``cover_url``); Threads has no such parameter and ignores it.
                cover = {"cover_url": out.video.cover} if self.video_cover and out.video.cover else {}
                params = {**product.video, **text, **alt}
                return flow.create(params, out.video.path, out=out, url_field="video_url", also=cover)
            if not out.images:
                return flow.create({"media_type": "TEXT", **text})  # Threads (Instagram refuses text-only first)
            if len(out.images) == 1:
                image = out.images[0]
                params = {**product.image, **text, "alt_text": image.alt}
                return flow.create(params, image.path, out=out, url_field="image_url")
            item = {**product.image, "is_carousel_item": "true"}
            children = [
                flow.create({**item, "alt_text": i.alt}, i.path, out=out, url_field="image_url") for i in out.images
            ]
            for child in children:  # a carousel is made of FINISHED items
                if (status := flow.wait(child)) != "FINISHED":
                    raise self.carousel_refusal(f"{self.name} could not process a carousel image ({status})")
            return flow.create({"media_type": "CAROUSEL", "children": ",".join(children), **text})

        return create
