"""users.csv agentSourcedIds → Agents: observer = the agent, target = the user, with a
relationship from the agent's OneRoster role."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from gateway.importers.cells import AGENT_RELATIONSHIPS, TO_BE_DELETED
from gateway.importers.reading import Row
from gateway.importers.run import AGENTS, PEOPLE, Ref, Run


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
