"""Keyset pages: ``?cursor=&limit=`` in, ``{items, next_cursor}`` out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import Parameter

from backend.cursor import CursorCodec

T = TypeVar("T")

Limit = Annotated[int, Parameter(ge=1, le=100, description="Items per page (1-100).")]
CursorParam = Annotated[
    str | None, Parameter(max_length=512, description="Opaque cursor from the previous page's next_cursor.")
]


class Page(msgspec.Struct, Generic[T], kw_only=True):
    items: list[T]
    next_cursor: str | None = None


def cursor_id(cursors: CursorCodec, kind: str, cursor: str | None) -> int | None:
    """The id a keyset-by-id cursor continues from (None on the first page)."""
    return int(cursors.decode(kind, cursor)[0]) if cursor else None


def id_page(cursors: CursorCodec, kind: str, items: Sequence[Any], limit: int) -> Page[Any]:
    """A page of ``items`` (newest first by id) with the cursor of the next one, if it may exist."""
    next_cursor = cursors.encode(kind, [items[-1].id]) if len(items) == limit else None
    return Page(items=list(items), next_cursor=next_cursor)
