"""Error answers of the fake X API v2: ``application/problem+json`` bodies as X's OpenAPI document v2.167 gives them.

Every body carries ``type``, ``title``, ``detail`` and ``status``. Where the spec names a
problem type (invalid-request, resource-not-found, not-authorized-for-resource,
disallowed-resource, resource-unavailable, internal-error) the body is that problem with its
required members; 401 and 429 have no problem type in the spec, and X answers them with RFC
7807's ``about:blank``. An invalid request also lists its ``errors`` (message and parameters),
as X's answers do.
"""

from __future__ import annotations

from typing import Any

PROBLEMS = "https://api.x.com/2/problems"
PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """An answer other than 2xx: status, problem body and extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status, self.body, self.headers = status, body, dict(headers or {})


def problem(status: int, kind: str | None, title: str, detail: str, **extra: Any) -> ApiError:
    """A problem answer; ``kind`` is the spec's problem name (None: about:blank)."""
    body: dict[str, Any] = {
        "type": f"{PROBLEMS}/{kind}" if kind else "about:blank",
        "title": title,
        "detail": detail,
        "status": status,
        **extra,
    }
    return ApiError(status, body)


def unauthorized() -> ApiError:
    return problem(401, None, "Unauthorized", "Unauthorized")


def forbidden(detail: str, resource_type: str = "post") -> ApiError:
    return problem(403, "not-authorized-for-resource", "Forbidden", detail, resource_type=resource_type)


def duplicate() -> ApiError:
    return problem(
        403, "disallowed-resource", "Forbidden", "You are not allowed to create a Post with duplicate content."
    )


def not_permitted() -> ApiError:
    return forbidden("You are not permitted to perform this action.")


def invalid(message: str, parameter: str | None = None, value: Any = None) -> ApiError:
    error: dict[str, Any] = {"message": message}
    extra: dict[str, Any] = {}
    if parameter:
        error["parameters"] = {parameter: [str(value)]}
        extra = {"parameter": parameter, "value": str(value)}
    return problem(
        400,
        "invalid-request",
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        errors=[error],
        **extra,
    )


def not_found(kind: str, value: str) -> ApiError:
    return problem(
        404,
        "resource-not-found",
        "Not Found Error",
        f"Could not find {kind} with id: [{value}].",
        resource_type=kind,
        resource_id=str(value),
        parameter="id",
        value=str(value),
    )


def too_many(headers: dict[str, str]) -> ApiError:
    error = problem(429, None, "Too Many Requests", "Too Many Requests")
    error.headers.update(headers)
    return error


def unavailable() -> ApiError:
    return problem(503, "resource-unavailable", "Service Unavailable", "Service Unavailable", resource_type="service")


def too_large(detail: str) -> ApiError:
    return problem(413, "invalid-request", "Payload Too Large", detail)


def internal() -> ApiError:
    return problem(500, "internal-error", "Internal Server Error", "Internal Server Error")
