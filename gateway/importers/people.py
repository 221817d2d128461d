"""users.csv → People: names, contacts, grades and identifiers from the user row; roles from the
1.1 role column or the staged 1.2 roles.csv; schools from their orgs; demographics from the
staged demographics.csv.

A person's 1.2 role rows are remembered whole (`remembered.py`), so that a later delta roles.csv
can be merged into them, also for people whom that delta's users.csv does not list; their
`properties.roles` shows them without sourcedIds and orgs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from gateway.importers import remembered
from gateway.importers.cells import TO_BE_DELETED, USER_ROLES, Cells
from gateway.importers.orgs import identifiers, sourced_id_of
from gateway.importers.properties import kept
from gateway.importers.reading import OneRosterError, Row
from gateway.importers.remembered import Remembered
from gateway.importers.run import PEOPLE, PERSON_SCHOOLS, Run
from gateway.importers.staging import staged
from gateway.importers.store import SEEN, STAGED_DEMOGRAPHICS, STAGED_ROLES

_USER_IDS = re.compile(r"\{([^:{}]*):([^{}]*)\}")


def _role(value: str | None) -> str | None:
    if not value:
        return None
    lowered = value.lower()
    return USER_ROLES.get(lowered, "MEMBER" if lowered.startswith("ext:") else None)


# ---------------------------------------------------------------- roles, schools, demographics


def _role_entries(
    run: Run, known: Remembered | None, staged: Sequence[tuple[bool, dict[str, Any]]]
) -> list[dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    if run.mode("roles") != "bulk" and known is not None:
        for entry in known.roles:
            entries[entry["sourcedId"]] = entry
    for live, entry in staged:
        if live:
            entries[entry["sourcedId"]] = entry
        else:
            entries.pop(entry["sourcedId"], None)
    return sorted(entries.values(), key=lambda e: (e.get("roleType") != "primary", e["sourcedId"]))


def _roles(user_role: str | None, entries: Sequence[Mapping[str, Any]]) -> list[str]:
    roles: list[str] = []
    for raw in (user_role, *(e.get("role") for e in entries)):
        role = _role(raw)
        if role is not None and role not in roles:
            roles.append(role)
    return roles


def _schools(run: Run, org_ids: Sequence[str]) -> list[str]:
    schools: list[str] = []
    for org in org_ids:
        found = run.resolve_org(org)
        if found is not None and found[0] == "school" and found[1] and found[1] not in schools:
            schools.append(found[1])
    return schools


def _demographics(
    run: Run,
    person_id: str,
    existing: Mapping[str, Any] | None,
    staged: Mapping[str, dict[str, Any] | None],
) -> dict[str, Any] | None:
    if person_id in staged:
        return staged[person_id]
    if run.mode("demographics") == "bulk" or existing is None:
        return None
    value: dict[str, Any] | None = existing["demographics"]
    return value


# ---------------------------------------------------------------- users.csv


def _user_identifiers(cells: Cells, row: Row, sourced_id: str) -> list[dict[str, str]]:
    extra: list[tuple[str, str | None]] = [
        ("username", cells.text(row, "username")),
        ("identifier", cells.text(row, "identifier")),
    ]
    user_ids = cells.text(row, "userIds")
    if user_ids is not None:
        pairs = _USER_IDS.findall(user_ids)
        if not pairs:
            cells.warnings.add(
                "userIds",
                f"{cells.file}, line {row.line}, column 'userIds': '{user_ids}' is not a list of "
                "{type:identifier}; kept as one identifier",
                key=cells.file,
            )
            pairs = [("userId", user_ids)]
        extra.extend((kind.strip() or "userId", value.strip()) for kind, value in pairs)
    extra.append(("userMasterIdentifier", cells.text(row, "userMasterIdentifier")))
    return identifiers(sourced_id, *extra)


def _user_orgs(run: Run, cells: Cells, row: Row) -> list[str]:
    """The orgs of a users.csv row (1.2 primaryOrgSourcedId, 1.1 orgSourcedIds, which 1.1
    requires), checked."""
    org_ids = (
        cells.items(row, "orgSourcedIds")
        if run.manifest.version == "1.2"
        else cells.required_items(row, "orgSourcedIds")
    )
    columns = (
        ("primaryOrgSourcedId", [cells.text(row, "primaryOrgSourcedId")]),
        ("orgSourcedIds", org_ids),
    )
    orgs: list[str] = []
    for column, values in columns:
        for org in values:
            if org is None:
                continue
            if run.resolve_org(org) is None:
                raise cells.error(row, column, f"unknown org '{org}' (not in orgs.csv)")
            orgs.append(org)
    return orgs


def _properties(base: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A person's `properties`: the kept users.csv columns and the kept columns of each role."""
    properties = dict(base)
    if entries:
        properties["roles"] = [kept("roles", entry) for entry in entries]
    return properties


