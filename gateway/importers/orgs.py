"""orgs.csv → the source's one District and its Schools (a placeholder district or school when
the folder has none), and the org directory that later files' references resolve against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from gateway import models
from gateway.importers.cells import ORG_TYPES, TO_BE_DELETED, Cells
from gateway.importers.properties import kept
from gateway.importers.reading import OneRosterError, Row
from gateway.importers.run import DISTRICTS, PEOPLE, SCHOOLS, Org, Run

ONEROSTER_ORGS = models.table_of(models.OneRosterOrg)
WHOLE = ""
"""The sourcedId (never a real one) of the row of `ONEROSTER_ORGS` saying that the source's
stored orgs are all it has had since a bulk orgs.csv or its first people."""

PLACEHOLDER = ""
"""The sourcedId of the placeholder district and school (a real sourcedId is never empty)."""


def sourced_id_of(found: Sequence[Mapping[str, str]] | None, otherwise: str) -> str:
    """The OneRoster sourcedId among a row's `identifiers` (`identifiers` puts it first), or
    `otherwise` for a row without one (a placeholder)."""
    return next((i["value"] for i in found or () if i.get("type") == "sourcedId"), otherwise)


def identifiers(sourced_id: str, *extra: tuple[str, str | None]) -> list[dict[str, str]]:
    """Identifier objects: the OneRoster sourcedId first, then each non-empty `(type, value)`."""
    found = [{"type": "sourcedId", "value": sourced_id}]
    for kind, value in extra:
        if value:
            found.append({"type": kind, "value": value})
    return found


async def import_orgs(run: Run) -> None:
    """Write the district and schools; fill `run.orgs`, `run.district_id` and friends."""
    mode = run.mode("orgs")
    districts: list[tuple[Row, str]] = []
    schools: list[tuple[int, dict[str, Any]]] = []
    deleted: list[tuple[Row, str]] = []
    cells: Cells | None = None
    if mode != "absent":
        csv_file, cells = run.open("orgs", ("sourcedId", "name", "type"))
        lines: dict[str, int] = {}
        # Orgs are few (one per school at most), so the file is read whole before writing.
        for batch in csv_file.batches(run.batch_size):
            for row in batch:
                sourced_id = cells.required(row, "sourcedId")
                if sourced_id in lines:
                    raise OneRosterError(
                        f"duplicate sourcedId '{sourced_id}' (first at line {lines[sourced_id]})",
                        file=cells.file,
                        line=row.line,
                        column="sourcedId",
                    )
                lines[sourced_id] = row.line
                if cells.status(row, mode) == TO_BE_DELETED:
                    if mode == "delta":
                        deleted.append((row, sourced_id))
                    continue
                org_type = cells.enum(row, "type", ORG_TYPES, extension="other", required=True)
                assert org_type is not None  # required=True
                name = cells.required(row, "name")
                run.orgs[sourced_id] = Org(org_type, cells.text(row, "parentSourcedId"))
                if org_type == "district":
                    districts.append((row, sourced_id))
                elif org_type == "school":
                    schools.append((row.line, _school(run, cells, row, sourced_id, name)))

    errors: list[OneRosterError] = []
    if mode == "bulk":
        errors += _orphan_departments(run, lines)[:1]  # a bulk file holds every org
    if len(districts) > 1:
        row, sourced_id = districts[1]
        errors.append(
            OneRosterError(
                f"a second district org '{sourced_id}' (the first is '{districts[0][1]}' at line "
                f"{districts[0][0].line}); a source holds exactly one district",
                file="orgs.csv",
                line=row.line,
                column="type",
            )
        )
    if errors:
        raise min(errors, key=lambda error: error.line or 0)  # the first in the file
    await _write_district(run, cells, districts[0] if districts else None)
    for row_, sourced_id in deleted:
        if run.id("district", sourced_id) == run.district_id:
            run.warnings.add(
                "district",
                f"orgs.csv, line {row_.line}: the district '{sourced_id}' is marked tobedeleted; "
                "a source always keeps its one district, so it was kept",
            )
    for start in range(0, len(schools), run.batch_size):
        batch_rows = schools[start : start + run.batch_size]
        values = [{**v, "district_id": run.district_id} for _, v in batch_rows]
        existing = await run.store.fetch(SCHOOLS, [v["id"] for v in values])
        await run.store.write(SCHOOLS, values, existing)
        await run.store.mark_seen("school", [(v["id"], line, True) for line, v in batch_rows])
    await run.store.delete(SCHOOLS, [run.id("school", sid) for _, sid in deleted])
    await _placeholder_school(run, real_schools=len(schools))
    if mode != "bulk":
        rows = await run.conn.execute(
            sa.select(SCHOOLS.c.id).where(SCHOOLS.c.source_id == run.source_id)
        )
        run.db_schools = set(rows.scalars())
    before = await _remember_orgs(run, [sourced_id for _, sourced_id in deleted])
    if mode != "absent":
        _find_changed_orgs(run, before, lines, deleted)
        if run.changed_orgs and not run.orgs_remembered:
            sourced_id, line = next(iter(run.changed_orgs.items()))
            raise OneRosterError(
                f"org '{sourced_id}' changes departments of a source imported by a version that "
                "did not remember its departments, whose people this import cannot all find: "
                "import a bulk orgs.csv (alone will do), then this folder",
                file="orgs.csv",
                line=line,
                column="sourcedId",
            )
        cycle = _department_cycle(run, lines)
        if cycle is not None:
            raise cycle
    if mode == "delta":
        for sourced_id, org in run.orgs.items():  # in file order, as they were read
            if org.type != "school" and run.id("school", sourced_id) in run.db_schools:
                # nothing here would remove the school or move its classes (a bulk file does)
                raise OneRosterError(
                    f"org '{sourced_id}' is a school of the source, and a delta file cannot make "
                    f"it a {org.type}: mark it tobedeleted, or import a bulk orgs.csv",
                    file="orgs.csv",
                    line=lines[sourced_id],
                    column="type",
                )
        # the parent may also be one of the source's schools, or its district (known by now)
        orphans = _orphan_departments(run, lines) + _orphaned_stored(run, lines)
        if orphans:
            raise orphans[0]


async def _remember_orgs(run: Run, deleted: Sequence[str]) -> dict[str, Org]:
    """Store the orgs of orgs.csv that are neither the district nor a school (`OneRosterOrg`):
    a bulk file's replace the source's, a delta file's replace those of their sourcedIds and its
    `deleted` go. Then, but with a bulk file, keep those the file does not list in
    `run.stored_orgs`, where later files' references resolve. What was stored before."""
    mode, table = run.mode("orgs"), ONEROSTER_ORGS
    of_source = table.c.source_id == run.source_id
    stored = await run.conn.execute(
        sa.select(table.c.sourced_id, table.c.type, table.c.parent).where(of_source)
    )
    before = {row.sourced_id: Org(row.type, row.parent) for row in stored}
    # The directory is whole once a bulk orgs.csv was stored, or from a source's first people
    # on: else a version that did not store it imported the source (`Run.orgs_remembered`).
    was_whole = before.pop(WHOLE, None) is not None
    run.orgs_remembered = was_whole or mode == "bulk" or PEOPLE.name in run.store.empty
    if mode == "bulk":
        await run.conn.execute(table.delete().where(of_source))
    elif mode == "delta":
        listed = {*run.orgs, *deleted}
        gone = run.store.among(table.c.sourced_id, listed)
        await run.conn.execute(table.delete().where(of_source, gone))
        run.stored_orgs = {k: org for k, org in before.items() if k not in listed}
    else:
        run.stored_orgs = dict(before)
    others = [
        {
            "source_id": run.source_id,
            "sourced_id": sourced_id,
            "type": org.type,
            "parent": org.parent,
        }
        for sourced_id, org in run.orgs.items()
        if org.type not in ("district", "school")
    ]
    if run.orgs_remembered and (mode == "bulk" or not was_whole):
        others.append({"source_id": run.source_id, "sourced_id": WHOLE, "type": "", "parent": None})
    if others:
        await run.conn.execute(table.insert(), others)
    return before


