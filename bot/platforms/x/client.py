"""tweepy's v2 Client on the account's host, with a timeout and a look at every answer's rate-limit headers.

tweepy 4.17 hard-codes https://api.twitter.com in ``BaseClient.request`` and sets no
timeout (upstream: tweepy/tweepy#1971, a host parameter, and #2024, a timeout; both
open). tweepy's documented ``Client.session`` is the seam: the client gets an
``XSession``, a requests ``Session`` that sends what tweepy addresses to
api.twitter.com (or api.x.com) to ``base_url`` instead, before cookies and the OAuth 1.0a signature
(which covers the host) are prepared, checks the rate gate before each request
leaves and reports its headers after it returns. Our media upload, which tweepy
lacks for v2, goes through the same session. Imported lazily: tweepy is only loaded
when an X adapter talks to X.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import requests
import tweepy
from tweepy.errors import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    TooManyRequests,
    TwitterServerError,
    Unauthorized,
)

from bot.platforms.base import environment_read_once

# Where tweepy sends every v2 request: api.twitter.com in 4.17, api.x.com should it follow X's rename.
TWEEPY_HOSTS = ("https://api.twitter.com", "https://api.x.com")
_ID = re.compile(r"(?<!^)/\d+(?=/|$)")  # ids, not the leading API version "/2"


def endpoint(method: str, route: str) -> str:
    """The rate-limit bucket of a request, named like X's docs: ``POST /2/users/:id/retweets``."""
    return f"{method.upper()} {_ID.sub('/:id', route.split('?')[0])}"


class XSession(requests.Session):
    """One account's requests to X: on ``base_url``, with a timeout, behind the rate gate."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        before_send: Callable[[str], None],
        on_answer: Callable[[str, requests.Response], None],
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._before_send = before_send
        self._on_answer = on_answer
        environment_read_once(self)
        # Connections to the API host are pooled for all the process's X accounts (requests are signed
        # per account, so a connection carries nothing of an account): a fan-out does not open, and on
        # X pay a TLS handshake for, one connection per account. Cookies stay per account, in each session.
        self.mount(self.base_url, shared_adapter(self.base_url))

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        # Readdressed before preparing, so the signature and cookies are made for the host we talk to.
        for host in TWEEPY_HOSTS:
            if isinstance(request.url, str) and request.url.startswith(host + "/"):
                request.url = self.base_url + request.url[len(host) :]
                break
        return super().prepare_request(request)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        url = request.url or ""
        route = url[len(self.base_url) :] if url.startswith(self.base_url) else request.path_url
        bucket = endpoint(request.method or "GET", route)
        self._before_send(bucket)
        response = super().send(request, **kwargs)
        self._on_answer(bucket, response)
        return response

    def close(self) -> None:
        """Close this account's session; the shared connection pool stays for the other accounts."""
        self.adapters.pop(self.base_url, None)
        super().close()


# tweepy ships no type hints, so mypy sees its Client as Any.
class XClient(tweepy.Client):  # type: ignore[misc]
    """tweepy's Client on an ``XSession``; adds ``send`` for the requests tweepy has no method for."""

    def __init__(
        self,
        base_url: str,
        credentials: dict[str, str],
        *,
        timeout: float,
        before_send: Callable[[str], None],
        on_answer: Callable[[str, requests.Response], None],
    ) -> None:
        super().__init__(
            consumer_key=credentials["consumer_key"],
            consumer_secret=credentials["consumer_secret"],
            access_token=credentials["access_token"],
            access_token_secret=credentials["access_token_secret"],
        )
        unused = self.session  # tweepy's own, replaced before any request is made
        unused.close()
        self.session: XSession = XSession(base_url, timeout=timeout, before_send=before_send, on_answer=on_answer)
        self.base_url = self.session.base_url
        # Every request is made in user context (OAuth 1.0a): the bot acts as the campaign account and
        # holds no app bearer token. As the session's auth it also signs a tweepy call made without
        # user_auth=True (its "Bearer None" header is replaced). OAuth 1.0a draws a fresh nonce and
        # timestamp for every request it signs, so one signer serves all.
        self.session.auth = tweepy.OAuth1UserHandler(
            self.consumer_key, self.consumer_secret, self.access_token, self.access_token_secret
        ).apply_auth()

    def close(self) -> None:
        """Close this account's session; the shared connection pool stays for the other accounts."""
        self.session.close()

    def send(
        self,
        method: str,
        route: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
    ) -> requests.Response:
        """A signed request to ``route`` on the client's host, failing with tweepy's exceptions as tweepy would."""
        response = self.session.request(
            method,
            self.base_url + route,
            params=params,
            json=json,
            data=data,
            files=files,
            headers={"User-Agent": self.user_agent},
        )
        raise_for_status(response)
        return response


POOL_SIZE = 256  # connections kept per API host: as many as the worker's publishing threads
_adapters: dict[str, requests.adapters.HTTPAdapter] = {}
_adapters_lock = threading.Lock()


def shared_adapter(host: str) -> requests.adapters.HTTPAdapter:
    """The process's one connection pool for ``host`` (thread-safe, as urllib3's pools are)."""
    with _adapters_lock:
        adapter = _adapters.get(host)
        if adapter is None:
            adapter = _adapters[host] = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
        return adapter


def raise_for_status(response: requests.Response) -> None:
    """Raise tweepy's exception for a failed answer, as tweepy itself would."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        reset = response.headers.get("x-rate-limit-reset")
        raise TooManyRequests(response, reset_time=int(reset) if reset and reset.isdigit() else None)
    kinds = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound}
    if status in kinds:
        raise kinds[status](response)
    if status >= 500:
        raise TwitterServerError(response)
    raise HTTPException(response)
