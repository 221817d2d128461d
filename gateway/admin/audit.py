"""The audit log: who changed what, when, and the value before and after.

Every service function that changes something calls `record` on the connection of its own
transaction, so a change and its audit entry commit (or roll back) together.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.coltypes import utcnow
from gateway.errors import ValidationFailed

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_log = models.table_of(models.AuditEntry)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change: an admin key over the admin API, or the command line (no key)."""

    kind: str
    admin_key_id: str | None = None
    admin_key_name: str | None = None


CLI = Actor("cli")


def admin_key_actor(key_id: str, name: str) -> Actor:
    """The actor of a request to /admin/graphql authorised by the admin key `key_id`."""
    return Actor("admin_api", key_id, name)


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str | None,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Append one entry; `before`/`after` are JSON snapshots (None for creation/destruction)."""
    entry = models.AuditEntry(
        at=utcnow(),
        admin_key_id=actor.admin_key_id,
        admin_key_name=actor.admin_key_name,
        actor=actor.kind,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        before=before,
        after=after,
    )
    await conn.execute(sa.insert(_log).values(entry.model_dump()))


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit entry as read back."""

    id: str
    at: datetime
    actor: str
    admin_key_id: str | None
    admin_key_name: str | None
    action: str
    subject_type: str
    subject_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        """The entry as a JSON object with the admin API's field names."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "adminKeyId": self.admin_key_id,
            "adminKeyName": self.admin_key_name,
            "action": self.action,
            "subjectType": self.subject_type,
            "subjectId": self.subject_id,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True, slots=True)
class Page:
    """A page of entries, newest first; `end_cursor` continues after the last one."""

    entries: list[Entry]
    has_next_page: bool

    @property
    def start_cursor(self) -> str | None:
        """The cursor of the first entry of the page."""
        return _cursor(self.entries[0]) if self.entries else None

    @property
    def end_cursor(self) -> str | None:
        """The cursor of the last entry; pass it as `after` for the next page."""
        return _cursor(self.entries[-1]) if self.entries else None

    def as_json(self) -> dict[str, Any]:
        """The page as one JSON object (what `gateway audit --json` prints)."""
        return {
            "entries": [e.as_json() for e in self.entries],
            "pageInfo": {"hasNextPage": self.has_next_page, "endCursor": self.end_cursor},
        }


def _cursor(entry: Entry) -> str:
    raw = f"{entry.at.isoformat()}|{entry.id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, entry_id = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().split("|")
        return datetime.fromisoformat(at), entry_id
    except (ValueError, UnicodeError, binascii.Error):
        raise ValidationFailed(
            f"cursor {cursor!r} is not an audit log cursor; pass the endCursor of a previous page"
        ) from None


async def list_entries(
    conn: AsyncConnection,
    *,
    subject_id: str | None = None,
    action: str | None = None,
    first: int = DEFAULT_PAGE_SIZE,
    after: str | None = None,
) -> Page:
    """Entries newest first, optionally only those about `subject_id` or of one `action`.

    Paging is keyset-based on (at, id), so a page deep in a long log costs what the first costs.
    """
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"page size {first} is not between 1 and {MAX_PAGE_SIZE}")
    query = sa.select(_log).order_by(_log.c.at.desc(), _log.c.id.desc()).limit(first + 1)
    if subject_id is not None:
        query = query.where(_log.c.subject_id == subject_id)
    if action is not None:
        query = query.where(_log.c.action == action)
    if after is not None:
        at, entry_id = _decode_cursor(after)
        query = query.where(sa.or_(_log.c.at < at, sa.and_(_log.c.at == at, _log.c.id < entry_id)))
    rows = (await conn.execute(query)).all()
    entries = [
        Entry(
            id=row.id,
            at=row.at,
            actor=row.actor,
            admin_key_id=row.admin_key_id,
            admin_key_name=row.admin_key_name,
            action=row.action,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            before=row.before,
            after=row.after,
        )
        for row in rows[:first]
    ]
    return Page(entries=entries, has_next_page=len(rows) > first)
