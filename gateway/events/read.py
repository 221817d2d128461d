"""Reading an integration's feed (keyset pages by event id) and pruning old events.

An integration reads the events of the types its permissions cover now, each without the
fields they deny now (`gateway.events.data.strip`), and of the other types the DELETED events
written when the permission was taken away (they have no data; they are listed with the id
alone): what the app holds of that type is deleted from its feed (`feed._current`), and the app
must hear of it. A cursor names an event id; one at or before what `prune` removed for the
integration cannot be followed: the app needs a full sync.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.access.grant import Grant
from gateway.coltypes import utcnow
from gateway.errors import BadUserInput
from gateway.events import data as event_data
from gateway.events.feed import EVENTS, FEEDS
from gateway.queries import Executor

_VERSION = "e1"
_MAX_EVENT_ID = 2**63 - 1  # the events table's 64-bit id


def encode_cursor(event_id: int) -> str:
    """The opaque cursor that points just after event `event_id`."""
    text = f"{_VERSION}:events:{event_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


_DATE_HINT = (
    "; to read the events recorded after a moment, pass it as "
    '`filter: {after: "2026-01-20T00:00:00Z"}`'
)


def _is_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def decode_cursor(cursor: str) -> int:
    """The event id inside `cursor`; BAD_USER_INPUT when it is not an events cursor."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        version, kind, number = text.split(":")
        if version != _VERSION or kind != "events":
            raise ValueError(text)
        event_id = int(number)
        if not 0 <= event_id <= _MAX_EVENT_ID:  # past it, the driver fails, not the client
            raise ValueError(text)
    except (ValueError, binascii.Error, UnicodeError):
        raise BadUserInput(
            f"`after` {cursor[:64]!r} is not a cursor of `events`; pass the `endCursor` or an "
            "edge `cursor` of a previous page of `events`, or omit `after` to start at the "
            "beginning" + (_DATE_HINT if _is_date(cursor) else ""),
            argument="after",
        ) from None
    return event_id


@dataclass(frozen=True, slots=True)
class Event:
    """One event as the integration reads it."""

    id: int
    date: datetime
    type: str
    target_type: str
    target_id: str
    data: Any


def _where(
    grant: Grant, target_types: Sequence[str] | None, since: datetime | None
) -> list[sa.ColumnElement[bool]]:
    readable = {event_data.TARGETS[kind] for kind in event_data.readable_kinds(grant.permissions)}
    wanted = set(event_data.TARGETS.values() if target_types is None else target_types)
    unreadable = sorted(wanted - readable)
    where = [
        EVENTS.c.integration_id == grant.integration_id,
        sa.or_(
            EVENTS.c.target_type.in_(sorted(wanted & readable)),
            # the DELETED events written when the permission was taken away (no data): not
            # those of objects deleted while the feed of the release before followed the type
            sa.and_(
                EVENTS.c.type == "DELETED",
                EVENTS.c.data.is_(None),
                EVENTS.c.target_type.in_(unreadable),
            ),
        ),
    ]
    if since is not None:
        where.append(EVENTS.c.date > since)
    return where


async def check_cursor(conn: Executor, grant: Grant, after: int, retention_days: int) -> None:
    """BAD_USER_INPUT (`fullSyncRequired`) when events after `after` were pruned."""
    pruned = (
        await conn.execute(
            sa.select(FEEDS.c.pruned_through).where(FEEDS.c.integration_id == grant.integration_id)
        )
    ).scalar()
    if pruned is not None and after < pruned:
        raise BadUserInput(
            f"`after` points to an event older than the {retention_days} days the feed keeps "
            "(GATEWAY_EVENT_RETENTION_DAYS), and events after it were removed: do a full sync "
            "(read every list again), then follow `events` from its last `endCursor`",
            argument="after",
            fullSyncRequired=True,
        )


async def read_events(
    conn: Executor,
    grant: Grant,
    first: int,
    after: int | None,
    target_types: Sequence[str] | None = None,
    since: datetime | None = None,
) -> list[Event]:
    """Up to `first + 1` events of the integration after event `after`, in id order."""
    query = sa.select(EVENTS).where(*_where(grant, target_types, since))
    if after is not None:
        query = query.where(EVENTS.c.id > after)
    rows = await conn.execute(query.order_by(EVENTS.c.id).limit(first + 1))
    kinds = event_data.KINDS
    readable = set(event_data.readable_kinds(grant.permissions))
    return [
        Event(
            id=row.id,
            date=row.date,
            type=row.type,
            target_type=row.target_type,
            target_id=row.target_id,
            data=(
                event_data.strip(kinds[row.target_type], row.data, grant.permissions)
                if row.data is not None and kinds[row.target_type] in readable
                else {"id": row.target_id}  # deleted when the permission was taken away
            ),
        )
        for row in rows
    ]


async def count_events(
    conn: Executor,
    grant: Grant,
    target_types: Sequence[str] | None = None,
    since: datetime | None = None,
) -> int:
    """How many events the integration can read, whatever the page."""
    query = (
        sa.select(sa.func.count()).select_from(EVENTS).where(*_where(grant, target_types, since))
    )
    return int((await conn.execute(query)).scalar_one())


async def prune(conn: AsyncConnection, retention_days: int, now: datetime | None = None) -> int:
    """Delete the events older than `retention_days` (in the caller's transaction), noting per
    integration the last id removed; returns how many were deleted."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    old = EVENTS.alias("old")
    last = (
        sa.select(sa.func.max(old.c.id))
        .where(old.c.integration_id == FEEDS.c.integration_id, old.c.date < cutoff)
        .scalar_subquery()
    )
    await conn.execute(
        FEEDS.update()
        .where(
            sa.select(old.c.id)
            .where(old.c.integration_id == FEEDS.c.integration_id, old.c.date < cutoff)
            .exists()
        )
        .values(pruned_through=last)
    )
    deleted = await conn.execute(EVENTS.delete().where(EVENTS.c.date < cutoff))
    return deleted.rowcount
