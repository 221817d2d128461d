"""The state one import shares between its passes: ids, modes, the org directory, and the checks
for duplicate sourcedIds and unknown references."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.importers.cells import Cells
from gateway.importers.manifest import Manifest
from gateway.importers.reading import CsvFile, Folder, OneRosterError, Progress, Warnings
from gateway.importers.store import Store


def table_of(model: Any) -> sa.Table:
    """The Core table of a SQLModel class."""
    table: sa.Table = model.__table__
    return table


DISTRICTS = table_of(models.District)
SCHOOLS = table_of(models.School)
SESSIONS = table_of(models.Session)
COURSES = table_of(models.Course)
CLASSES = table_of(models.Class)
CLASS_SESSIONS = table_of(models.ClassSession)
SECTIONS = table_of(models.Section)
PEOPLE = table_of(models.Person)
PERSON_SCHOOLS = table_of(models.PersonSchool)
ENROLLMENTS = table_of(models.Enrollment)
AGENTS = table_of(models.Agent)

COUNTED = {
    "districts": DISTRICTS,
    "schools": SCHOOLS,
    "sessions": SESSIONS,
    "courses": COURSES,
    "classes": CLASSES,
    "sections": SECTIONS,
    "people": PEOPLE,
    "enrollments": ENROLLMENTS,
    "agents": AGENTS,
}
"""The nine graph types, in the order of the `counts` object of DESIGN §7."""


@dataclass(frozen=True)
class Kind:
    """A kind of graph row that a OneRoster file feeds."""

    name: str
    table: sa.Table
    file: str
    noun: str


KINDS = {
    k.name: k
    for k in (
        Kind("district", DISTRICTS, "orgs", "org"),
        Kind("school", SCHOOLS, "orgs", "org"),
        Kind("session", SESSIONS, "academicSessions", "academic session"),
        Kind("course", COURSES, "courses", "course"),
        Kind("class", CLASSES, "classes", "class"),
        Kind("person", PEOPLE, "users", "user"),
        Kind("enrollment", ENROLLMENTS, "enrollments", "enrollment"),
        Kind("agent", AGENTS, "users", "agent"),
    )
}


class Ref(NamedTuple):
    """A reference from a cell to a row of another kind."""

    kind: str
    id: str
    line: int
    column: str
    sourced_id: str


@dataclass
class Org:
    """An org of orgs.csv, kept for resolving references (orgs are few)."""

    type: str
    parent: str | None


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
"""A UUID's 17th hex digit with its two top bits set to the RFC 4122 variant (binary 10)."""

_DEPARTMENTS_DEEP = 100
"""How many departments deep `Run.resolve_org` follows parents (a loop of them is refused on
import; 8 left the people of a ninth level without a school, found by a review)."""

_ID_CACHE = 100_000
"""How many derived ids a run remembers (about 15 MiB at most)."""


