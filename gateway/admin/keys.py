"""Admin keys: the bearer credentials of /admin/graphql, stored only as SHA-256 digests."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.access.tokens import digest, digests_equal, new_token
from gateway.admin import audit
from gateway.admin.audit import Actor
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
    name = name.strip()
    if not name:
        raise ValidationFailed("the admin key name is empty; pass a name such as 'ops-team'")
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
