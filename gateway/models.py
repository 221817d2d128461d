"""SQLModel tables: the integration side (DESIGN §2) and the nine graph types (DESIGN §3).

Ids are UUIDs kept as canonical strings in Python (native `uuid` on PostgreSQL, CHAR(32) on
SQLite). Every graph row carries `source_id`; composite `(parent, id)` indexes serve the
keyset pagination of root lists and nested edges.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gateway.coltypes import TagList, UTCDateTime, UUIDString, utcnow

UUID = UUIDString()


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table behind a SQLModel class (SQLModel sets `__table__` without a type)."""
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel's metaclass
    assert isinstance(table, sa.Table)
    return table


def new_id() -> str:
    """A random UUID as a canonical string."""
    return str(uuid.uuid4())


def _pk() -> Any:
    return Field(default_factory=new_id, primary_key=True, sa_type=UUID)


def _fk(
    target: str, *, nullable: bool = False, ondelete: str = "CASCADE", index: bool = True
) -> Any:
    # `index=False` where a composite `(column, id)` index already leads with the column.
    return Field(
        default=None if nullable else ...,
        sa_column_args=[sa.ForeignKey(target, ondelete=ondelete)],
        sa_type=UUID,
        nullable=nullable,
        index=index,
    )


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def _json(*, list_default: bool = True) -> Any:
    if list_default:
        return Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    return Field(default=None, sa_type=sa.JSON, nullable=True)


def _tags() -> Any:
    return Field(default_factory=list, sa_type=TagList, nullable=False)


# ---------------------------------------------------------------- integration side


class Team(SQLModel, table=True):
    """The organisation that owns a source."""

    __tablename__ = "teams"
    id: str = _pk()
    created_date: datetime = _created()
    updated_date: datetime = _created()
    name: str
    alias: str | None = None
    street: str | None = None
    unit: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Provider(SQLModel, table=True):
    """The system a source's data comes from (Canvas, OneRoster…)."""

    __tablename__ = "providers"
    id: str = _pk()
    created_date: datetime = _created()
    updated_date: datetime = _created()
    name: str
    application: str = Field(index=True)
    allows_data_sync: bool = True


class Entity(SQLModel, table=True):
    """The real-world school or district behind a source."""

    __tablename__ = "entities"
    id: str = _pk()
    created_date: datetime = _created()
    updated_date: datetime = _created()
    name: str
    type: str = "DISTRICT"


class Application(SQLModel, table=True):
    """An application that integrations are granted to: the permissions it requests, and its
    key for the meta API (stored only as a SHA-256 digest; null for an application named by
    free text before applications had keys)."""

    __tablename__ = "applications"
    id: str = _pk()
    created_date: datetime = _created()
    updated_date: datetime = _created()
    name: str
    description: str | None = None
    key_digest: str | None = Field(default=None, unique=True, index=True, max_length=64)


class ApplicationPermission(SQLModel, table=True):
    """A permission an application requests (administrators grant or deny it per integration)."""

    __tablename__ = "application_permissions"
    application_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("applications.id", ondelete="CASCADE")],
    )
    permission_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("permissions.id", ondelete="RESTRICT")],
    )


class Source(SQLModel, table=True):
    """A connected SIS, LMS or OneRoster export; owns one district's graph."""

    __tablename__ = "sources"
    id: str = _pk()
    created_date: datetime = _created()
    updated_date: datetime = _created()
    name: str
    status: str = "ACTIVE"
    provider_id: str = _fk("providers.id", ondelete="RESTRICT")
    team_id: str = _fk("teams.id", ondelete="RESTRICT")
    entity_id: str = _fk("entities.id", ondelete="RESTRICT")


class Permission(SQLModel, table=True):
    """A row of the fixed permission catalog (ids are the same in every installation)."""

    __tablename__ = "permissions"
    id: str = Field(primary_key=True, sa_type=UUID)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    slug: str = Field(unique=True)
    name: str
    description: str


class Integration(SQLModel, table=True):
    """An application's access to one source; its token is stored only as a SHA-256 digest."""

    __tablename__ = "integrations"
    id: str = _pk()
    created_date: datetime = _created()
    updated_date: datetime = _created()
    name: str | None = None
    source_id: str = _fk("sources.id", ondelete="RESTRICT")
    application_id: str | None = _fk("applications.id", nullable=True, ondelete="SET NULL")
    scope: str = "ALL"
    status: str = "ACTIVE"
    start_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    token_digest: str = Field(unique=True, max_length=64)
    # The token encrypted with the vault's key (gateway.vault), kept only for integrations of
    # an application, whose developer reads it from the meta API; the digest stays the lookup.
    token_ciphertext: str | None = Field(default=None, sa_type=sa.Text)