def _find_changed_orgs(
    run: Run,
    before: Mapping[str, Org],
    lines: Mapping[str, int],
    deleted: Sequence[tuple[Row, str]],
) -> None:
    """Fill `run.changed_orgs` with the orgs whose people may now be in other schools, and
    `run.gone_orgs` with those that are no more: a department the file lists (a delta's, or a
    bulk file's that differs from what was stored), an org that was a department and is not
    now, a deleted org (a delta's `tobedeleted`; a stored department a bulk file leaves out),
    and every department below one of them, whose school comes through it (found by a review:
    the people of a moved department's sub-departments stayed where they were)."""
    delta = run.mode("orgs") == "delta"
    changed: dict[str, int | None] = {}
    for sourced_id, org in run.orgs.items():
        was = before.get(sourced_id)
        if (org.type == "department" and (delta or was != org)) or (
            was is not None and was.type == "department" and org.type != "department"
        ):
            changed[sourced_id] = lines[sourced_id]
    gone: dict[str, int | None] = {sourced_id: row.line for row, sourced_id in deleted}
    if not delta:  # a bulk file lists every org: a stored department it leaves out is gone
        gone.update((k, None) for k, org in before.items() if k not in run.orgs)
    changed.update(gone)
    known = {**run.stored_orgs, **run.orgs}
    for sourced_id in known:
        ancestor = _changed_ancestor(known, sourced_id, changed)
        if ancestor is not None and sourced_id not in changed:
            changed[sourced_id] = changed[ancestor]
    run.changed_orgs = changed
    run.gone_orgs = set(gone)