def _person(
    run: Run,
    cells: Cells,
    row: Row,
    sourced_id: str,
    existing: Mapping[str, Any] | None,
    known: Remembered | None,
    staged_roles: Sequence[tuple[bool, dict[str, Any]]],
    staged_demographics: Mapping[str, dict[str, Any] | None],
) -> tuple[dict[str, Any], list[str], Remembered]:
    person_id = run.id("person", sourced_id)
    user_role = cells.text(row, "role")
    # 1.1 requires the role (1.2 gives roles in roles.csv)
    cells.enum(row, "role", USER_ROLES, extension="MEMBER", required=run.manifest.version != "1.2")
    cells.boolean(row, "enabledUser")
    entries = _role_entries(run, known, staged_roles)
    user_orgs = _user_orgs(run, cells, row)
    kept_roles = None
    from_1_1 = _given_by_1_1(run, row, existing, known, entries)
    if from_1_1 is not None:
        kept_roles, earlier_orgs = from_1_1
        user_orgs = list(dict.fromkeys([*earlier_orgs, *user_orgs]))
    orgs = user_orgs + [e["orgSourcedId"] for e in entries if "orgSourcedId" in e]
    forgotten = _forgotten(run, orgs)
    if forgotten is not None:
        raise cells.error(row, "sourcedId", _forgotten_message(sourced_id, forgotten))
    properties = _properties(kept("users", row.cells), entries)
    given = cells.required(row, "givenName")
    family = cells.required(row, "familyName")
    display = " ".join(
        n
        for n in (
            cells.text(row, "preferredGivenName") or given,
            cells.text(row, "preferredFamilyName") or family,
        )
        if n
    )
    values = {
        "id": person_id,
        "source_id": run.source_id,
        "identifiers": _user_identifiers(cells, row, sourced_id),
        "properties": properties,
        "district_id": run.district_id,
        "first_name": given,
        "middle_name": cells.text(row, "middleName"),
        "last_name": family,
        "display_name": display or None,
        "picture_url": None,
        "roles": kept_roles if kept_roles is not None else _roles(user_role, entries),
        "email": cells.text(row, "email"),
        "phone": cells.text(row, "phone") or cells.text(row, "sms"),
        "locale": None,
        "time_zone": None,
        "graduation_year": None,
        "grade_levels": cells.grades(row, "grades"),
        "demographics": _demographics(run, person_id, existing, staged_demographics),
        "address": None,
    }
    return values, _schools(run, orgs), Remembered(user_orgs, entries)


def _given_by_1_1(
    run: Run,
    row: Row,
    existing: Mapping[str, Any] | None,
    known: Remembered | None,
    entries: Sequence[Mapping[str, Any]],
) -> tuple[list[str], list[str]] | None:
    """The roles and users.csv orgs a person keeps when a delta users.csv row without a `role`
    column (1.2's) lists them, their roles and orgs came from the users.csv of a 1.1 import,
    and no roles.csv row gives them roles: a delta that says nothing of roles changes none (a
    district moving from 1.1 to 1.2 lost them; found by a review); else None. A person of a
    1.2 import has roles only from roles.csv, which are remembered (`known.roles`)."""
    if (
        run.mode("users") != "delta"
        or "role" in row.cells
        or entries
        or known is None
        or known.roles
        or existing is None
        or not existing["roles"]
    ):
        return None
    return list(existing["roles"]), list(known.orgs)