class IntegrationPermission(SQLModel, table=True):
    """A permission granted to an integration."""

    __tablename__ = "integration_permissions"
    integration_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("integrations.id", ondelete="CASCADE")],
    )
    permission_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("permissions.id", ondelete="RESTRICT")],
    )


class IntegrationTarget(SQLModel, table=True):
    """A school, course or class that a SELECTED integration is scoped to."""

    __tablename__ = "integration_targets"
    integration_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("integrations.id", ondelete="CASCADE")],
    )
    target_id: str = Field(primary_key=True, sa_type=UUID)
    kind: str  # SCHOOL | COURSE | CLASS


class AdminKey(SQLModel, table=True):
    """A key for /admin/graphql and the audit trail; stored only as a SHA-256 digest."""

    __tablename__ = "admin_keys"
    id: str = _pk()
    created_date: datetime = _created()
    name: str
    key_digest: str = Field(unique=True, max_length=64)


class AuditEntry(SQLModel, table=True):
    """One administrative change: who, when, what, and the value before and after."""

    __tablename__ = "audit_log"
    id: str = _pk()
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    admin_key_id: str | None = Field(default=None, sa_type=UUID)
    admin_key_name: str | None = None
    actor: str = "cli"
    action: str
    subject_type: str
    subject_id: str | None = Field(default=None, sa_type=UUID, index=True)
    before: dict[str, Any] | None = _json(list_default=False)
    after: dict[str, Any] | None = _json(list_default=False)


# SQLite's AUTOINCREMENT needs exactly INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Event(SQLModel, table=True):
    """One entry of an integration's change feed (DESIGN §9): an object it sees was created,
    updated or deleted for it. `id` only grows (AUTOINCREMENT on SQLite, an identity on
    PostgreSQL), so it is the feed's keyset; `data` is the object as the integration could read
    it then. Written only by `gateway.events.feed`."""

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_integration_id_id", "integration_id", "id"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(
        default=None, sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    integration_id: str = Field(
        sa_type=UUID, sa_column_args=[sa.ForeignKey("integrations.id", ondelete="CASCADE")]
    )
    date: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    type: str = Field(max_length=8)  # CREATED | UPDATED | DELETED
    target_type: str = Field(max_length=16)  # the graph table's name (`people`…)
    target_id: str = Field(sa_type=UUID)
    data: dict[str, Any] | None = _json(list_default=False)


class EventState(SQLModel, table=True):
    """What an integration's feed last said of one object (its data and a digest of it): the
    feed is written as the difference between what the integration sees now and this."""

    __tablename__ = "event_states"
    __table_args__ = ({"sqlite_with_rowid": False},)
    integration_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("integrations.id", ondelete="CASCADE")],
    )
    kind: str = Field(primary_key=True, max_length=16)
    id: str = Field(primary_key=True, sa_type=UUID)
    digest: str = Field(max_length=40)
    data: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)


class EventFeed(SQLModel, table=True):
    """One integration's feed bookkeeping: when it was first materialized and the last event id
    that `gateway events prune` removed (a cursor at or before it can no longer be followed)."""

    __tablename__ = "event_feeds"
    integration_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("integrations.id", ondelete="CASCADE")],
    )
    created_date: datetime = _created()
    pruned_through: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    # True once the feed follows only the types the integration may read (`feed.sync`); null
    # in a feed of the release before, which followed every type whatever the permissions
    follows_permissions: bool | None = Field(default=None, nullable=True)


# ---------------------------------------------------------------- the graph


class District(SQLModel, table=True):
    """A school district; a source has exactly one."""

    __tablename__ = "districts"
    __table_args__ = (sa.Index("ix_districts_source_id_id", "source_id", "id"),)
    id: str = _pk()
    source_id: str = _fk("sources.id", index=False)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    identifiers: list[dict[str, str]] = _json()
    properties: dict[str, Any] | None = _json(list_default=False)
    name: str
    locale: str | None = None
    time_zone: str | None = None
    address: dict[str, Any] | None = _json(list_default=False)


class School(SQLModel, table=True):
    """A school of the source's district."""

    __tablename__ = "schools"
    __table_args__ = (sa.Index("ix_schools_source_id_id", "source_id", "id"),)
    id: str = _pk()
    source_id: str = _fk("sources.id", index=False)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    identifiers: list[dict[str, str]] = _json()
    properties: dict[str, Any] | None = _json(list_default=False)
    district_id: str = _fk("districts.id")
    name: str
    grade_levels: list[str] = _tags()
    locale: str | None = None
    time_zone: str | None = None
    address: dict[str, Any] | None = _json(list_default=False)


