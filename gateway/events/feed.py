"""Writing each integration's feed: the difference between what it sees now and what its feed
last said (`event_states`), as CREATED, UPDATED and DELETED events.

Runs in the transaction of the change that caused it (an import, the demo load, a change of
the integration's targets, scope, permissions or status), so a reader sees the change and its
events together or neither. The first sync of an integration is its first materialization:
CREATED for everything it sees. A DISABLED integration is skipped (it accumulates nothing);
the sync that follows its enabling writes one diff against what it saw before.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.access import views
from gateway.access.authentication import load_grant_by_id
from gateway.access.grant import Grant, IntegrationStatus, Scope
from gateway.coltypes import utcnow
from gateway.events import data as event_data

EVENTS = models.table_of(models.Event)
STATES = models.table_of(models.EventState)
FEEDS = models.table_of(models.EventFeed)
_integrations = models.table_of(models.Integration)
_TABLES: dict[str, sa.Table] = {table.name: table for table in views.GRAPH_TABLES}

CHUNK = 500


@dataclass
class Synced:
    """How many events a sync wrote, per event type."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, type_: str, n: int) -> None:
        """Count `n` more events of `type_`."""
        if n:
            self.counts[type_] = self.counts.get(type_, 0) + n

    def merge(self, other: Synced) -> None:
        """Add `other`'s counts to these."""
        for type_, n in other.counts.items():
            self.add(type_, n)


