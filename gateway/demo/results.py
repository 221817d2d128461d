"""What loading the demo returns: the source, its integrations with their tokens, row counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DemoIntegration:
    """One demo integration as `gateway demo --json` prints it (token shown only here; None
    for an integration that was kept, whose token only its digest remembers)."""

    name: str
    id: str
    status: str
    scope: str
    targets: list[str]
    permissions: list[str]
    token: str | None

    def as_json(self) -> dict[str, Any]:
        """The integration in DESIGN §7's shape."""
        return {
            "name": self.name,
            "id": self.id,
            "status": self.status,
            "scope": self.scope,
            "targets": list(self.targets),
            "permissions": list(self.permissions),
            "token": self.token,
        }


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The demo source, its integrations with their tokens, and its row counts per table."""

    source_id: str
    source_name: str
    integrations: list[DemoIntegration]
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Exactly DESIGN §7's `gateway demo --json` object."""
        return {
            "source": {"id": self.source_id, "name": self.source_name},
            "integrations": [i.as_json() for i in self.integrations],
        }
