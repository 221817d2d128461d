"""The nine graph types of DESIGN §3 and their value objects.

Resolvers receive database rows as `self`: columns map one-to-one onto fields (snake_case in
Python, camelCase in GraphQL); edges are declared in `gateway.relations` and loaded in batches.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from gateway import relations as rel
from gateway.graph import enums
from gateway.graph.context import Context
from gateway.graph.directives import gate, requires, type_gate
from gateway.graph.filters import (
    AgentFilter,
    ClassFilter,
    CourseFilter,
    DistrictFilter,
    EnrollmentFilter,
    PersonFilter,
    SchoolFilter,
    SectionFilter,
    SessionFilter,
)
from gateway.graph.pagination import Connection  # noqa: F401 - named by connection_field's annotations
from gateway.graph.resolve import many, one

Ctx = Info[Context, Any]

FIRST = "How many objects to return (default 100, at most 1000)."
AFTER = "Return objects after this cursor (an `endCursor` or edge `cursor`)."
FILTER = "Only objects that match this filter."

First = Annotated[int | None, strawberry.argument(description=FIRST)]
After = Annotated[str | None, strawberry.argument(description=AFTER)]
DistrictFilterArg = Annotated[DistrictFilter | None, strawberry.argument(description=FILTER)]
SchoolFilterArg = Annotated[SchoolFilter | None, strawberry.argument(description=FILTER)]
SessionFilterArg = Annotated[SessionFilter | None, strawberry.argument(description=FILTER)]
CourseFilterArg = Annotated[CourseFilter | None, strawberry.argument(description=FILTER)]
ClassFilterArg = Annotated[ClassFilter | None, strawberry.argument(description=FILTER)]
SectionFilterArg = Annotated[SectionFilter | None, strawberry.argument(description=FILTER)]
PersonFilterArg = Annotated[PersonFilter | None, strawberry.argument(description=FILTER)]
EnrollmentFilterArg = Annotated[EnrollmentFilter | None, strawberry.argument(description=FILTER)]
AgentFilterArg = Annotated[AgentFilter | None, strawberry.argument(description=FILTER)]


def _f(description: str, **kwargs: Any) -> Any:
    return strawberry.field(description=description, **kwargs)


def connection_field(edge: rel.ManyEdge, node: str, description: str) -> Any:
    """A nested connection field over `edge` returning `node` objects: its arguments, its
    permission directive and its batched resolver, declared once for every edge."""
    parent, field = edge.name.split(".")

    async def resolve(
        root: Any, info: Ctx, first: Any = None, after: Any = None, filter: Any = None
    ) -> Any:
        return await many(info, edge, root.id, first, after, filter)

    # Strings, resolved against this module once every type exists (edges point forward).
    resolve.__annotations__ = {
        "root": "Any",
        "info": "Ctx",
        "first": "First",
        "after": "After",
        "filter": f"{node}FilterArg",
        "return": f"Connection[{node}] | None",
    }
    return strawberry.field(
        resolver=resolve, description=description, directives=gate(parent, field, node)
    )


def object_field(edge: rel.OneEdge, node: str, description: str, *, name: str | None = None) -> Any:
    """A to-one field following `edge` (a foreign key of the parent row) to a `node` object,
    loaded in batches; null when the key is unset or the object is not visible."""
    parent, field = edge.name.split(".")

    async def resolve(root: Any, info: Ctx) -> Any:
        return await one(info, edge, getattr(root, edge.fk))

    resolve.__annotations__ = {"root": "Any", "info": "Ctx", "return": f"{node} | None"}
    return strawberry.field(
        resolver=resolve,
        name=name,
        description=description,
        directives=gate(parent, field, node),
    )


@strawberry.interface(description="An object with a UUID that `node(id:)` can fetch.")
class Node:
    id: strawberry.ID = _f("The object's UUID, stable across syncs.")

    @classmethod
    def resolve_type(cls, obj: Any, info: Any, type_: Any) -> str:
        """Rows fetched by `node` carry their GraphQL type name."""
        return str(obj.type_name)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        """Resolvers return database rows, not instances of these classes: accept them."""
        return True


@strawberry.type(description="An identifier of an object in another system (SIS id, state id).")
class Identifier:
    type: str = _f("What the identifier is, e.g. `sis_id`, `state_id`, `username`.")
    value: str = _f("The identifier itself.")


_ADDRESS = {
    "street": "Street and number.",
    "unit": "Apartment, suite or unit.",
    "city": "City.",
    "state": "State, province or region.",
    "postal_code": "Postal or ZIP code.",
    "country": "Country (ISO 3166-1 alpha-2 where known).",
    "latitude": "Latitude in degrees.",
    "longitude": "Longitude in degrees.",
}


@strawberry.type(description="A postal address of a district or school.")
class Address:
    street: str | None = _f(_ADDRESS["street"])
    unit: str | None = _f(_ADDRESS["unit"])
    city: str | None = _f(_ADDRESS["city"])
    state: str | None = _f(_ADDRESS["state"])
    postal_code: str | None = _f(_ADDRESS["postal_code"])
    country: str | None = _f(_ADDRESS["country"])
    phone: str | None = _f("The main phone number at this address.")
    latitude: float | None = _f(_ADDRESS["latitude"])
    longitude: float | None = _f(_ADDRESS["longitude"])


@strawberry.type(description="A person's postal address.")
class PersonAddress:
    street: str | None = _f(_ADDRESS["street"])
    unit: str | None = _f(_ADDRESS["unit"])
    city: str | None = _f(_ADDRESS["city"])
    state: str | None = _f(_ADDRESS["state"])
    postal_code: str | None = _f(_ADDRESS["postal_code"])
    country: str | None = _f(_ADDRESS["country"])
    phone: str | None = _f(
        "The phone number at this address.", directives=gate("PersonAddress", "phone")
    )
    latitude: float | None = _f(_ADDRESS["latitude"])
    longitude: float | None = _f(_ADDRESS["longitude"])


@strawberry.type(description="A person's demographics, as the source reports them.")
class Demographics:
    birthday: str | None = _f("Date of birth (ISO 8601 date).")
    gender: str | None = _f("Gender as reported by the source (e.g. female, male, other).")
    races: list[str] | None = _f("Races (CEDS names, e.g. `White`, `Asian`).")
    hispanic_or_latino_ethnicity: bool | None = _f("Hispanic or Latino ethnicity.")
    english_language_learner: bool | None = _f("English language learner.")
    individualized_education_plan: bool | None = _f("Has an individualized education plan.")
    economically_disadvantaged: bool | None = _f("Economically disadvantaged.")
    section504: bool | None = _f("Served under Section 504.")
    gifted_talented: bool | None = _f("In a gifted and talented program.")
    migrant: bool | None = _f("Migrant status.")
    homeless: bool | None = _f("Homeless status.")
    foster_care: bool | None = _f("In foster care.")
    military_connected: bool | None = _f("Has a parent in the military.")
    primary_language: str | None = _f("Primary language (ISO 639 code where known).")
    country_of_birth: str | None = _f("Country of birth.")
    state_of_birth: str | None = _f("State or province of birth.")
    city_of_birth: str | None = _f("City of birth.")


_CREATED = "When the gateway first saw this object."
_UPDATED = "When this object last changed."
_IDENTIFIERS = "Identifiers of this object in other systems."
_PROPERTIES = "The raw upstream fields of this object."
_LOCALE = "Locale (BCP 47, e.g. en-US)."
_TZ = "Time zone (IANA, e.g. America/Chicago)."
_GRADES = "Grade levels (CEDS codes: PK, KG, 01…13, UG, Other)."


@strawberry.type(description="The fields every graph object has.")
class GraphObject(Node):
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    identifiers: list[Identifier] = _f(_IDENTIFIERS)
    properties: JSON | None = _f(_PROPERTIES, directives=requires("properties:read"))


@strawberry.type(
    description="A school district; every source has exactly one.",
    directives=type_gate("District"),
)
class District(GraphObject):
    name: str = _f("The district's name.")
    locale: str | None = _f(_LOCALE)
    time_zone: str | None = _f(_TZ)
    address: Address | None = _f("The district office's address.")

    schools = connection_field(rel.DISTRICT_SCHOOLS, "School", "The district's schools.")

    sessions = connection_field(
        rel.DISTRICT_SESSIONS,
        "Session",
        "The district's sessions (school years, terms, grading periods).",
    )

    people = connection_field(rel.DISTRICT_PEOPLE, "Person", "Everyone in the district.")


@strawberry.type(
    description="A school of the district.",
    directives=type_gate("School"),
)
class School(GraphObject):
    name: str = _f("The school's name.")
    grade_levels: list[str] = _f(_GRADES)
    locale: str | None = _f(_LOCALE)
    time_zone: str | None = _f(_TZ)
    address: Address | None = _f("The school's address.")

    district = object_field(rel.SCHOOL_DISTRICT, "District", "The school's district.")

    sessions = connection_field(rel.SCHOOL_SESSIONS, "Session", "The school's own sessions.")

    courses = connection_field(rel.SCHOOL_COURSES, "Course", "Courses offered by the school.")

    classes = connection_field(rel.SCHOOL_CLASSES, "Class", "Classes taught at the school.")

    people = connection_field(
        rel.SCHOOL_PEOPLE, "Person", "Members of the school (students, staff, teachers)."
    )


@strawberry.type(
    description="A school year, semester, term or grading period.",
    directives=type_gate("Session"),
)
class Session(GraphObject):
    name: str = _f("The session's name, e.g. `Fall 2026`.")
    start_date: date | None = _f("First day of the session.")
    end_date: date | None = _f("Last day of the session.")
    state: enums.SessionState = _f("Whether the session is upcoming, active or completed.")
    type: enums.SessionType = _f("What kind of session this is.")

    district = object_field(rel.SESSION_DISTRICT, "District", "The district.")

    school = object_field(
        rel.SESSION_SCHOOL,
        "School",
        "The school the session belongs to; null for district-wide sessions.",
    )


@strawberry.type(
    description="A course of the catalog; classes are its instances.",
    directives=type_gate("Course"),
)
class Course(GraphObject):
    name: str = _f("The course's title.")
    code: str | None = _f("The course code, e.g. `MATH-101`.")
    grade_levels: list[str] = _f(_GRADES)
    subjects: list[str] = _f("Subjects the course covers.")

    district = object_field(rel.COURSE_DISTRICT, "District", "The district.")

    school = object_field(
        rel.COURSE_SCHOOL,
        "School",
        "The school offering the course; null for district-wide courses.",
    )

    session = object_field(
        rel.COURSE_SESSION, "Session", "The session the course is offered in, if any."
    )

    classes = connection_field(rel.COURSE_CLASSES, "Class", "Classes of this course.")


@strawberry.type(
    description="A class: a group of people meeting for a course in some sessions.",
    directives=type_gate("Class"),
)
class Class(GraphObject):
    name: str = _f("The class's name.")
    description: str | None = _f("A longer description.")
    state: enums.ClassState = _f("The class's lifecycle state.")
    grade_levels: list[str] = _f(_GRADES)
    subjects: list[str] = _f("Subjects taught.")
    periods: list[str] = _f("Periods the class meets in.")
    locale: str | None = _f(_LOCALE)
    time_zone: str | None = _f(_TZ)

    school = object_field(rel.CLASS_SCHOOL, "School", "The school the class is taught at.")

    course = object_field(
        rel.CLASS_COURSE, "Course", "The class's course; null when the class has none."
    )

    sessions = connection_field(
        rel.CLASS_SESSIONS, "Session", "Sessions (terms) the class runs in."
    )

    sections = connection_field(rel.CLASS_SECTIONS, "Section", "The class's sections.")

    enrollments = connection_field(rel.CLASS_ENROLLMENTS, "Enrollment", "Enrollments in the class.")

    people = connection_field(
        rel.CLASS_PEOPLE,
        "Person",
        "People enrolled in the class. `filter.roles` matches the people's roles; use "
        "`enrollments(filter: {roles: …})` for the role held in this class.",
    )


@strawberry.type(
    description="A section of a class.",
    directives=type_gate("Section"),
)
class Section(GraphObject):
    name: str = _f("The section's name.")
    description: str | None = _f("A longer description.")
    state: enums.SectionState = _f("The section's lifecycle state.")
    periods: list[str] = _f("Periods the section meets in.")

    class_ = object_field(rel.SECTION_CLASS, "Class", "The section's class.", name="class")

    enrollments = connection_field(
        rel.SECTION_ENROLLMENTS, "Enrollment", "Enrollments in the section."
    )


@strawberry.type(
    description="A student, teacher, administrator, staff member or guardian.",
    directives=type_gate("Person"),
)
class Person(GraphObject):
    # Gated on Person (identifiers:read), so nullable here.
    identifiers: list[Identifier] | None = _f(  # type: ignore[assignment]
        "Identifiers of this person in other systems (SIS id, state id, username).",
        directives=gate("Person", "identifiers"),
    )
    first_name: str | None = _f("Given name.")
    middle_name: str | None = _f("Middle name.")
    last_name: str | None = _f("Family name.")
    display_name: str | None = _f("The name to show, e.g. `Ada Lovelace`.")
    picture_url: str | None = _f("URL of a profile picture.")
    roles: list[enums.Role] = _f("Every role the person holds in the district.")
    email: str | None = _f("Email address.", directives=gate("Person", "email"))
    phone: str | None = _f("Phone number.", directives=gate("Person", "phone"))
    locale: str | None = _f(_LOCALE)
    time_zone: str | None = _f(_TZ)
    graduation_year: int | None = _f("Expected graduation year (students).")
    grade_levels: list[str] = _f(_GRADES)
    demographics: Demographics | None = _f(
        "Demographics (birthday, gender, race, program flags).",
        directives=gate("Person", "demographics"),
    )
    address: PersonAddress | None = _f("Home address.", directives=gate("Person", "address"))

    district = object_field(rel.PERSON_DISTRICT, "District", "The person's district.")

    schools = connection_field(rel.PERSON_SCHOOLS, "School", "Schools the person belongs to.")

    enrollments = connection_field(
        rel.PERSON_ENROLLMENTS, "Enrollment", "The person's enrollments."
    )

    classes = connection_field(rel.PERSON_CLASSES, "Class", "Classes the person is enrolled in.")

    agents = connection_field(
        rel.PERSON_AGENTS,
        "Agent",
        "Relationships the person is part of, as observer (guardian) or as target.",
    )


@strawberry.type(
    description="A person's enrollment in a class, optionally in one of its sections.",
    directives=type_gate("Enrollment"),
)
class Enrollment(GraphObject):
    role: enums.Role = _f("The role the person holds in the class.")
    primary: bool = _f("True for the class's primary teacher.")
    state: enums.EnrollmentState = _f("The enrollment's lifecycle state.")
    start_date: date | None = _f("First day of the enrollment.")
    end_date: date | None = _f("Last day of the enrollment.")

    person = object_field(rel.ENROLLMENT_PERSON, "Person", "The enrolled person.")

    class_ = object_field(rel.ENROLLMENT_CLASS, "Class", "The class.", name="class")

    section = object_field(
        rel.ENROLLMENT_SECTION, "Section", "The section, when the enrollment is in one."
    )


@strawberry.type(
    description="A relationship: an observer (guardian, parent, aide) and the person observed.",
    directives=type_gate("Agent"),
)
class Agent(GraphObject):
    relationship: enums.AgentRelationship = _f("How the observer relates to the target.")
    flags: list[str] = _f("Extra flags, e.g. `emergency_contact`, `lives_with`.")

    observer = object_field(rel.AGENT_OBSERVER, "Person", "The observer (guardian, parent, aide).")

    target = object_field(rel.AGENT_TARGET, "Person", "The person observed.")


GRAPH_CLASSES: dict[str, type] = {
    "District": District,
    "School": School,
    "Session": Session,
    "Course": Course,
    "Class": Class,
    "Section": Section,
    "Person": Person,
    "Enrollment": Enrollment,
    "Agent": Agent,
}
