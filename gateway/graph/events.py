"""The Graph API's `events` field: the calling integration's change feed (DESIGN §9)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from gateway.coltypes import as_utc
from gateway.errors import BadUserInput
from gateway.events import read
from gateway.graph.context import Context
from gateway.graph.pagination import PageInfo, page_args

Ctx = Info[Context, Any]


@strawberry.enum(description="What happened to the object.")
class EventType(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@strawberry.enum(description="The graph type of the object an event is about.")
class EventTarget(enum.Enum):
    DISTRICT = "DISTRICT"
    SCHOOL = "SCHOOL"
    SESSION = "SESSION"
    COURSE = "COURSE"
    CLASS = "CLASS"
    SECTION = "SECTION"
    PERSON = "PERSON"
    ENROLLMENT = "ENROLLMENT"
    AGENT = "AGENT"


@strawberry.type(
    description=(
        "A change of one object, as this integration sees it: it was created (or entered the "
        "integration's view), updated, or deleted (or left the view)."
    )
)
class Event:
    id: strawberry.ID = strawberry.field(
        description="The event's id; ids grow in the order events were written."
    )
    date: datetime = strawberry.field(description="When the change was recorded.")
    type: EventType = strawberry.field(description="What happened to the object.")
    target_type: EventTarget = strawberry.field(description="The type of the object.")
    target_id: strawberry.ID = strawberry.field(description="The object's UUID.")
    data: JSON | None = strawberry.field(
        description=(
            "The object as this integration could read it through the Graph API then, in the "
            "Graph's field names, with the ids of the objects it points to (`schoolId`, "
            "`personId`, a person's `schoolIds`, a class's `sessionIds`…) that it sees. Fields "
            "its permissions deny are left out. For DELETED, the last state it could see; "
            "only the `id` when it may no longer read the type (the permission was taken "
            "away)."
        )
    )


@strawberry.type(description="One event of a page, with the cursor that points just after it.")
class EventEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this event.")
    node: Event = strawberry.field(description="The event.")


@strawberry.type(
    description=(
        "A page of events in the order they were written, with keyset cursors. `first` "
        "defaults to 100 and is at most 1000."
    )
)
class EventConnection:
    rows: strawberry.Private[Sequence[Event]]
    has_next: strawberry.Private[bool]
    args: strawberry.Private[tuple[Sequence[str] | None, datetime | None]]

    @strawberry.field(description="The events of this page with their cursors.")
    def edges(self) -> list[EventEdge]:
        return [EventEdge(cursor=read.encode_cursor(int(e.id)), node=e) for e in self.rows]

    @strawberry.field(description="The events of this page.")
    def nodes(self) -> list[Event]:
        return list(self.rows)

    @strawberry.field(description="Whether more events follow, and the cursors of this page.")
    def page_info(self) -> PageInfo:
        rows = self.rows
        return PageInfo(
            has_next_page=self.has_next,
            has_previous_page=False,
            start_cursor=read.encode_cursor(int(rows[0].id)) if rows else None,
            end_cursor=read.encode_cursor(int(rows[-1].id)) if rows else None,
        )

    @strawberry.field(description="How many events match the filter in all pages.")
    async def total_count(self, info: Ctx) -> int:
        ctx = info.context
        target_types, since = self.args
        return await read.count_events(ctx.db, ctx.require_grant(), target_types, since)


@strawberry.input(description="Narrow the change feed.")
class EventFilter:
    target_types: list[EventTarget] | None = strawberry.field(
        default=None, description="Only events about objects of these types."
    )
    after: datetime | None = strawberry.field(
        default=None, description="Only events recorded after this moment."
    )


def _utc(moment: datetime) -> datetime:
    """`filter.after` in UTC; BAD_USER_INPUT when that leaves the years 1 to 9999 (compared
    with a stored date, the driver would fail instead)."""
    try:
        return as_utc(moment)
    except OverflowError:
        raise BadUserInput(
            f"`filter.after` {moment.isoformat()} falls outside the years 1 to 9999 once "
            "converted to UTC; give a moment within them",
            argument="filter.after",
        ) from None


async def resolve_events(
    info: Ctx,
    first: int | None,
    after: str | None,
    filter: EventFilter | None,
) -> EventConnection:
    """A page of the calling integration's feed: the events of the types its permissions
    cover, each without the fields they deny, and the DELETED events (id only) of the types
    they no longer cover."""
    ctx = info.context
    grant = ctx.require_grant()
    settings = ctx.settings
    args = page_args("events", first, None, settings.default_page_size, settings.max_page_size)
    cursor = None if after is None else read.decode_cursor(after)
    if cursor is not None:
        await read.check_cursor(ctx.db, grant, cursor, settings.event_retention_days)
    target_types = None
    since = None
    if filter is not None:
        if filter.target_types is not None:
            target_types = [target.value for target in filter.target_types]
        since = None if filter.after is None else _utc(filter.after)
    found = await read.read_events(ctx.db, grant, args.first, cursor, target_types, since)
    rows = [
        Event(
            id=strawberry.ID(str(e.id)),
            date=e.date,
            type=EventType(e.type),
            target_type=EventTarget(e.target_type),
            target_id=strawberry.ID(e.target_id),
            data=e.data,
        )
        for e in found
    ]
    return EventConnection(
        rows=rows[: args.first], has_next=len(rows) > args.first, args=(target_types, since)
    )


EventFilterArg = Annotated[
    EventFilter | None, strawberry.argument(description="Only events that match this filter.")
]
EventsFirst = Annotated[
    int | None,
    strawberry.argument(description="How many events to return (default 100, at most 1000)."),
]
EventsAfter = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "Return events after this cursor (an `endCursor` or edge `cursor` of `events`). A "
            "cursor older than the feed keeps is refused with `fullSyncRequired`."
        )
    ),
]
