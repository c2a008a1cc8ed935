"""One error root and the handlers that render every failure as ``application/problem+json``.

Domain code raises an :class:`AppError` subclass; framework errors (unknown route, wrong
method, malformed or oversized body, validation) are translated here, so a client always gets
``{type, title, status, code, detail, field?, request_id}`` and never a bare 500 for bad input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.openapi import ResponseSpec
from redis import exceptions as redis_errors

log = structlog.get_logger()

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """A failure a client can act on. Subclasses fix the status and a stable ``code``."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.field = field
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BadRequest(AppError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "a valid bearer token is required", **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="riffle"')


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class ValidationFailed(AppError):
    status, code, title = 422, "validation_failed", "Invalid input"


class PayloadTooLarge(AppError):
    status, code, title = 413, "too_large", "Payload too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_type", "Unsupported media type"


class RangeNotSatisfiable(AppError):
    status, code, title = 416, "bad_range", "Range not satisfiable"


class RateLimited(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"


class Unavailable(AppError):
    status, code, title = 503, "unavailable", "Service unavailable"


def problem(
    request: Request[Any, Any, Any],
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"urn:riffle:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if extra:
        body.update(extra)
    body["instance"] = request.url.path
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[dict[str, Any]]:
    return problem(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        field=exc.field,
        headers=exc.headers,
        extra=exc.extra,
    )


_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")


def _field_from(message: str, key: str | None) -> tuple[str, str | None]:
    """Find the field a msgspec message is about: "Expected `int`, got `str` - at `$.seconds`",
    or "Object contains unknown field `admin`" (reported against the whole body)."""
    match = _AT_PATH.search(message)
    if match:
        message, key = message[: match.start()], match.group("path") or None
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown:
        parent = key if key and key != "data" else None
        key = f"{parent}.{unknown['name']}" if parent else unknown["name"]
    return message, key


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message, field = _field_from(str(item.get("message", "")), item.get("key"))
        source = item.get("source")
        source = getattr(source, "value", source)  # Litestar's ParamType, a str enum
        if source in ("query", "path", "header", "cookie") and item.get("key"):
            field = f"{source}.{item['key']}"
        errors.append({"field": field, "message": message})
    if not errors:
        message, field = _field_from(str(exc.detail), None)
        errors.append({"field": field, "message": message})
    first = errors[0]
    return problem(
        request,
        status=422,
        code="validation_failed",
        title="Invalid input",
        detail=first["message"],
        field=first["field"],
        extra={"errors": errors} if len(errors) > 1 else None,
    )


def _not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[dict[str, Any]]:
    return problem(request, status=404, code="not_found", title="Not found", detail="no such resource")


def _method_not_allowed(
    request: Request[Any, Any, Any], exc: MethodNotAllowedException
) -> Response[dict[str, Any]]:
    return problem(
        request,
        status=405,
        code="method_not_allowed",
        title="Method not allowed",
        detail=f"{request.method} is not allowed here",
        headers=exc.headers,
    )


_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    413: ("body_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
}


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        return _internal(request, exc)
    code, title = _HTTP_CODES.get(status, ("client_error", "Client error"))
    detail = exc.detail or title
    if status == 400 and isinstance(exc.__cause__, SerializationException):
        code, title, detail = "malformed_json", "Malformed JSON", "the request body is not valid JSON"
    return problem(request, status=status, code=code, title=title, detail=detail, headers=exc.headers)


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("http.unhandled", path=request.url.path, method=request.method, error=repr(exc))
    return problem(
        request,
        status=500,
        code="internal_error",
        title="Internal error",
        detail="something went wrong on our side; it has been logged",
    )


def _dependency_down(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """PostgreSQL or Redis could not be reached: nothing was done, and the client may retry."""
    log.warning("http.dependency_down", path=request.url.path, error=repr(exc))
    return problem(
        request,
        status=503,
        code="unavailable",
        title="Service unavailable",
        detail="a service Riffle depends on is not answering; nothing was changed, try again shortly",
        headers={"Retry-After": "5"},
    )


def _data_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A value asyncpg could not send (a number past bigint, say) or text PostgreSQL cannot
    store (a NUL character) is the caller's input; any other data error is ours."""
    if isinstance(
        exc,
        asyncpg.exceptions.CharacterNotInRepertoireError | asyncpg.exceptions.UntranslatableCharacterError,
    ):
        return problem(
            request,
            status=422,
            code="bad_character",
            title="Invalid input",
            detail="the request holds a character that cannot be stored (a NUL, say)",
        )
    if str(exc).startswith("invalid input for query argument"):
        return problem(
            request,
            status=422,
            code="out_of_range",
            title="Invalid input",
            detail="a number in the request is outside the range Riffle accepts",
        )
    return _internal(request, exc)


def _constraint(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A write the database refused as a whole. Services check what they can first, so this is
    the last line: a row that vanished between the check and the write, or two writes racing
    for one unique key. The transaction was rolled back, nothing was kept."""
    log.warning("http.constraint", path=request.url.path, constraint=getattr(exc, "constraint_name", None))
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return problem(
            request,
            status=409,
            code="conflict",
            title="Conflict",
            detail="this conflicts with something that was just written; nothing was changed",
        )
    return problem(
        request,
        status=422,
        code="unknown_reference",
        title="Invalid input",
        detail="the request refers to something that does not exist (any more); nothing was changed",
    )


def _group(request: Request[Any, Any, Any], exc: ExceptionGroup[Exception]) -> Response[dict[str, Any]]:
    """Litestar gathers errors from dependency clean-up into a group; answer for the first."""
    first = exc.exceptions[0]
    for kind in type(first).__mro__:
        handler = EXCEPTION_HANDLERS.get(kind)
        if handler is not None and handler is not _group:
            response: Response[dict[str, Any]] = handler(request, first)
            return response
    return _internal(request, exc)


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    ExceptionGroup: _group,
    asyncpg.exceptions.DataError: _data_error,
    asyncpg.exceptions.ForeignKeyViolationError: _constraint,
    asyncpg.exceptions.UniqueViolationError: _constraint,
    redis_errors.ConnectionError: _dependency_down,
    redis_errors.TimeoutError: _dependency_down,
    # A lost connection (see db.CONNECTION_LOST): the transaction was rolled back; retry.
    asyncpg.exceptions.PostgresConnectionError: _dependency_down,
    asyncpg.exceptions.OperatorInterventionError: _dependency_down,
    asyncpg.exceptions.InternalClientError: _dependency_down,
    asyncpg.exceptions.InterfaceError: _dependency_down,
    asyncpg.exceptions.TooManyConnectionsError: _dependency_down,
    ConnectionRefusedError: _dependency_down,
    AppError: _app_error,
    ValidationException: _validation_error,
    NotFoundException: _not_found,
    MethodNotAllowedException: _method_not_allowed,
    HTTPException: _http_error,
    Exception: _internal,
}


class Problem(msgspec.Struct, kw_only=True):
    """The body of every error response (RFC 9457 problem details)."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    field: str | None = None
    instance: str | None = None
    request_id: str | None = None


_DESCRIPTIONS = {
    400: "Malformed request, bad cursor or missing header",
    401: "No valid bearer token",
    403: "Not allowed for this caller",
    404: "No such resource, or not visible to this caller",
    409: "Conflicts with the current state",
    413: "Request body too large",
    422: "Invalid input; `field` names the offending field",
    429: "Rate limited; see Retry-After",
    503: "A dependency is unavailable",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries saying that these statuses answer with a problem document."""
    return {
        s: ResponseSpec(
            data_container=Problem, description=_DESCRIPTIONS.get(s, "Error"), media_type=PROBLEM_JSON
        )
        for s in statuses
    }