def _parents(known: Mapping[str, Org], sourced_id: str) -> tuple[list[str], str | None]:
    """`sourced_id` and the orgs above it while each is a department (its parent, that one's
    …), stopping before one met already; and that one, where the departments loop, else None."""
    chain = [sourced_id]
    org = known.get(sourced_id)
    while org is not None and org.type == "department" and org.parent:
        if org.parent in chain:
            return chain, org.parent
        chain.append(org.parent)
        org = known.get(org.parent)
    return chain, None


def _changed_ancestor(
    known: Mapping[str, Org], sourced_id: str, changed: Mapping[str, int | None]
) -> str | None:
    """The nearest org of `changed` above department `sourced_id` (through its parents that are
    departments), or None."""
    return next((p for p in _parents(known, sourced_id)[0][1:] if p in changed), None)


def _department_cycle(run: Run, lines: Mapping[str, int]) -> OneRosterError | None:
    """An error for the first department of orgs.csv that is, through its parents, its own
    ancestor (which gave its people no school, silently)."""
    known = {**run.stored_orgs, **run.orgs}
    for sourced_id in run.orgs:  # in file order
        chain, looped = _parents(known, sourced_id)
        if looped is not None:
            loop = " → ".join([*chain[chain.index(looped) :], looped])
            return OneRosterError(
                f"department '{sourced_id}' is its own ancestor ({loop}); a department's "
                "parent must lead to a school or the district",
                file="orgs.csv",
                line=lines[sourced_id],
                column="parentSourcedId",
            )
    return None


def _orphaned_stored(run: Run, lines: Mapping[str, int]) -> list[OneRosterError]:
    """An error for each stored department (of an earlier orgs.csv, not listed in this delta)
    whose parent this delta deletes or makes unknown: its people would lose their school."""
    return [
        OneRosterError(
            f"deleting org '{org.parent}' leaves department '{sourced_id}' (of an earlier "
            f"orgs.csv) without a parent; delete or move '{sourced_id}' in this file too, or "
            "import a bulk orgs.csv",
            file="orgs.csv",
            line=lines.get(org.parent),
            column="status" if org.parent in lines else None,
        )
        for sourced_id, org in run.stored_orgs.items()
        if org.type == "department" and org.parent and run.resolve_org(org.parent) is None
    ]


def _orphan_departments(run: Run, lines: dict[str, int]) -> list[OneRosterError]:
    """An error for each department of orgs.csv (its lines in `lines`) whose parent is an org
    known nowhere: in the file, nor (a delta file) among the source's schools or its district.

    A department stands for its parent school where users and roles name it: one whose parent
    is not known would silently give its people no school (found by a review)."""
    where = "orgs.csv" if run.mode("orgs") == "bulk" else "orgs.csv nor in the source"
    return [
        OneRosterError(
            f"unknown org '{org.parent}' (not in {where})",
            file="orgs.csv",
            line=lines[sourced_id],
            column="parentSourcedId",
        )
        for sourced_id, org in run.orgs.items()  # in file order, as they were read
        if org.type == "department" and org.parent and run.resolve_org(org.parent) is None
    ]


