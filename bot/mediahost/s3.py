"""``S3MediaHost``: the ``MediaHost`` protocol over an S3-compatible bucket, through boto3.

Layout under the configured prefix:

- ``media/<sha256><suffix>``: a file's bytes, named by content, with its content type. Uploaded once
  whoever asks for it (a banner shared by 500 accounts is one object, one upload).
- ``refs/<name>/<publication>``: an empty marker, "this publication holds that file".
- ``holds/<publication>/<name>``: the same fact the other way round, so ``release`` finds a publication's
  files after a restart (or on another worker) with one listing.

Why markers in the bucket rather than a JSON file in the campaign's ``state/`` folder: workers on several
hosts share one ledger and take over each other's publications, and a worker that did not upload a file
must still know that other publications hold it. The bucket is the one place they all see; a marker is a
PUT, a LIST and a DELETE, which every provider supports (object tags are capped at 10 per object and not
offered by every provider). A marker put before the file is checked means a file is deleted only when no
publication's marker is left; a marker left behind by a crash leaks its file, which is harmless (the
README advises a lifecycle rule that expires ``media/`` objects after a few days as the backstop).
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import structlog

from bot.core.errors import MissingSecret, PermanentError, PlatformUnavailable
from bot.core.model import MediaHostSettings
from bot.observability.redaction import register_secret

CONFIG = "config/media_host.yaml"
ROLES = ("access_key_id", "secret_access_key")  # required credentials
OPTIONAL_ROLES = ("session_token",)  # temporary keys (AWS STS) add one
LONGEST_URL_LIFETIME = 7 * 24 * 3600.0  # SigV4 presigned URLs cannot live longer
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0  # a large video's PUT is acknowledged only once the provider has stored it
ATTEMPTS = 4  # botocore's "standard" retries: throttling, 5xx and connection errors, with backoff
PROBE_BODY = b"campaign-bot media host probe\n"

log = structlog.get_logger("bot.mediahost")


class MediaHostUnavailable(PlatformUnavailable):
    """The bucket did not answer (network, timeout, 5xx, throttling): the same call may succeed later."""


class MediaHostRefused(PermanentError):
    """The bucket refused the call for a reason staff must fix (missing bucket, refused key, permissions)."""


def from_settings(
    settings: MediaHostSettings | None, *, environ: Mapping[str, str] | None = None
) -> S3MediaHost | None:
    """The campaign's media host, or None when it configures none; MissingSecret when a key variable is unset."""
    return None if settings is None else S3MediaHost(settings, environ=environ)


