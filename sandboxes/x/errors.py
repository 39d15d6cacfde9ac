"""Error answers of the fake X API v2, in the body shapes X sends.

Shapes follow recorded X answers: problem objects (``title``, ``detail``,
``type``, ``status``) for auth, permission and limit errors, and the
"Invalid Request" object with an ``errors`` list for bad parameters.
"""

from __future__ import annotations

from typing import Any

PROBLEMS = "https://api.twitter.com/2/problems"


class ApiError(Exception):
    """An answer other than 2xx: status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status, self.body, self.headers = status, body, dict(headers or {})


def unauthorized() -> ApiError:
    return ApiError(401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})


def forbidden(detail: str) -> ApiError:
    return ApiError(403, {"detail": detail, "type": "about:blank", "title": "Forbidden", "status": 403})


def duplicate() -> ApiError:
    return forbidden("You are not allowed to create a Tweet with duplicate content.")


def not_permitted() -> ApiError:
    return forbidden("You are not permitted to perform this action.")


def invalid(message: str, parameter: str | None = None, value: Any = None) -> ApiError:
    error: dict[str, Any] = {"message": message}
    if parameter:
        error["parameters"] = {parameter: [str(value)]}
    return ApiError(
        400,
        {
            "errors": [error],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": f"{PROBLEMS}/invalid-request",
        },
    )


def not_found(kind: str, value: str) -> ApiError:
    return ApiError(
        404,
        {
            "title": "Not Found Error",
            "detail": f"Could not find {kind} with id: [{value}].",
            "type": f"{PROBLEMS}/resource-not-found",
            "status": 404,
        },
    )


def too_many(headers: dict[str, str]) -> ApiError:
    return ApiError(
        429,
        {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429},
        headers,
    )


def unavailable() -> ApiError:
    return ApiError(
        503, {"title": "Service Unavailable", "detail": "Service Unavailable", "type": "about:blank", "status": 503}
    )


def too_large(detail: str) -> ApiError:
    return ApiError(413, {"title": "Payload Too Large", "detail": detail, "type": "about:blank", "status": 413})
