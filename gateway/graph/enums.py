"""The graph's enums (DESIGN §3); values are stored as these strings."""

from __future__ import annotations

import enum

import strawberry


@strawberry.enum(description="A person's role in a district, school, class or relationship.")
class Role(enum.Enum):
    STUDENT = "STUDENT"
    DISTRICT_ADMINISTRATOR = "DISTRICT_ADMINISTRATOR"
    ADMINISTRATOR = "ADMINISTRATOR"
    TEACHER = "TEACHER"
    STAFF = "STAFF"
    OBSERVER = "OBSERVER"
    PARENT = "PARENT"
    GUARDIAN = "GUARDIAN"
    TA = "TA"
    AIDE = "AIDE"
    DESIGNER = "DESIGNER"
    MEMBER = "MEMBER"


@strawberry.enum(
    description=(
        "Where a session stands, as its source reported it at the last sync (a OneRoster "
        "import derives it from the session's dates on the day of the import)."
    )
)
class SessionState(enum.Enum):
    ACTIVE = "ACTIVE"
    UPCOMING = "UPCOMING"
    COMPLETED = "COMPLETED"


@strawberry.enum(description="What kind of period a session is.")
class SessionType(enum.Enum):
    SCHOOL_YEAR = "SCHOOL_YEAR"
    SEMESTER = "SEMESTER"
    TERM = "TERM"
    GRADING_PERIOD = "GRADING_PERIOD"


@strawberry.enum(description="The lifecycle state of a class.")
class ClassState(enum.Enum):
    TEMPLATE = "TEMPLATE"
    UPCOMING = "UPCOMING"
    INACTIVE = "INACTIVE"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    ARCHIVED = "ARCHIVED"


@strawberry.enum(description="The lifecycle state of a section.")
class SectionState(enum.Enum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    UPCOMING = "UPCOMING"
    COMPLETED = "COMPLETED"
    ARCHIVED = "ARCHIVED"


@strawberry.enum(description="The lifecycle state of an enrollment.")
class EnrollmentState(enum.Enum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    DROPPED = "DROPPED"
    UPCOMING = "UPCOMING"
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"


@strawberry.enum(description="How an agent (observer) relates to the person they observe.")
class AgentRelationship(enum.Enum):
    PARENT = "PARENT"
    GUARDIAN = "GUARDIAN"
    RELATIVE = "RELATIVE"
    AIDE = "AIDE"
    EMERGENCY_CONTACT = "EMERGENCY_CONTACT"
    OTHER = "OTHER"


@strawberry.enum(description="Whether an integration sees its whole source or its targets only.")
class Scope(enum.Enum):
    ALL = "ALL"
    SELECTED = "SELECTED"


@strawberry.enum(description="Whether an integration may read graph data now.")
class IntegrationStatus(enum.Enum):
    INACTIVE = "INACTIVE"
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


@strawberry.enum(description="The health of a data source.")
class SourceStatus(enum.Enum):
    INACTIVE = "INACTIVE"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"
    DISABLED = "DISABLED"


@strawberry.enum(description="Whether an entity is a district or a single school.")
class EntityType(enum.Enum):
    DISTRICT = "DISTRICT"
    SCHOOL = "SCHOOL"
