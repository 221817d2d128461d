"""users.csv, roles.csv (1.2) and demographics.csv → People with their roles, schools and
demographics, and users' agentSourcedIds → Agents.

roles.csv and demographics.csv are staged first, so that each Person row is written once, whole:
an unchanged person keeps its updated date. A person's 1.2 role rows are kept in
`properties.roles`, so that a delta roles.csv can be merged into them later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from gateway.importers.cells import (
    AGENT_RELATIONSHIPS,
    RACE_FLAGS,
    ROLE_TYPES,
    SEXES,
    TO_BE_DELETED,
    USER_ROLES,
    Cells,
)
from gateway.importers.orgs import identifiers
from gateway.importers.reading import OneRosterError, Row
from gateway.importers.run import AGENTS, PEOPLE, PERSON_SCHOOLS, Ref, Run
from gateway.importers.store import SEEN, STAGED_DEMOGRAPHICS, STAGED_ROLES

_USER_IDS = re.compile(r"\{([^:{}]*):([^{}]*)\}")
_PRIVATE = ("password",)
"""Columns left out of `properties`: a password must not be served to applications."""

_ROLE_COLUMNS = (
    "sourcedId",
    "roleType",
    "role",
    "orgSourcedId",
    "beginDate",
    "endDate",
    "userProfileSourcedId",
)

EMPTY_DEMOGRAPHICS: dict[str, Any] = {
    "birthday": None,
    "gender": None,
    "races": [],
    "hispanicOrLatinoEthnicity": None,
    "englishLanguageLearner": None,
    "individualizedEducationPlan": None,
    "economicallyDisadvantaged": None,
    "section504": None,
    "giftedTalented": None,
    "migrant": None,
    "homeless": None,
    "fosterCare": None,
    "militaryConnected": None,
    "primaryLanguage": None,
    "countryOfBirth": None,
    "stateOfBirth": None,
    "cityOfBirth": None,
}
"""The shape of Person.demographics (DESIGN §3), camelCase; OneRoster fills some of it."""


def _role(value: str | None) -> str | None:
    if not value:
        return None
    lowered = value.lower()
    return USER_ROLES.get(lowered, "MEMBER" if lowered.startswith("ext:") else None)


# ---------------------------------------------------------------- staging


async def stage_roles(run: Run) -> None:
    """roles.csv → the staging table (checked: enums, dates, orgs, duplicate sourcedIds)."""
    mode = run.mode("roles")
    if mode == "absent":
        return
    csv_file, cells = run.open(
        "roles", ("sourcedId", "userSourcedId", "roleType", "role", "orgSourcedId")
    )
    for batch in csv_file.batches(run.batch_size):
        seen: list[tuple[str, int, str]] = []
        staged: list[dict[str, Any]] = []
        for row in batch:
            sourced_id = cells.required(row, "sourcedId")
            seen.append((run.id("role", sourced_id), row.line, sourced_id))
            live = cells.status(row, mode) != TO_BE_DELETED
            if not live and mode == "bulk":
                continue
            user = cells.required(row, "userSourcedId")
            entry = {"sourcedId": sourced_id}
            if live:
                cells.enum(row, "roleType", ROLE_TYPES, required=True)
                cells.enum(row, "role", USER_ROLES, extension="MEMBER", required=True)
                run.school_of(cells, row, "orgSourcedId", cells.required(row, "orgSourcedId"))
                cells.date(row, "beginDate")
                cells.date(row, "endDate")
                entry.update({c: row.cells[c].strip() for c in _ROLE_COLUMNS if c in row.cells})
            staged.append(
                {
                    "line": row.line,
                    "person_id": run.id("person", user),
                    "user_sid": user,
                    "sourced_id": sourced_id,
                    "live": live,
                    "entry": entry,
                }
            )
        await run.check_duplicates(cells.file, "role", seen)
        await run.store.mark_seen("role", [(i, line, True) for i, line, _ in seen])
        if staged:
            await run.conn.execute(STAGED_ROLES.insert(), staged)


def demographics_of(cells: Cells, row: Row) -> dict[str, Any]:
    """A demographics.csv row as Person.demographics."""
    birthday = cells.date(row, "birthDate")
    races = [code for flag, code in RACE_FLAGS if cells.boolean(row, flag)]
    return {
        **EMPTY_DEMOGRAPHICS,
        "birthday": birthday.isoformat() if birthday else None,
        "gender": cells.enum(row, "sex", SEXES, extension="other"),
        "races": races,
        "hispanicOrLatinoEthnicity": cells.boolean(row, "hispanicOrLatinoEthnicity"),
        "countryOfBirth": cells.text(row, "countryOfBirthCode"),
        "stateOfBirth": cells.text(row, "stateOfBirthAbbreviation"),
        "cityOfBirth": cells.text(row, "cityOfBirth"),
    }


async def stage_demographics(run: Run) -> None:
    """demographics.csv → the staging table (one row per user; sourcedId is the user's)."""
    mode = run.mode("demographics")
    if mode == "absent":
        return
    csv_file, cells = run.open("demographics", ("sourcedId",))
    for batch in csv_file.batches(run.batch_size):
        seen: list[tuple[str, int, str]] = []
        staged: list[dict[str, Any]] = []
        for row in batch:
            user = cells.required(row, "sourcedId")
            person_id = run.id("person", user)
            seen.append((person_id, row.line, user))
            live = cells.status(row, mode) != TO_BE_DELETED
            if not live and mode == "bulk":
                continue
            staged.append(
                {
                    "person_id": person_id,
                    "line": row.line,
                    "user_sid": user,
                    "live": live,
                    "demographics": demographics_of(cells, row) if live else None,
                }
            )
        await run.check_duplicates(cells.file, "demographic", seen)
        await run.store.mark_seen("demographic", [(i, line, True) for i, line, _ in seen])
        if staged:
            await run.conn.execute(STAGED_DEMOGRAPHICS.insert(), staged)


async def _staged(
    run: Run, ids: Sequence[str]
) -> tuple[dict[str, list[tuple[bool, dict[str, Any]]]], dict[str, dict[str, Any] | None]]:
    """The staged role rows (in file order) and demographics of the people `ids`."""
    roles: dict[str, list[tuple[bool, dict[str, Any]]]] = {}
    demographics: dict[str, dict[str, Any] | None] = {}
    if run.mode("roles") != "absent":
        rows = await run.conn.execute(
            sa.select(STAGED_ROLES.c.person_id, STAGED_ROLES.c.live, STAGED_ROLES.c.entry)
            .where(run.store.among(STAGED_ROLES.c.person_id, ids))
            .order_by(STAGED_ROLES.c.line)
        )
        for person_id, live, entry in rows:
            roles.setdefault(person_id, []).append((live, entry))
    if run.mode("demographics") != "absent":
        found = await run.conn.execute(
            sa.select(STAGED_DEMOGRAPHICS.c.person_id, STAGED_DEMOGRAPHICS.c.demographics).where(
                run.store.among(STAGED_DEMOGRAPHICS.c.person_id, ids)
            )
        )
        demographics = {row.person_id: row.demographics for row in found}
    return roles, demographics


# ---------------------------------------------------------------- roles, schools, demographics


def _role_entries(
    run: Run, existing: Mapping[str, Any] | None, staged: Sequence[tuple[bool, dict[str, Any]]]
) -> list[dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    if run.mode("roles") != "bulk" and existing is not None:
        for entry in (existing["properties"] or {}).get("roles", []):
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
    """The orgs of a users.csv row (1.1 orgSourcedIds, 1.2 primaryOrgSourcedId), checked."""
    orgs = cells.items(row, "orgSourcedIds")
    column = "orgSourcedIds"
    primary = cells.text(row, "primaryOrgSourcedId")
    for org in orgs:
        if run.resolve_org(org) is None:
            raise cells.error(row, column, f"unknown org '{org}' (not in orgs.csv)")
    if primary is not None:
        if run.resolve_org(primary) is None:
            raise cells.error(
                row, "primaryOrgSourcedId", f"unknown org '{primary}' (not in orgs.csv)"
            )
        orgs.insert(0, primary)
    return orgs


def _person(
    run: Run,
    cells: Cells,
    row: Row,
    sourced_id: str,
    existing: Mapping[str, Any] | None,
    staged_roles: Sequence[tuple[bool, dict[str, Any]]],
    staged_demographics: Mapping[str, dict[str, Any] | None],
) -> tuple[dict[str, Any], list[str]]:
    person_id = run.id("person", sourced_id)
    user_role = cells.text(row, "role")
    cells.enum(row, "role", USER_ROLES, extension="MEMBER")
    cells.boolean(row, "enabledUser")
    entries = _role_entries(run, existing, staged_roles)
    orgs = _user_orgs(run, cells, row) + [e["orgSourcedId"] for e in entries if "orgSourcedId" in e]
    properties: dict[str, Any] = {k: v for k, v in row.cells.items() if k not in _PRIVATE}
    if entries:
        properties["roles"] = entries
    given = cells.text(row, "givenName")
    family = cells.text(row, "familyName")
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
        "roles": _roles(user_role, entries),
        "email": cells.text(row, "email"),
        "phone": cells.text(row, "phone") or cells.text(row, "sms"),
        "locale": None,
        "time_zone": None,
        "graduation_year": None,
        "grade_levels": cells.grades(row, "grades"),
        "demographics": _demographics(run, person_id, existing, staged_demographics),
        "address": None,
    }
    return values, _schools(run, orgs)


async def import_users(run: Run) -> None:
    """users.csv → People (with their staged roles and demographics) and their schools."""
    mode = run.mode("users")
    if mode == "absent":
        return
    required = ["sourcedId", "givenName", "familyName"]
    if run.manifest.version != "1.2":
        required += ["role", "orgSourcedIds"]
    csv_file, cells = run.open("users", required)
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
        existing = await run.store.fetch(PEOPLE, ids)
        staged_roles, staged_demographics = await _staged(run, ids)
        people: list[dict[str, Any]] = []
        schools: dict[str, list[str]] = {}
        for row, sourced_id in live:
            person_id = run.id("person", sourced_id)
            values, school_ids = _person(
                run,
                cells,
                row,
                sourced_id,
                existing.get(person_id),
                staged_roles.get(person_id, ()),
                staged_demographics,
            )
            people.append(values)
            schools[person_id] = school_ids
        await run.store.write(PEOPLE, people, existing)
        await run.store.replace_links(PERSON_SCHOOLS, "person_id", "school_id", schools)
        if mode == "delta":
            await run.store.delete(PEOPLE, dead)
        await run.store.mark_seen("person", [(i, line, i not in dead) for i, line, _ in seen])


async def check_staged_users(run: Run) -> None:
    """Raise for the first staged role or demographics row whose user does not exist."""
    if run.bulk("person"):
        known = sa.select(SEEN.c.id).where(SEEN.c.kind == "person", SEEN.c.live.is_(True))
    else:
        known = sa.select(PEOPLE.c.id).where(PEOPLE.c.source_id == run.source_id)
    for stem, table, column in (
        ("roles", STAGED_ROLES, "userSourcedId"),
        ("demographics", STAGED_DEMOGRAPHICS, "sourcedId"),
    ):
        if run.mode(stem) == "absent":
            continue
        found = (
            await run.conn.execute(
                sa.select(table.c.line, table.c.user_sid)
                .where(table.c.live.is_(True), table.c.person_id.not_in(known))
                .order_by(table.c.line)
                .limit(1)
            )
        ).first()
        if found is not None:
            where = "users.csv" if run.bulk("person") else "users.csv or the source"
            raise OneRosterError(
                f"unknown user '{found.user_sid}' (not in {where})",
                file=f"{stem}.csv",
                line=found.line,
                column=column,
            )


async def update_other_people(run: Run) -> None:
    """Fold staged roles and demographics into people that users.csv did not list (delta)."""
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
            return
        after = ids[-1]
        existing = await run.store.fetch(PEOPLE, ids)
        staged_roles, staged_demographics = await _staged(run, ids)
        people: list[dict[str, Any]] = []
        schools: dict[str, list[str]] = {}
        for person_id, current in existing.items():
            entries = _role_entries(run, current, staged_roles.get(person_id, ()))
            properties = dict(current["properties"] or {})
            properties.pop("roles", None)
            if entries:
                properties["roles"] = entries
            orgs = [o for o in (properties.get("primaryOrgSourcedId", "").strip(),) if o]
            orgs += [o.strip() for o in properties.get("orgSourcedIds", "").split(",") if o.strip()]
            orgs += [e["orgSourcedId"] for e in entries if "orgSourcedId" in e]
            values = {k: v for k, v in current.items() if k not in ("created_date", "updated_date")}
            values.update(
                properties=properties,
                roles=_roles(properties.get("role"), entries),
                demographics=_demographics(run, person_id, current, staged_demographics),
            )
            people.append(values)
            schools[person_id] = _schools(run, orgs)
        await run.store.write(PEOPLE, people, existing)
        await run.store.replace_links(PERSON_SCHOOLS, "person_id", "school_id", schools)


# ---------------------------------------------------------------- agents


async def import_agents(run: Run) -> None:
    """users.csv agentSourcedIds → Agents: observer = the agent, target = the user."""
    mode = run.mode("users")
    if mode == "absent":
        return
    csv_file, cells = run.open("users", ("sourcedId",))
    if not csv_file.has("agentSourcedIds"):
        return
    for batch in csv_file.batches(run.batch_size):
        refs: list[Ref] = []
        pairs: list[tuple[Row, str, str]] = []
        targets: list[str] = []
        for row in batch:
            target = cells.required(row, "sourcedId")
            if cells.status(row, mode) == TO_BE_DELETED:
                continue
            targets.append(run.id("person", target))
            for observer in dict.fromkeys(cells.items(row, "agentSourcedIds")):
                if observer == target:
                    run.warnings.add(
                        "self agent",
                        f"users.csv, line {row.line}: user '{target}' lists itself as an agent; "
                        "left out",
                    )
                    continue
                refs.append(
                    Ref("person", run.id("person", observer), row.line, "agentSourcedIds", observer)
                )
                pairs.append((row, target, observer))
        await run.check_refs(cells.file, refs)
        relationships = await _relationships(run, {ref.id for ref in refs})
        agents: list[dict[str, Any]] = []
        for _row, target, observer in pairs:
            observer_id = run.id("person", observer)
            agents.append(
                {
                    "id": run.id("agent", json.dumps([target, observer])),
                    "source_id": run.source_id,
                    "identifiers": [],
                    "properties": {"userSourcedId": target, "agentSourcedId": observer},
                    "observer_id": observer_id,
                    "target_id": run.id("person", target),
                    "relationship": relationships.get(observer_id, "OTHER"),
                    "flags": [],
                }
            )
        ids = [a["id"] for a in agents]
        await run.store.write(AGENTS, agents, await run.store.fetch(AGENTS, ids))
        if mode == "delta" and targets:
            # A delta row lists all of the user's agents: the ones it no longer lists go.
            stale = AGENTS.delete().where(
                AGENTS.c.source_id == run.source_id,
                run.store.among(AGENTS.c.target_id, targets),
                ~run.store.among(AGENTS.c.id, ids),
            )
            await run.conn.execute(stale)
        await run.store.mark_seen(
            "agent",
            [(a["id"], row.line, True) for a, (row, _, _) in zip(agents, pairs, strict=True)],
        )


async def _relationships(run: Run, observers: set[str]) -> dict[str, str]:
    """Agent.relationship from each observer's OneRoster role (parent, guardian, relative…)."""
    if not observers:
        return {}
    rows = await run.conn.execute(
        sa.select(PEOPLE.c.id, PEOPLE.c.properties).where(run.store.among(PEOPLE.c.id, observers))
    )
    found: dict[str, str] = {}
    for person_id, properties in rows:
        raw = [(properties or {}).get("role")]
        raw += [e.get("role") for e in (properties or {}).get("roles", [])]
        for role in raw:
            relationship = AGENT_RELATIONSHIPS.get((role or "").lower())
            if relationship is not None:
                found[person_id] = relationship
                break
    return found
