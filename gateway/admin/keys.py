"""Admin keys: the bearer credentials of /admin/graphql, stored only as SHA-256 digests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.access.tokens import digest, digests_equal, new_token
from gateway.admin import audit
from gateway.admin.audit import Actor
from gateway.admin.service import canonical_uuid, clean_text
from gateway.errors import ValidationFailed

_keys = models.table_of(models.AdminKey)


@dataclass(frozen=True, slots=True)
class CreatedAdminKey:
    """A new admin key; `key` is shown this once and never stored."""

    id: str
    name: str
    key: str


async def create_admin_key(
    conn: AsyncConnection, name: str, *, actor: Actor = audit.CLI
) -> CreatedAdminKey:
    """Create an admin key named `name`; only its digest is stored. The creation is audited."""
    cleaned = clean_text(name, "admin key name")
    if cleaned is None:
        raise ValidationFailed("the admin key name is empty; pass a name such as 'ops-team'")
    name = cleaned
    key = new_token()
    row = models.AdminKey(name=name, key_digest=digest(key))
    await conn.execute(sa.insert(_keys).values(row.model_dump()))
    await audit.record(
        conn,
        actor,
        "admin_key.create",
        "admin_key",
        row.id,
        before=None,
        after={"id": row.id, "name": name, "createdDate": row.created_date.isoformat()},
    )
    return CreatedAdminKey(id=row.id, name=name, key=key)


@dataclass(frozen=True, slots=True)
class AdminKeyInfo:
    """An admin key as listings show it: never the key, nor its digest."""

    id: str
    name: str
    created_date: datetime

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "createdDate": self.created_date.isoformat()}


_listed = sa.select(_keys.c.id, _keys.c.name, _keys.c.created_date)


async def list_admin_keys(conn: AsyncConnection) -> list[AdminKeyInfo]:
    """Every admin key, oldest first."""
    rows = await conn.execute(_listed.order_by(_keys.c.created_date, _keys.c.id))
    return [AdminKeyInfo(row.id, row.name, row.created_date) for row in rows]


async def revoke_admin_key(
    conn: AsyncConnection, key_id: str, *, actor: Actor = audit.CLI
) -> AdminKeyInfo:
    """Delete admin key `key_id`: requests bearing it are refused from now on. Audited.

    The audit log keeps the key's id and name on the entries it wrote, so the trail survives.
    """
    key_id = canonical_uuid(key_id, "admin key")
    row = (await conn.execute(_listed.where(_keys.c.id == key_id))).first()
    if row is None:
        raise ValidationFailed(
            f"admin key {key_id} does not exist; `gateway admin-key list` shows them"
        )
    revoked = AdminKeyInfo(row.id, row.name, row.created_date)
    await conn.execute(sa.delete(_keys).where(_keys.c.id == key_id))
    await audit.record(
        conn, actor, "admin_key.revoke", "admin_key", key_id, before=revoked.as_json(), after=None
    )
    return revoked


async def authenticate_admin_key(conn: AsyncConnection, key: str) -> Actor | None:
    """The actor of admin key `key`, or None when no admin key has that value.

    Integration access tokens live in another table, so one never authenticates here.
    """
    wanted = digest(key)
    row = (
        await conn.execute(
            sa.select(_keys.c.id, _keys.c.name, _keys.c.key_digest).where(
                _keys.c.key_digest == wanted
            )
        )
    ).first()
    if row is None or not digests_equal(row.key_digest, wanted):
        return None
    return audit.admin_key_actor(row.id, row.name)
