"""Keyset pages: ``?cursor=&limit=`` in, ``{items, next_cursor}`` out."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import Parameter

T = TypeVar("T")

Limit = Annotated[int, Parameter(ge=1, le=100, description="Items per page (1-100).")]
CursorParam = Annotated[
    str | None, Parameter(max_length=512, description="Opaque cursor from the previous page's next_cursor.")
]


class Page(msgspec.Struct, Generic[T], kw_only=True):
    items: list[T]
    next_cursor: str | None = None
