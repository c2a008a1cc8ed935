"""Finishing touches on the generated OpenAPI document, so that it tells clients the truth.

Handlers list the problems their own rules raise (``errors.problems``); the ones every route
can give come from the shell and are added here once: 422 when a parameter or body fails
validation, 404 for an id in the path that the caller may not see, 503 when PostgreSQL or
Redis is unreachable, and a 400 written as a problem document (Litestar's default entry says
plain JSON). Routes that document a 401 are marked as needing the bearer token.
``make test`` checks the result against the running app with schemathesis.
"""

from __future__ import annotations

import copy
from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin

from backend.errors import PROBLEM_JSON

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_SCHEME = "bearer"


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _complete(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    has_input = bool(operation.get("parameters")) or "requestBody" in operation
    if PROBLEM_JSON not in responses.get("400", {}).get("content", {PROBLEM_JSON: None}):
        responses["400"] = _problem("Malformed request")
    if has_input:
        responses.setdefault("400", _problem("Malformed request"))
        responses.setdefault("422", _problem("A parameter or the body is not valid"))
    if "{" in path:
        responses.setdefault("404", _problem("Not found, or not visible to the caller"))
    responses.setdefault("503", _problem("PostgreSQL or Redis is unreachable; retry shortly"))
    if "401" in responses:
        operation.setdefault("security", [{_SCHEME: []}])


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with the shell's problem responses on every operation."""
    done = copy.deepcopy(schema)
    for path, item in done.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                _complete(path, item[method])
    schemes = done.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes.setdefault(
        _SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A session token from POST /v1/sessions, as `Authorization: Bearer <token>`.",
        },
    )
    return done


class CompleteJsonRenderPlugin(JsonRenderPlugin):
    """``/docs/openapi.json`` (what the docs page reads), completed like ``/openapi.json``."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, complete(openapi_schema))