@dataclass
class Run:
    """One import: its connection, store, manifest, warnings and shared lookups."""

    conn: AsyncConnection
    store: Store
    folder: Folder
    manifest: Manifest
    warnings: Warnings
    source_id: str
    source_name: str
    today: date
    batch_size: int
    progress: Progress | None
    district_id: str = ""
    placeholder_school: str | None = None
    orgs: dict[str, Org] = field(default_factory=dict)
    db_schools: set[str] = field(default_factory=set)
    stored_orgs: dict[str, Org] = field(default_factory=dict)
    """The source's orgs that are neither its district nor a school, as the imports before
    stored them (`OneRosterOrg`), less those this import's orgs.csv lists: where a reference
    that this import's orgs.csv does not resolve is looked up (not with a bulk orgs.csv)."""
    orgs_remembered: bool = True
    """Whether `stored_orgs` holds every org the source's people may name: False for a source a
    version that did not store them imported, until its next bulk orgs.csv (an org that cannot
    be resolved then is one of those, not one deleted since)."""
    pruned: set[str] = field(default_factory=set)
    """Kinds whose pass removed the rows that their bulk file did not list (not left to the
    seen rows at the end)."""
    changed_orgs: dict[str, int | None] = field(default_factory=dict)
    """The orgs of orgs.csv whose people may be in other schools now (`orgs._find_changed_orgs`),
    with the line of orgs.csv that changed them (None for a department a bulk file leaves out):
    their people's schools are found again (`update_other_people`)."""
    gone_orgs: set[str] = field(default_factory=set)
    """The orgs a delta orgs.csv marks `tobedeleted`, and the stored departments a bulk one
    leaves out."""

    def __post_init__(self) -> None:
        self._namespace = uuid.UUID(self.source_id).bytes
        self._ids: dict[str, str] = {}

    def id(self, kind: str, sourced_id: str, *, remember: bool = True) -> str:
        """The stable id of the `kind` row for `sourced_id` in this source: the UUID v5 of
        `kind:sourcedId` in the source id's namespace, i.e. `uuid.uuid5(UUID(source_id),
        f"{kind}:{sourced_id}")`, computed without building UUID objects (a hot path) and
        remembered for a while (enrollments name the same users and classes again and again);
        not with `remember=False`, for a row's own id, which a file names once: 200,000
        enrollment ids would otherwise push the users' and classes' ids out again and again."""
        name = f"{kind}:{sourced_id}"
        found = self._ids.get(name)
        if found is not None:
            return found
        h = hashlib.sha1(self._namespace + name.encode()).hexdigest()  # noqa: S324 (v5 is SHA-1 by definition)
        # The version nibble becomes 5 and the variant's two top bits 10 (RFC 4122), in the text.
        found = f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
        if not remember:
            return found
        if len(self._ids) >= _ID_CACHE:
            self._ids.clear()
        self._ids[name] = found
        return found

    def mode(self, stem: str) -> str:
        """`bulk`, `delta` or `absent` for file `stem`."""
        return self.manifest.mode(stem)

    def bulk(self, kind: str) -> bool:
        """Whether rows of `kind` come from a bulk file in this import."""
        return self.mode(KINDS[kind].file) == "bulk"

    def open(self, stem: str, required: Sequence[str]) -> tuple[CsvFile, Cells]:
        """File `stem`.csv with its required columns checked, and typed access to its cells."""
        name = f"{stem}.csv"
        columns = list(required)
        if self.mode(stem) == "delta":
            columns.append("status")
        return (
            CsvFile(self.folder, name, required=columns, progress=self.progress),
            Cells(name, self.warnings),
        )

    def resolve_org(self, sourced_id: str, depth: int = 0) -> tuple[str, str | None] | None:
        """`(type, graph id)` of an org: the school id for a school (and for a department, its
        school's), the district id for the district, no id for other orgs; None when unknown."""
        org = self.orgs.get(sourced_id) or self.stored_orgs.get(sourced_id)  # (none in bulk)
        if org is not None:
            if org.type == "school":
                return "school", self.id("school", sourced_id)
            if org.type == "district":
                return "district", self.district_id
            if org.type == "department" and org.parent and depth < _DEPARTMENTS_DEEP:
                parent = self.resolve_org(org.parent, depth + 1)
                if parent is not None and parent[0] == "school":
                    return parent
            return org.type, None
        if self.mode("orgs") != "bulk":
            school = self.id("school", sourced_id)
            if school in self.db_schools:
                return "school", school
            if self.id("district", sourced_id) == self.district_id:
                return "district", self.district_id
        return None

    def school_of(self, cells: Cells, row: Any, column: str, sourced_id: str) -> str | None:
        """The school id an org reference stands for (None for a district or other org)."""
        found = self.resolve_org(sourced_id)
        if found is None:
            raise cells.error(row, column, f"unknown org '{sourced_id}' (not in orgs.csv)")
        return found[1] if found[0] == "school" else None

    async def check_refs(self, file: str, refs: Sequence[Ref]) -> None:
        """Raise for the first reference (by line) to a row that does not exist."""
        by_kind: dict[str, set[str]] = {}
        for ref in refs:
            by_kind.setdefault(ref.kind, set()).add(ref.id)
        missing: list[Ref] = []
        for kind, ids in by_kind.items():
            info = KINDS[kind]
            absent = await self.store.missing(kind, info.table, ids, bulk=self.bulk(kind))
            missing.extend(ref for ref in refs if ref.kind == kind and ref.id in absent)
        if missing:
            ref = min(missing, key=lambda r: r.line)
            raise OneRosterError(
                await self.unknown(ref.kind, ref.sourced_id),
                file=file,
                line=ref.line,
                column=ref.column,
            )

    async def unknown(self, kind: str, sourced_id: str) -> str:
        """What is wrong with a reference to the `kind` row `sourced_id` that does not exist
        after this import: not in its file (nor, for a delta file, in the source), or marked
        `tobedeleted` there (a review found "not in users.csv" said of a row that was)."""
        info = KINDS[kind]
        if await self.store.deleted_here(kind, self.id(kind, sourced_id)):
            return f"unknown {info.noun} '{sourced_id}' ({info.file}.csv marks it tobedeleted)"
        where = f"{info.file}.csv" if self.bulk(kind) else f"{info.file}.csv or the source"
        return f"unknown {info.noun} '{sourced_id}' (not in {where})"

    async def check_duplicates(
        self, file: str, kind: str, rows: Sequence[tuple[str, int, str]]
    ) -> None:
        """Raise when a `(id, line, sourcedId)` row repeats a sourcedId of the file."""
        first: dict[str, int] = {}
        for row_id, line, sourced_id in rows:
            if row_id in first:
                raise _duplicate(file, line, sourced_id, first[row_id])
            first[row_id] = line
        earlier = await self.store.seen_lines(kind, first)
        if earlier:
            row_id, line, sourced_id = min((r for r in rows if r[0] in earlier), key=lambda r: r[1])
            raise _duplicate(file, line, sourced_id, earlier[row_id])


def _duplicate(file: str, line: int, sourced_id: str, first: int) -> OneRosterError:
    return OneRosterError(
        f"duplicate sourcedId '{sourced_id}' (first at line {first})",
        file=file,
        line=line,
        column="sourcedId",
    )