async def import_users(run: Run) -> None:
    """users.csv → People (with their staged roles and demographics) and their schools."""
    mode = run.mode("users")
    if mode == "absent":
        return
    required = ["sourcedId", "givenName", "familyName"]
    if run.manifest.version != "1.2":
        required += ["role", "orgSourcedIds"]
    csv_file, cells = run.open("users", required)
    # Into a source without people, every live row is a new person (their ids were checked
    # against the rows seen): nothing is remembered of them and they have no schools yet.
    new = PEOPLE.name in run.store.empty
    for batch in csv_file.batches(run.batch_size):
        seen: list[tuple[str, int, str]] = []
        dead: set[str] = set()
        live: list[tuple[Row, str]] = []
        for row in batch:
            sourced_id = cells.required(row, "sourcedId")
            person_id = run.id("person", sourced_id)
            seen.append((person_id, row.line, sourced_id))
            if cells.status(row, mode) == TO_BE_DELETED:
                dead.add(person_id)
            else:
                live.append((row, sourced_id))
        await run.check_duplicates(cells.file, "person", seen)
        ids = [run.id("person", sid) for _, sid in live]
        existing = await run.store.fetch_existing(PEOPLE, ids)
        known = {} if new else await remembered.fetch(run, ids)
        staged_roles, staged_demographics = await staged(run, ids)
        people: list[dict[str, Any]] = []
        schools: dict[str, list[str]] = {}
        memory: dict[str, Remembered] = {}
        for row, sourced_id in live:
            person_id = run.id("person", sourced_id)
            values, school_ids, memory[person_id] = _person(
                run,
                cells,
                row,
                sourced_id,
                existing.get(person_id),
                known.get(person_id),
                staged_roles.get(person_id, ()),
                staged_demographics,
            )
            people.append(values)
            schools[person_id] = school_ids
        await run.store.write(PEOPLE, people, existing)
        await remembered.write(run, memory, known, new=new)
        await run.store.replace_links(PERSON_SCHOOLS, "person_id", "school_id", schools, new=new)
        if mode == "delta":
            await run.store.delete(PEOPLE, dead)
        await run.store.mark_seen("person", [(i, line, i not in dead) for i, line, _ in seen])


async def update_other_people(run: Run) -> None:
    """Fold staged roles and demographics into people that users.csv did not list (delta), and
    find again the schools of people in a department that a delta orgs.csv lists (moved to
    another school, or deleted)."""
    if run.bulk("person"):
        return
    everyone = run.mode("roles") == "bulk" or run.mode("demographics") == "bulk"
    in_users = sa.select(SEEN.c.id).where(SEEN.c.kind == "person")
    if everyone:
        pending = (
            sa.select(PEOPLE.c.id.label("id")).where(PEOPLE.c.source_id == run.source_id).subquery()
        )
    else:
        pending = sa.union(
            sa.select(STAGED_ROLES.c.person_id.label("id")),
            sa.select(STAGED_DEMOGRAPHICS.c.person_id.label("id")),
        ).subquery()
    after: str | None = None
    while True:
        query = sa.select(pending.c.id).where(pending.c.id.not_in(in_users))
        if after is not None:
            query = query.where(pending.c.id > after)
        ids = list(
            (await run.conn.execute(query.order_by(pending.c.id).limit(run.batch_size))).scalars()
        )
        if not ids:
            break
        after = ids[-1]
        await _fold(run, ids)
    if run.changed_orgs and not everyone:  # (with `everyone`, each was folded above)
        folded = sa.union(in_users, sa.select(pending.c.id))
        await _fold_people_of_changed_orgs(run, folded)


