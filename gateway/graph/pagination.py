"""Relay connections with opaque keyset cursors, and validation of `first` and `after`."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import strawberry

from gateway.errors import BadUserInput

T = TypeVar("T")

_VERSION = "k2"


def encode_cursor(kind: str, row_id: str) -> str:
    """The opaque cursor that points just after `row_id` in a connection of `kind` (the table
    of its objects: `schools`, `people`…)."""
    text = f"{_VERSION}:{kind}:{row_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> str:
    """The row id inside `cursor`, which must come from a connection of `kind`; else
    BAD_USER_INPUT."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        version, made_for, row_id = text.split(":")
        if version != _VERSION:
            raise ValueError(text)
        row_id = str(uuid.UUID(row_id))
    except (ValueError, binascii.Error, UnicodeError):
        raise BadUserInput(
            f"`after` {cursor[:64]!r} is not a cursor of this API; pass the `endCursor` or an "
            "edge `cursor` of a previous page, or omit `after` to start at the beginning",
            argument="after",
        ) from None
    if made_for != kind:
        raise BadUserInput(
            f"`after` is a cursor of a list of {made_for}, not of {kind}; pass a cursor that "
            "this connection returned",
            argument="after",
        )
    return row_id


@dataclass(frozen=True, slots=True)
class PageArgs:
    """Validated `first` and `after` of one connection field."""

    first: int
    after: str | None

    @property
    def key(self) -> tuple[int, str | None]:
        """A hashable form, for loader keys."""
        return (self.first, self.after)


def page_args(
    kind: str, first: int | None, after: str | None, default: int, maximum: int
) -> PageArgs:
    """Check `first` (0…maximum, default when omitted) and decode `after`, a cursor of a
    connection of `kind`; BAD_USER_INPUT else."""
    if first is None:
        first = default
    if first < 0 or first > maximum:
        raise BadUserInput(
            f"`first` must be between 0 and {maximum}, got {first}; fetch more with `after`",
            argument="first",
        )
    return PageArgs(first, decode_cursor(after, kind) if after is not None else None)


@strawberry.type(description="Where a page stands in its connection (Relay's PageInfo).")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="True when another page follows; fetch it with `after: endCursor`."
    )
    has_previous_page: bool = strawberry.field(
        description="Always false: pages are fetched forward only (keyset pagination)."
    )
    start_cursor: str | None = strawberry.field(description="The cursor of the first edge.")
    end_cursor: str | None = strawberry.field(
        description="The cursor of the last edge; pass it as `after` for the next page."
    )


@strawberry.type(description="One object of a page, with the cursor that points just after it.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Pass as `after` to continue after this object.")
    node: T = strawberry.field(description="The object.")


Counter = Callable[[], Awaitable[int]]


@strawberry.type(
    description=(
        "A page of objects, ordered by id, with keyset cursors: page 10,000 costs what page 1 "
        "costs. `first` defaults to 100 and is at most 1000."
    )
)
class Connection(Generic[T]):
    kind: strawberry.Private[str]
    rows: strawberry.Private[Sequence[Any]]
    has_next: strawberry.Private[bool]
    counter: strawberry.Private[Counter]

    @strawberry.field(description="The objects of this page with their cursors.")
    def edges(self) -> list[Edge[T]]:
        kind = self.kind
        return [Edge(cursor=encode_cursor(kind, row.id), node=row) for row in self.rows]

    @strawberry.field(description="The objects of this page.")
    def nodes(self) -> list[T]:
        return list(self.rows)

    @strawberry.field(description="Whether more pages follow, and the cursors of this one.")
    def page_info(self) -> PageInfo:
        rows = self.rows
        return PageInfo(
            has_next_page=self.has_next,
            has_previous_page=False,
            start_cursor=encode_cursor(self.kind, rows[0].id) if rows else None,
            end_cursor=encode_cursor(self.kind, rows[-1].id) if rows else None,
        )

    @strawberry.field(
        description="How many objects match the filter in all pages (only visible ones)."
    )
    async def total_count(self) -> int:
        return await self.counter()


def connection(kind: str, rows: Sequence[Any], first: int, counter: Counter) -> Connection[Any]:
    """A connection of `kind` over `rows` fetched with limit `first + 1`."""
    return Connection(kind=kind, rows=rows[:first], has_next=len(rows) > first, counter=counter)
