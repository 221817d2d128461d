"""What the import remembers of each person for later deltas and never serves (the
`oneroster_people` table): the orgs of the user's row and its roles.csv rows whole.

A delta roles.csv is merged into a person's role rows by their sourcedIds, and the person's
schools come from the orgs of the user's row and of those role rows; `properties` cannot keep
any of these (DESIGN §3), so they live here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway import models
from gateway.importers.run import PEOPLE, Run

ONEROSTER_PEOPLE = models.table_of(models.OneRosterPerson)


@dataclass(frozen=True)
class Remembered:
    """A person's user-row orgs and role rows; `stored` when read from the table (not from the
    `properties` that imports before the table existed wrote)."""

    orgs: list[str]
    roles: list[dict[str, Any]]
    stored: bool = field(default=True, compare=False)


async def fetch(run: Run, ids: Collection[str]) -> dict[str, Remembered]:
    """What is remembered of the people `ids` (those the source has)."""
    if not ids:
        return {}
    rows = await run.conn.execute(
        ONEROSTER_PEOPLE.select().where(run.store.among(ONEROSTER_PEOPLE.c.person_id, ids))
    )
    found = {
        row["person_id"]: Remembered(list(row["orgs"]), list(row["roles"]))
        for row in rows.mappings()
    }
    missing = [i for i in ids if i not in found]
    if missing:
        # People written before this table existed kept these in `properties`.
        legacy = await run.conn.execute(
            PEOPLE.select()
            .with_only_columns(PEOPLE.c.id, PEOPLE.c.properties)
            .where(run.store.among(PEOPLE.c.id, missing))
        )
        for person_id, properties in legacy:
            found[person_id] = _from_properties(properties or {})
    return found


def _from_properties(properties: Mapping[str, Any]) -> Remembered:
    orgs = [str(properties.get("primaryOrgSourcedId") or "").strip()]
    orgs += [o.strip() for o in str(properties.get("orgSourcedIds") or "").split(",")]
    roles = [dict(e) for e in properties.get("roles", []) if "sourcedId" in e]
    return Remembered([o for o in orgs if o], roles, stored=False)


async def write(
    run: Run,
    remembered: Mapping[str, Remembered],
    current: Mapping[str, Remembered],
    *,
    new: bool = False,
) -> None:
    """Store `remembered` (by person id) where it differs from `current`; `new` when the people
    were just inserted by this import (nothing is stored of them yet)."""
    changed = {
        person_id: value
        for person_id, value in remembered.items()
        if not (person_id in current and current[person_id].stored) or current[person_id] != value
    }
    if not changed:
        return
    if not new:
        await run.conn.execute(
            ONEROSTER_PEOPLE.delete().where(run.store.among(ONEROSTER_PEOPLE.c.person_id, changed))
        )
    await run.store.insert(
        ONEROSTER_PEOPLE,
        [
            {
                "person_id": person_id,
                "source_id": run.source_id,
                "orgs": value.orgs,
                "roles": value.roles,
            }
            for person_id, value in changed.items()
        ],
    )