class Session(SQLModel, table=True):
    """A school year, semester, term or grading period."""

    __tablename__ = "sessions"
    __table_args__ = (
        sa.Index("ix_sessions_source_id_id", "source_id", "id"),
        sa.Index("ix_sessions_school_id_id", "school_id", "id"),
    )
    id: str = _pk()
    source_id: str = _fk("sources.id", index=False)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    identifiers: list[dict[str, str]] = _json()
    properties: dict[str, Any] | None = _json(list_default=False)
    district_id: str = _fk("districts.id")
    school_id: str | None = _fk("schools.id", nullable=True, index=False)
    name: str
    start_date: date | None = None
    end_date: date | None = None
    state: str = "ACTIVE"
    type: str = "TERM"


class Course(SQLModel, table=True):
    """A course in the catalog; classes are its instances."""

    __tablename__ = "courses"
    __table_args__ = (
        sa.Index("ix_courses_source_id_id", "source_id", "id"),
        sa.Index("ix_courses_school_id_id", "school_id", "id"),
    )
    id: str = _pk()
    source_id: str = _fk("sources.id", index=False)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    identifiers: list[dict[str, str]] = _json()
    properties: dict[str, Any] | None = _json(list_default=False)
    district_id: str = _fk("districts.id")
    school_id: str | None = _fk("schools.id", nullable=True, index=False)
    session_id: str | None = _fk("sessions.id", nullable=True, ondelete="SET NULL")
    name: str
    code: str | None = None
    grade_levels: list[str] = _tags()
    subjects: list[str] = _json()


class Class(SQLModel, table=True):
    """A class: people meet in it, and enrollments point to it."""

    __tablename__ = "classes"
    __table_args__ = (
        sa.Index("ix_classes_source_id_id", "source_id", "id"),
        sa.Index("ix_classes_school_id_id", "school_id", "id"),
        sa.Index("ix_classes_course_id_id", "course_id", "id"),
    )
    id: str = _pk()
    source_id: str = _fk("sources.id", index=False)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    identifiers: list[dict[str, str]] = _json()
    properties: dict[str, Any] | None = _json(list_default=False)
    school_id: str = _fk("schools.id", index=False)
    course_id: str | None = _fk("courses.id", nullable=True, ondelete="SET NULL", index=False)
    name: str
    description: str | None = None
    state: str = "ACTIVE"
    grade_levels: list[str] = _tags()
    subjects: list[str] = _json()
    periods: list[str] = _json()
    locale: str | None = None
    time_zone: str | None = None


class ClassSession(SQLModel, table=True):
    """The sessions (terms) a class runs in."""

    __tablename__ = "class_sessions"
    # A nested edge walks one of these from its parent, in its children's id order, and checks
    # the link's source: each direction reads its index alone, never the table.
    __table_args__ = (
        sa.Index("ix_class_sessions_class", "class_id", "session_id", "source_id"),
        sa.Index("ix_class_sessions_session", "session_id", "class_id", "source_id"),
    )
    class_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("classes.id", ondelete="CASCADE")],
    )
    session_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("sessions.id", ondelete="CASCADE")],
    )
    source_id: str = _fk("sources.id")


class Section(SQLModel, table=True):
    """A section of a class."""

    __tablename__ = "sections"
    __table_args__ = (
        sa.Index("ix_sections_source_id_id", "source_id", "id"),
        sa.Index("ix_sections_class_id_id", "class_id", "id"),
    )
    id: str = _pk()
    source_id: str = _fk("sources.id", index=False)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    identifiers: list[dict[str, str]] = _json()
    properties: dict[str, Any] | None = _json(list_default=False)
    class_id: str = _fk("classes.id", index=False)
    name: str
    description: str | None = None
    state: str = "ACTIVE"
    periods: list[str] = _json()


class Person(SQLModel, table=True):
    """A student, teacher, administrator, staff member or guardian."""

    __tablename__ = "people"
    __table_args__ = (sa.Index("ix_people_source_id_id", "source_id", "id"),)
    id: str = _pk()
    source_id: str = _fk("sources.id", index=False)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    identifiers: list[dict[str, str]] = _json()
    properties: dict[str, Any] | None = _json(list_default=False)
    district_id: str = _fk("districts.id")
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    picture_url: str | None = None
    roles: list[str] = _tags()
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    graduation_year: int | None = None
    grade_levels: list[str] = _tags()
    demographics: dict[str, Any] | None = _json(list_default=False)
    address: dict[str, Any] | None = _json(list_default=False)


class PersonSchool(SQLModel, table=True):
    """A person's membership of a school (Person.schools)."""

    __tablename__ = "person_schools"
    # A nested edge walks one of these from its parent, in its children's id order, and checks
    # the link's source: each direction reads its index alone, never the table.
    __table_args__ = (
        sa.Index("ix_person_schools_person", "person_id", "school_id", "source_id"),
        sa.Index("ix_person_schools_school", "school_id", "person_id", "source_id"),
    )
    person_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("people.id", ondelete="CASCADE")],
    )
    school_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("schools.id", ondelete="CASCADE")],
    )
    source_id: str = _fk("sources.id")