async def _fold_people_of_changed_orgs(run: Run, folded: sa.CompoundSelect[Any]) -> None:
    """`_fold` the people whose remembered orgs or role rows name an org of `changed_orgs`,
    but those in `folded` (done already), reading what is remembered of everyone in batches."""
    table = remembered.ONEROSTER_PEOPLE
    done = folded.subquery()
    after: str | None = None
    while True:
        query = sa.select(table.c.person_id, table.c.orgs, table.c.roles).where(
            table.c.source_id == run.source_id, table.c.person_id.not_in(sa.select(done.c.id))
        )
        if after is not None:
            query = query.where(table.c.person_id > after)
        batch = (
            await run.conn.execute(query.order_by(table.c.person_id).limit(run.batch_size))
        ).all()
        if not batch:
            return
        after = batch[-1].person_id
        ids = [
            row.person_id
            for row in batch
            if any(org in run.changed_orgs for org in _orgs_of(row.orgs, row.roles))
        ]
        await _fold(run, ids)


def _orgs_of(orgs: Sequence[str], roles: Sequence[Mapping[str, Any]]) -> list[str]:
    """A person's orgs: those of their users.csv row, then those of their role rows."""
    return [*orgs, *(e["orgSourcedId"] for e in roles if "orgSourcedId" in e)]


async def _fold(run: Run, ids: Sequence[str]) -> None:
    """Write the people `ids` again from what is remembered of them, their staged roles and
    demographics, and the orgs as this import knows them."""
    if not ids:
        return
    existing = await run.store.fetch(PEOPLE, ids)
    known = await remembered.fetch(run, ids)
    staged_roles, staged_demographics = await staged(run, ids)
    people: list[dict[str, Any]] = []
    schools: dict[str, list[str]] = {}
    memory: dict[str, Remembered] = {}
    for person_id, current in existing.items():
        was = known.get(person_id) or Remembered([], [])
        entries = _role_entries(run, was, staged_roles.get(person_id, ()))
        properties = _properties(kept("users", current["properties"] or {}), entries)
        orgs = _orgs_of(was.orgs, entries)
        forgotten = _forgotten(run, orgs)
        if forgotten is not None:
            # the file that brought the person into this import
            file = "roles.csv" if person_id in staged_roles else "demographics.csv"
            if person_id not in staged_roles and person_id not in staged_demographics:
                file = "orgs.csv"
            who = sourced_id_of(current["identifiers"], person_id)
            raise OneRosterError(_forgotten_message(who, forgotten), file=file)
        memory[person_id] = Remembered(was.orgs, entries)
        values = {k: v for k, v in current.items() if k not in ("created_date", "updated_date")}
        values.update(
            properties=properties,
            roles=_roles(properties.get("role"), entries),
            demographics=_demographics(run, person_id, current, staged_demographics),
        )
        people.append(values)
        schools[person_id] = _schools(run, orgs)
    await run.store.write(PEOPLE, people, existing)
    await remembered.write(run, memory, known)
    await run.store.replace_links(PERSON_SCHOOLS, "person_id", "school_id", schools)


def _forgotten(run: Run, orgs: Sequence[str]) -> str | None:
    """The first of a person's `orgs` that this import cannot resolve (but for those it
    deletes) in a source whose orgs an earlier version did not remember (`Run.orgs_remembered`):
    a department only its orgs.csv knew, whose school the person would lose silently (found by
    a review). Where they are remembered, an org nowhere now is one deleted since, whose school
    the person has lost: None."""
    if run.orgs_remembered:
        return None
    return next((o for o in orgs if o not in run.gone_orgs and run.resolve_org(o) is None), None)


def _forgotten_message(who: str, org: str) -> str:
    return (
        f"user '{who}' is in org '{org}' (by an earlier import), which this import cannot "
        "resolve: the source was imported by a version that did not remember its departments; "
        "import a bulk orgs.csv (alone will do), then this folder"
    )