def _school(run: Run, cells: Cells, row: Row, sourced_id: str, name: str) -> dict[str, Any]:
    return {
        "id": run.id("school", sourced_id),
        "source_id": run.source_id,
        "identifiers": identifiers(sourced_id, ("identifier", cells.text(row, "identifier"))),
        "properties": kept("orgs", row.cells),
        "district_id": "",
        "name": name,
        "grade_levels": [],
        "locale": None,
        "time_zone": None,
        "address": None,
    }


async def _write_district(run: Run, cells: Cells | None, found: tuple[Row, str] | None) -> None:
    line = 0
    if found is not None and cells is not None:
        row, sourced_id = found
        line = row.line
        if run.mode("orgs") == "delta":
            await _check_same_district(run, cells, row, sourced_id)
        values: dict[str, Any] = {
            "id": run.id("district", sourced_id),
            "source_id": run.source_id,
            "identifiers": identifiers(sourced_id, ("identifier", cells.text(row, "identifier"))),
            "properties": kept("orgs", row.cells),
            "name": cells.required(row, "name"),
        }
    else:
        district = None if run.mode("orgs") == "bulk" else await _source_district(run)
        existing = None if district is None else district.id
        if existing is not None:
            run.district_id = existing
            await run.store.mark_seen("district", [(existing, 0, True)])
            return
        values = {
            "id": run.id("district", PLACEHOLDER),
            "source_id": run.source_id,
            "identifiers": [],
            "properties": None,
            "name": run.source_name,
        }
    values.update(locale=None, time_zone=None, address=None)
    run.district_id = values["id"]
    await run.store.write(DISTRICTS, [values], await run.store.fetch(DISTRICTS, [values["id"]]))
    await run.store.mark_seen("district", [(values["id"], line, True)])


async def _check_same_district(run: Run, cells: Cells, row: Row, sourced_id: str) -> None:
    """Refuse a delta file's district row for a district other than the source's (unless the
    source has only its placeholder district): writing it would replace the source's district,
    giving its schools and people a new district id (found by a review)."""
    found = await _source_district(run)
    allowed = (run.id("district", sourced_id), run.id("district", PLACEHOLDER))
    if found is None or found.id in allowed:
        return
    theirs = sourced_id_of(found.identifiers, found.id)
    raise cells.error(
        row,
        "sourcedId",
        f"a district org '{sourced_id}', but the source's district is '{theirs}'; a source holds "
        "exactly one district: a delta file may update it, not add another",
    )


async def _source_district(run: Run) -> sa.Row[*tuple[Any, ...]] | None:
    """The district the source has (its id and identifiers) before this import writes one."""
    query = (
        sa.select(DISTRICTS.c.id, DISTRICTS.c.identifiers)
        .where(DISTRICTS.c.source_id == run.source_id)
        .order_by(DISTRICTS.c.created_date, DISTRICTS.c.id)
        .limit(1)
    )
    return (await run.conn.execute(query)).first()


async def _placeholder_school(run: Run, *, real_schools: int) -> None:
    """A school-less source gets one placeholder school, so that classes have a school."""
    placeholder = run.id("school", PLACEHOLDER)
    if run.mode("orgs") != "bulk":
        query = sa.select(sa.func.count()).where(
            SCHOOLS.c.source_id == run.source_id, SCHOOLS.c.id != placeholder
        )
        real_schools = int((await run.conn.execute(query)).scalar_one())
    if real_schools:
        return
    values: dict[str, Any] = {
        "id": placeholder,
        "source_id": run.source_id,
        "identifiers": [],
        "properties": None,
        "district_id": run.district_id,
        "name": run.source_name,
        "grade_levels": [],
        "locale": None,
        "time_zone": None,
        "address": None,
    }
    await run.store.write(SCHOOLS, [values], await run.store.fetch(SCHOOLS, [placeholder]))
    await run.store.mark_seen("school", [(placeholder, 0, True)])
    run.placeholder_school = placeholder