class OneRosterPerson(SQLModel, table=True):
    """What the OneRoster import remembers of a person for later deltas and never serves: the
    orgs of the user's row and its roles.csv rows whole (with their sourcedIds and orgs).
    `properties` cannot carry them: it holds no references or identifiers (DESIGN §3)."""

    __tablename__ = "oneroster_people"
    person_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("people.id", ondelete="CASCADE")],
    )
    source_id: str = _fk("sources.id")
    orgs: list[str] = _json()
    roles: list[dict[str, Any]] = _json()


class OneRosterOrg(SQLModel, table=True):
    """An org of a source's OneRoster export that is neither its district nor one of its
    schools (a department, a local or state org…), as its orgs.csv last gave it: what the import
    remembers so that a later delta's users, roles and departments that name it resolve (a
    department stands for its parent school), and never serves. Departments were known only
    from the orgs.csv that listed them: a delta without one dropped the schools that came
    through them (found by a review)."""

    __tablename__ = "oneroster_orgs"
    source_id: str = Field(
        primary_key=True,
        sa_type=UUID,
        sa_column_args=[sa.ForeignKey("sources.id", ondelete="CASCADE")],
    )
    sourced_id: str = Field(primary_key=True)
    type: str
    parent: str | None = None


class Enrollment(SQLModel, table=True):
    """A person's enrollment in a class (optionally in one of its sections)."""

    __tablename__ = "enrollments"
    __table_args__ = (
        sa.Index("ix_enrollments_source_id_id", "source_id", "id"),
        sa.Index("ix_enrollments_class_id_id", "class_id", "id"),
        sa.Index("ix_enrollments_person_id_id", "person_id", "id"),
        # Only the enrollments in a section (OneRoster has no sections: none of its rows).
        sa.Index(
            "ix_enrollments_section_id_id_set",
            "section_id",
            "id",
            sqlite_where=sa.text("section_id IS NOT NULL"),
            postgresql_where=sa.text("section_id IS NOT NULL"),
        ),
    )
    id: str = _pk()
    source_id: str = _fk("sources.id", index=False)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    identifiers: list[dict[str, str]] = _json()
    properties: dict[str, Any] | None = _json(list_default=False)
    person_id: str = _fk("people.id", index=False)
    class_id: str = _fk("classes.id", index=False)
    section_id: str | None = _fk("sections.id", nullable=True, ondelete="SET NULL", index=False)
    role: str = "STUDENT"
    primary: bool = False
    state: str = "ACTIVE"
    start_date: date | None = None
    end_date: date | None = None


class Agent(SQLModel, table=True):
    """A relationship between an observer (guardian, aide) and a target person."""

    __tablename__ = "agents"
    __table_args__ = (
        sa.Index("ix_agents_source_id_id", "source_id", "id"),
        sa.Index("ix_agents_observer_id_id", "observer_id", "id"),
        sa.Index("ix_agents_target_id_id", "target_id", "id"),
    )
    id: str = _pk()
    source_id: str = _fk("sources.id", index=False)
    created_date: datetime = _created()
    updated_date: datetime = _created()
    identifiers: list[dict[str, str]] = _json()
    properties: dict[str, Any] | None = _json(list_default=False)
    observer_id: str = _fk("people.id", index=False)
    target_id: str = _fk("people.id", index=False)
    relationship: str = "GUARDIAN"
    flags: list[str] = _json()


GRAPH_TABLES: tuple[type[SQLModel], ...] = (
    District,
    School,
    Session,
    Course,
    Class,
    Section,
    Person,
    Enrollment,
    Agent,
)


def _visible_table(graph: type[SQLModel]) -> sa.Table:
    name = table_of(graph).name
    return sa.Table(
        f"visible_{name}",
        SQLModel.metadata,
        sa.Column(
            "integration_id",
            UUID,
            sa.ForeignKey("integrations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("id", UUID, primary_key=True),
        sqlite_with_rowid=False,
    )


VISIBLE_TABLES: dict[str, sa.Table] = {table_of(m).name: _visible_table(m) for m in GRAPH_TABLES}
"""Each SELECTED integration's stored view (DESIGN §4, "The closure is stored"): one table per
graph table (`visible_people` for `people`…), keyed by (integration, id).

Written only by `gateway.access.views` from the closure predicates of `gateway.access.scope`,
in the transaction of every change that can alter it. A keyset page, a lookup, a nested edge's
check and a count each read one index range of one table. One table per type rather than one
keyed by (integration, type, id): each probe searches a smaller tree with a shorter key (a
nested SELECTED page read about 10% faster at 10,000 people)."""
