"""tweepy's v2 Client on the account's host, with a timeout and a look at every answer's rate-limit headers.

tweepy 4.17 hard-codes https://api.twitter.com in ``BaseClient.request`` and sets
no timeout; this subclass replaces that one method, so every tweepy call (and our
media upload, through ``send``) goes to ``base_url``, is checked against the rate
gate before it leaves, and reports its headers after it returns. Imported lazily:
tweepy is only loaded when an X adapter talks to X.
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

_ID = re.compile(r"(?<!^)/\d+(?=/|$)")  # ids, not the leading API version "/2"


def endpoint(method: str, route: str) -> str:
    """The rate-limit bucket of a request, named like X's docs: ``POST /2/users/:id/retweets``."""
    return f"{method.upper()} {_ID.sub('/:id', route.split('?')[0])}"


class XClient(tweepy.Client):
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
        environment_read_once(self.session)
        # Connections to the API host are pooled for all the process's X accounts (requests are signed
        # per account, so a connection carries nothing of an account): a fan-out does not open, and on
        # X pay a TLS handshake for, one connection per account. Cookies stay per account, in each session.
        self._host = base_url.rstrip("/")
        self.session.mount(self._host, shared_adapter(self._host))
        # One signer for the client's life: tweepy's handler builds a whole OAuth1Session (a
        # requests Session) per request just to return this object, about 1 ms of CPU each time.
        # OAuth1 draws a fresh nonce and timestamp for every request it signs, so sharing it is safe.
        self._auth = tweepy.OAuth1UserHandler(
            self.consumer_key, self.consumer_secret, self.access_token, self.access_token_secret
        ).apply_auth()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._before_send = before_send
        self._on_answer = on_answer

    def close(self) -> None:
        """Close this account's session; the shared connection pool stays for the other accounts."""
        self.session.adapters.pop(self._host, None)
        self.session.close()

    def request(
        self, method: str, route: str, params: Any = None, json: Any = None, user_auth: bool = False
    ) -> requests.Response:
        # Every call is made in user context (OAuth 1.0a): the bot acts as the campaign account.
        return self.send(method, route, params=params, json=json)

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
        bucket = endpoint(method, route)
        self._before_send(bucket)
        response = self.session.request(
            method,
            self.base_url + route,
            params=params,
            json=json,
            data=data,
            files=files,
            headers={"User-Agent": self.user_agent},
            auth=self._auth,
            timeout=self.timeout,
        )
        self._on_answer(bucket, response)
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
