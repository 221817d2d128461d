"""The Grant: what one request's integration may see, decided once per request."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime


class Scope(enum.StrEnum):
    """Whether an integration sees its whole source or only its targets' closure."""

    ALL = "ALL"
    SELECTED = "SELECTED"


class IntegrationStatus(enum.StrEnum):
    """The stored or effective state of an integration."""

    INACTIVE = "INACTIVE"
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


def effective_status(
    stored: IntegrationStatus, start_date: datetime | None, now: datetime | None = None
) -> IntegrationStatus:
    """The status a request sees: DISABLED wins; a start date decides INACTIVE or ACTIVE.

    A scheduled integration becomes ACTIVE the moment its start date passes, with no job.
    """
    if stored is IntegrationStatus.DISABLED:
        return stored
    if start_date is None:
        return stored
    now = now or datetime.now(UTC)
    if start_date.tzinfo is None:
        start_date = start_date.replace(tzinfo=UTC)
    return IntegrationStatus.ACTIVE if now >= start_date else IntegrationStatus.INACTIVE


@dataclass(frozen=True, slots=True)
class Targets:
    """An integration's targets split by kind (schools, courses, classes)."""

    schools: frozenset[str] = frozenset()
    courses: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()

    def all(self) -> frozenset[str]:
        """Every target id, whatever its kind."""
        return self.schools | self.courses | self.classes


@dataclass(frozen=True, slots=True)
class Grant:
    """Source, scope, targets and permissions of the calling integration.

    Ids are canonical lowercase UUID strings. Every graph data access takes a Grant.
    """

    integration_id: str
    source_id: str
    scope: Scope
    status: IntegrationStatus
    permissions: frozenset[str]
    targets: Targets = field(default_factory=Targets)
    # Set when the integration is INACTIVE only until this moment (a scheduled start).
    starts_at: datetime | None = None

    @property
    def active(self) -> bool:
        """True when graph data may be read."""
        return self.status is IntegrationStatus.ACTIVE

    def allows(self, slug: str) -> bool:
        """True when the integration holds the permission `slug`."""
        return slug in self.permissions