def _digest(value: dict[str, Any]) -> str:
    return hashlib.sha1(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()  # noqa: S324 - a change detector, not a security boundary


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def _lock_feed(conn: AsyncConnection, grant: Grant) -> bool:
    """Hold the integration's feed row until commit (so its event ids are handed out in commit
    order); True when the feed is new (this is its first materialization).

    A feed of the release before followed every type whatever the permissions (and hid the
    others when read): what it remembers of the types the integration may not read is
    forgotten, without events, so that the next sync does not delete them for it (their ids
    would be the first it ever shows of a type it was never granted)."""
    integration_id = grant.integration_id
    query = sa.select(FEEDS.c.follows_permissions).where(FEEDS.c.integration_id == integration_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = (await conn.execute(query)).first()
    if found is not None:
        if not found.follows_permissions:
            readable = event_data.readable_kinds(grant.permissions)
            await conn.execute(
                STATES.delete().where(
                    STATES.c.integration_id == integration_id, STATES.c.kind.not_in(readable)
                )
            )
            await conn.execute(
                FEEDS.update()
                .where(FEEDS.c.integration_id == integration_id)
                .values(follows_permissions=True)
            )
        return False
    await conn.execute(
        FEEDS.insert().values(
            integration_id=integration_id, created_date=utcnow(), follows_permissions=True
        )
    )
    if conn.dialect.name == "postgresql":
        await conn.execute(query)
    return True


async def _current(
    conn: AsyncConnection, grant: Grant, kinds: Collection[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """What the integration sees now of `kinds`: kind → id → data. Nothing of a kind its
    permissions do not let it read: taking such a permission away deletes what it saw of that
    kind from its feed, giving it back creates it again."""
    rows: dict[str, list[dict[str, Any]]] = {}
    ids: dict[str, set[str]] = {}
    readable = set(event_data.readable_kinds(grant.permissions))
    for kind, table in _TABLES.items():
        visible = views.visible_rows(grant, table)
        if kind not in readable:
            if kind in kinds:
                rows[kind] = []
            ids[kind] = set()  # a reference to it is left out of the data anyway
        elif kind in kinds:
            result = await conn.execute(
                sa.select(*table.c).select_from(visible.source).where(*visible.where)
            )
            rows[kind] = [dict(row._mapping) for row in result]
            ids[kind] = {row["id"] for row in rows[kind]}
        elif any(kind in event_data.REFERENCE_KEYS[wanted].values() for wanted in kinds):
            result = await conn.execute(
                sa.select(table.c.id).select_from(visible.source).where(*visible.where)
            )
            ids[kind] = set(result.scalars())
    current: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, found in rows.items():
        linked: dict[str, list[str]] = defaultdict(list)
        if kind in event_data.LINKED:
            _, link, own, other, _ = event_data.LINKED[kind]
            pairs = await conn.execute(
                sa.select(link.c[own], link.c[other]).where(link.c.source_id == grant.source_id)
            )
            for mine, theirs in pairs:
                if mine in ids[kind]:
                    linked[mine].append(theirs)
        current[kind] = {
            row["id"]: event_data.build(kind, row, ids, linked, grant.permissions) for row in found
        }
    return current


async def sync(
    conn: AsyncConnection, integration_id: str, kinds: Collection[str] | None = None
) -> Synced:
    """Bring the feed of `integration_id` up to what it sees now, in the caller's transaction
    (its stored view must be current: call after `views.refresh`).

    `kinds` limits the comparison to the kinds whose data can have changed (see `dirty`);
    None compares everything, as a first materialization always does.
    """
    done = Synced()
    grant = await load_grant_by_id(conn, integration_id)
    if grant is None or grant.status is IntegrationStatus.DISABLED:
        return done
    if await _lock_feed(conn, grant) or kinds is None:
        kinds = list(_TABLES)
    if not kinds:
        return done
    current = await _current(conn, grant, kinds)
    stored = await conn.execute(
        sa.select(STATES.c.kind, STATES.c.id, STATES.c.digest).where(
            STATES.c.integration_id == integration_id, STATES.c.kind.in_(list(current))
        )
    )
    before: dict[str, dict[str, str]] = defaultdict(dict)
    for kind, id_, digest in stored:
        before[kind][id_] = digest
    now = utcnow()
    events: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    stale: dict[str, list[str]] = defaultdict(list)
    for kind, objects in current.items():
        target = event_data.TARGETS[kind]
        old = before.get(kind, {})
        for id_ in sorted(objects):
            value = objects[id_]
            digest = _digest(value)
            seen = old.get(id_)
            if seen == digest:
                continue
            type_ = "CREATED" if seen is None else "UPDATED"
            if seen is not None:
                stale[kind].append(id_)
            events.append(_event(integration_id, now, type_, target, id_, value))
            states.append(
                {
                    "integration_id": integration_id,
                    "kind": kind,
                    "id": id_,
                    "digest": digest,
                    "data": value,
                }
            )
            done.add(type_, 1)
    readable = set(event_data.readable_kinds(grant.permissions))
    for kind in reversed(list(current)):  # what points to others leaves before they do
        gone = sorted(set(before.get(kind, {})) - set(current[kind]))
        if kind not in readable:
            # the permission to read the type was taken away: a DELETED without data (SQL
            # null), which is what marks the DELETED events listed of a type it may not read
            for id_ in gone:
                events.append(
                    _event(integration_id, now, "DELETED", event_data.TARGETS[kind], id_, sa.null())
                )
            done.add("DELETED", len(gone))
            stale[kind].extend(gone)
            continue
        for ids in _chunks(gone):
            last = await conn.execute(
                sa.select(STATES.c.id, STATES.c.data).where(
                    STATES.c.integration_id == integration_id,
                    STATES.c.kind == kind,
                    STATES.c.id.in_(ids),
                )
            )
            found: dict[str, Any] = dict(last.all())
            for id_ in ids:
                events.append(
                    _event(
                        integration_id, now, "DELETED", event_data.TARGETS[kind], id_, found[id_]
                    )
                )
            done.add("DELETED", len(ids))
            stale[kind].extend(ids)
    for kind, ids in stale.items():
        for chunk in _chunks(ids):
            await conn.execute(
                STATES.delete().where(
                    STATES.c.integration_id == integration_id,
                    STATES.c.kind == kind,
                    STATES.c.id.in_(chunk),
                )
            )
    for chunk in _chunks(states):
        await conn.execute(STATES.insert(), list(chunk))
    for chunk in _chunks(events):
        await conn.execute(EVENTS.insert(), list(chunk))
    return done


def _event(
    integration_id: str, now: Any, type_: str, target: str, id_: str, value: Any
) -> dict[str, Any]:
    return {
        "integration_id": integration_id,
        "date": now,
        "type": type_,
        "target_type": target,
        "target_id": id_,
        "data": value,
    }


@dataclass(frozen=True, slots=True)
class Changes:
    """What a write into a source changed, per table name (as an import counts it): rows
    inserted, updated and deleted, and owners whose links (`person_schools`,
    `class_sessions`) were replaced."""

    inserted: Mapping[str, int] = field(default_factory=dict)
    updated: Mapping[str, int] = field(default_factory=dict)
    deleted: Mapping[str, int] = field(default_factory=dict)
    relinked: Mapping[str, int] = field(default_factory=dict)


_LINK_OWNERS = {link.name: kind for kind, (_, link, _, _, _) in event_data.LINKED.items()}


def dirty(changes: Changes, refreshed: views.Refreshed) -> set[str]:
    """The kinds whose data an integration can see differently after `changes` (and the
    changes of its stored view, `refreshed`).

    A kind whose rows appeared or disappeared (for the integration: inserted, deleted, or
    entered or left its view) changes the references of every kind that points to it, and a
    deletion cascades through foreign keys without being counted, so that spreads to what
    points to those kinds in turn. Updated rows and replaced links change only their own kind.
    """
    kinds = {kind for kind in _TABLES if changes.updated.get(kind)}
    kinds |= {_LINK_OWNERS[name] for name in changes.relinked if name in _LINK_OWNERS}
    moved = {
        kind
        for kind in _TABLES
        if changes.inserted.get(kind)
        or changes.deleted.get(kind)
        or refreshed.added.get(kind)
        or refreshed.removed.get(kind)
    }
    while True:
        spread = {
            kind
            for kind in _TABLES
            if kind not in moved and set(event_data.REFERENCE_KEYS[kind].values()) & moved
        }
        if not spread:
            return kinds | moved
        moved |= spread


async def refresh_source(
    conn: AsyncConnection, source_id: str, changes: Changes | None = None
) -> Synced:
    """After the graph rows of `source_id` changed: refresh the stored views of its SELECTED
    integrations, then bring the feed of each of its integrations up to date (comparing only
    the kinds `changes` can have touched, when given). Other writers of the source's scope
    wait from here until the caller commits (`views.lock_source`)."""
    await views.lock_source(conn, source_id)
    done = Synced()
    ids = await conn.execute(
        sa.select(_integrations.c.id, _integrations.c.scope)
        .where(_integrations.c.source_id == source_id)
        .order_by(_integrations.c.id)
    )
    for integration_id, scope in ids.all():
        refreshed = views.Refreshed()
        if scope == Scope.SELECTED.value:
            refreshed = await views.refresh(conn, integration_id)
        kinds = None if changes is None else dirty(changes, refreshed)
        done.merge(await sync(conn, integration_id, kinds))
    return done


async def sync_all(conn: AsyncConnection) -> Synced:
    """Bring every integration's feed up to date (a database written before the feed existed
    gets each integration's first materialization this way)."""
    done = Synced()
    ids = await conn.execute(sa.select(_integrations.c.id).order_by(_integrations.c.id))
    for (integration_id,) in ids.all():
        done.merge(await sync(conn, integration_id))
    return done


async def forget(conn: AsyncConnection, integration_id: str) -> None:
    """Delete the feed of an integration that is being destroyed."""
    for table in (EVENTS, STATES, FEEDS):
        await conn.execute(table.delete().where(table.c.integration_id == integration_id))