class S3MediaHost:
    """Content-addressed files in one bucket, held per publication; thread-safe, one boto3 client for its life."""

    def __init__(
        self,
        settings: MediaHostSettings,
        *,
        environ: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self.lifetime = int(settings.url_lifetime)
        self._monotonic = monotonic
        secrets = _resolve(settings, os.environ if environ is None else environ)
        self._client = _client(settings, secrets)
        self._lock = threading.Lock()
        self._digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256: hash each file once
        self._held: dict[str, set[str]] = {}  # publication -> names whose markers this process wrote
        self._name_locks: dict[str, threading.Lock] = {}

    # ---- MediaHost ----

    def url_for(self, path: Path, *, publication: str) -> str:
        """A presigned GET URL for ``path`` (uploaded first if the bucket lacks it), held by ``publication``."""
        path = Path(path)
        name = self._name(path)
        object_key = self._key("media", name)
        with self._name_lock(name):
            # The marker first: a release racing with us then sees it and keeps the file.
            with self._lock:
                marked = name in self._held.get(publication, ())
            if not marked:
                self._put_empty(self._key("refs", name, _safe(publication)))
                self._put_empty(self._key("holds", _safe(publication), name))
                with self._lock:
                    self._held.setdefault(publication, set()).add(name)
            # A HEAD every time rather than a cached "uploaded": another worker's release may have deleted
            # the file since, and a second call (the retry after an expired URL) must put it back.
            if not self._exists(object_key):
                self._upload(path, object_key)
        return self._presign(object_key)

    def release(self, publication: str) -> None:
        """Drop ``publication``'s hold on its files; delete each file no other publication holds."""
        with self._lock:
            names = self._held.pop(publication, set())
        listed = self._list(self._key("holds", _safe(publication), ""))
        names |= {key.rsplit("/", 1)[-1] for key in listed}
        deleted = 0
        for name in sorted(names):
            with self._name_lock(name):
                self._delete(self._key("refs", name, _safe(publication)))
                self._delete(self._key("holds", _safe(publication), name))
                if not self._list(self._key("refs", name, ""), limit=1):
                    self._delete(self._key("media", name))
                    deleted += 1
                    log.info("media_deleted", object_key=self._key("media", name), publication=publication)
        log.info("media_released", publication=publication, files=len(names), deleted=deleted)

    # ---- bot check --online ----

    def probe(self, fetch: Callable[[str], tuple[int, bytes]]) -> list[str]:
        """What stops platforms from fetching media: put a small object, GET it by its URL, delete it."""
        object_key = self._key("probe", f"{uuid.uuid4().hex}.txt")
        try:
            self._call(
                "write a test object to", "put_object", Key=object_key, Body=PROBE_BODY, ContentType="text/plain"
            )
        except (MediaHostRefused, MediaHostUnavailable) as err:
            return [str(err)]
        problems = []
        try:
            status, body = fetch(self._presign(object_key))
            if status != 200 or body != PROBE_BODY:
                what = f"HTTP {status}" if status != 200 else "different bytes than were written"
                problems.append(
                    f"{self._where()}: a presigned URL for {object_key} on {_host_of(self.settings)} answered {what}: "
                    "platforms could not fetch media from it either (check media_host.region, which the URL is "
                    "signed for, media_host.path_style, and that the endpoint is reachable from the internet)"
                )
        except OSError as exc:  # requests' errors are OSErrors: refused, unresolvable, timed out
            problems.append(
                f"{self._where()}: a presigned URL on {_host_of(self.settings)} could not be fetched "
                f"({type(exc).__name__}): check media_host.endpoint_url and media_host.path_style"
            )
        try:
            self._call("delete the test object from", "delete_object", Key=object_key)
        except (MediaHostRefused, MediaHostUnavailable) as err:
            problems.append(f"{err} (files are never deleted then: the key needs s3:DeleteObject)")
        return problems

    # ---- internals ----

    def _name(self, path: Path) -> str:
        """``<sha256><suffix>``: the suffix keeps platforms that look at a URL's extension happy."""
        try:
            stat = path.stat()
        except OSError as exc:
            raise PermanentError(f"media file {path} cannot be read ({exc.strerror})") from exc
        ident = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            digest = self._digests.get(ident)
        if digest is None:
            sha = hashlib.sha256()
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    sha.update(chunk)
            digest = sha.hexdigest()
            with self._lock:
                self._digests[ident] = digest
        return digest + path.suffix.lower()

    def _name_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._name_locks.setdefault(name, threading.Lock())

    def _key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def _exists(self, object_key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=object_key)
            return True
        except _boto_errors() as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._mapped(exc, "read") from exc

    def _upload(self, path: Path, object_key: str) -> None:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        started = self._monotonic()
        size = path.stat().st_size
        with path.open("rb") as body:
            self._call(
                "upload to", "put_object", Key=object_key, Body=body, ContentType=content_type, ContentLength=size
            )
        log.info(
            "media_uploaded",
            object_key=object_key,
            bytes=size,
            content_type=content_type,
            duration_ms=round((self._monotonic() - started) * 1000),
        )

    def _put_empty(self, object_key: str) -> None:
        self._call("write to", "put_object", Key=object_key, Body=b"")

    def _delete(self, object_key: str) -> None:
        self._call("delete from", "delete_object", Key=object_key)

    def _list(self, prefix: str, limit: int = 1000) -> list[str]:
        keys: list[str] = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self._call("list", "list_objects_v2", Prefix=prefix, MaxKeys=limit, **extra)
            keys += [item["Key"] for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token or (limit == 1 and keys):
                return keys

    def _presign(self, object_key: str) -> str:
        # Signed locally, no request: the URL carries a signature, so it is never logged (the key is).
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": object_key}, ExpiresIn=self.lifetime
        )
        return url

    def _call(self, what: str, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._client, operation)(Bucket=self.bucket, **params)
        except _boto_errors() as exc:
            raise self._mapped(exc, what) from exc

    def _where(self) -> str:
        return f"{CONFIG}:{self.settings.line}: media_host"

    def _mapped(self, exc: Exception, what: str) -> Exception:
        """The bot's error for a botocore one: retryable when the bucket may answer later, else what to fix.

        Messages name settings and variables, never values; botocore's own text is not quoted (a provider's
        error body may echo the string it signed).
        """
        from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError

        where, host = self._where(), _host_of(self.settings)
        code = _code(exc)
        names = " and ".join(self.settings.credentials.get(role, "?") for role in ROLES)
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code == "NoSuchBucket":
                return MediaHostRefused(
                    f"{where}: bucket '{self.bucket}' does not exist on {host} (create it, or fix media_host.bucket)"
                )
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
                return MediaHostRefused(
                    f"{where}: {host} refused the key ({code}): set valid values in the environment variables {names}"
                )
            if code in (
                "AuthorizationHeaderMalformed",
                "PermanentRedirect",
                "301",
                "IllegalLocationConstraintException",
            ):
                return MediaHostRefused(
                    f"{where}: bucket '{self.bucket}' is not in region '{self.settings.region or 'us-east-1'}' "
                    f"({code}): fix media_host.region"
                )
            if code in ("AccessDenied", "403", "AllAccessDisabled"):
                return MediaHostRefused(
                    f"{where}: {host} denied the key in {names} permission to {what} bucket '{self.bucket}' "
                    f"({code}): it needs s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket there"
                )
            if status >= 500 or status == 429 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable"):
                return MediaHostUnavailable(f"{where}: {host} could not {what} bucket '{self.bucket}' now ({code})")
            return MediaHostRefused(f"{where}: {host} refused to {what} bucket '{self.bucket}' ({code or status})")
        if isinstance(exc, NoCredentialsError | ParamValidationError):
            return MediaHostRefused(f"{where}: the request could not be made ({type(exc).__name__}): check {CONFIG}")
        # Connection refused, DNS, timeouts, a connection closed mid-answer: botocore already retried.
        return MediaHostUnavailable(
            f"{where}: cannot reach {host} to {what} bucket '{self.bucket}' ({type(exc).__name__}): "
            "check media_host.endpoint_url and the network"
        )


def _resolve(settings: MediaHostSettings, environ: Mapping[str, str]) -> dict[str, str]:
    absent = [var for role, var in settings.credentials.items() if not environ.get(var)]
    if absent:
        raise MissingSecret(
            [f"{CONFIG}:{settings.line}: media_host: environment variable {var} is not set" for var in absent]
        )
    values = {role: environ[var] for role, var in settings.credentials.items()}
    for value in values.values():
        register_secret(value)
    return values


def _client(settings: MediaHostSettings, secrets: Mapping[str, str]) -> Any:
    import boto3  # here: only a campaign with a media host pays for boto3's import
    from botocore.config import Config

    config = Config(
        region_name=settings.region or "us-east-1",
        signature_version="s3v4",
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": ATTEMPTS, "mode": "standard"},
        s3={"addressing_style": "path" if settings.path_style else "auto"},
        # One client serves a whole fan-out: keep enough connections for the publishing threads.
        max_pool_connections=64,
        # botocore >= 1.36 adds CRC checksums (aws-chunked bodies) by default, which R2, B2 and older MinIO
        # refuse or mishandle; content hashing already names each file by its bytes.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    # A session per host: boto3's default session is shared module state and not thread-safe.
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=secrets.get("access_key_id"),
        aws_secret_access_key=secrets.get("secret_access_key"),
        aws_session_token=secrets.get("session_token"),
        config=config,
    )


@functools.cache
def _boto_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _safe(publication: str) -> str:
    return quote(publication, safe="-_.~")


def _host_of(settings: MediaHostSettings) -> str:
    return urlsplit(settings.endpoint_url).netloc if settings.endpoint_url else "AWS S3"


def probe(settings: MediaHostSettings, *, environ: Mapping[str, str] | None = None, timeout: float = 15.0) -> list[str]:
    """``bot check --online``: problems that would stop platforms fetching media (empty: the bucket works)."""
    import requests

    try:
        host = S3MediaHost(settings, environ=environ)
    except MissingSecret as err:
        return err.problems

    def fetch(url: str) -> tuple[int, bytes]:
        # Plain requests, no credentials: the way Instagram's fetcher comes.
        answer = requests.get(url, timeout=timeout)
        return answer.status_code, answer.content

    return host.probe(fetch)
