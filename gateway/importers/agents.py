"""users.csv agentSourcedIds → Agents: one per guardian (or aide) link, whichever row lists it.

OneRoster states a link on both users' rows ("and vice versa"). The observer is the side whose
role is parent, guardian or relative (aide or proctor for an aide link), the target the other
(DESIGN §10), so both listings, and a listing from one side only, are the same Agent with the
same id. A link between two users of whom neither or both have such a role has no clear
observer: it is stored once, with the user who lists it as the target, and a warning.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

import sqlalchemy as sa

from gateway.importers.cells import OBSERVER_ROLES, TO_BE_DELETED
from gateway.importers.reading import Row
from gateway.importers.run import AGENTS, PEOPLE, Ref, Run
from gateway.importers.store import SEEN

Pair = frozenset[str]


async def import_agents(run: Run) -> None:
    """users.csv agentSourcedIds → one Agent per link; in delta mode a listed user's links that
    no row of the file lists any more are removed."""
    mode = run.mode("users")
    if mode == "absent":
        return
    csv_file, cells = run.open("users", ("sourcedId",))
    if not csv_file.has("agentSourcedIds"):
        return
    header = csv_file.header
    at = header.index("agentSourcedIds")
    for batch in csv_file.records(run.batch_size):
        refs: list[Ref] = []
        listings: list[tuple[Row, str, str]] = []
        for line, record in batch:
            if mode == "bulk" and not record[at].strip():
                # A row that lists no agent: the users pass has checked its sourcedId and status
                # already, and in a bulk file they warn of nothing.
                continue
            row = Row(line, dict(zip(header, record, strict=True)))
            lister = cells.required(row, "sourcedId")
            if cells.status(row, mode) == TO_BE_DELETED:
                continue
            for listed in dict.fromkeys(cells.items(row, "agentSourcedIds")):
                if listed == lister:
                    run.warnings.add(
                        "self agent",
                        f"users.csv, line {row.line}: user '{lister}' lists itself as an agent; "
                        "left out",
                    )
                    continue
                refs.append(
                    Ref("person", run.id("person", listed), row.line, "agentSourcedIds", listed)
                )
                listings.append((row, lister, listed))
        await run.check_refs(cells.file, refs)
        await _write_links(run, listings)
    if mode == "delta":
        # A delta row states all of its user's links: those that no row of the file listed go.
        listed_users = sa.select(SEEN.c.id).where(SEEN.c.kind == "person", SEEN.c.live.is_(True))
        kept = sa.select(SEEN.c.id).where(SEEN.c.kind == "agent")
        await run.store.delete_where(
            AGENTS,
            sa.or_(AGENTS.c.target_id.in_(listed_users), AGENTS.c.observer_id.in_(listed_users)),
            AGENTS.c.id.not_in(kept),
        )


async def _write_links(run: Run, listings: list[tuple[Row, str, str]]) -> None:
    """Write one batch's listings as Agents, removing any other agent of the same two people."""
    people = {run.id("person", sid) for _, lister, listed in listings for sid in (lister, listed)}
    relationships = await _relationships(run, people)
    existing = await _links(run, people)
    agents: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    doubled: set[str] = set()
    for row, lister, listed in listings:
        lister_id, listed_id = run.id("person", lister), run.id("person", listed)
        pair = frozenset((lister_id, listed_id))
        lister_observes = lister_id in relationships
        listed_observes = listed_id in relationships
        if listed_observes != lister_observes:
            target, observer = (lister, listed) if listed_observes else (listed, lister)
        else:
            current = existing.get(pair, [])
            # No clear observer: the lister is the target, unless the link is already stored
            # (listed by the other user before), which keeps its id.
            kept = next((a for a in current if a["target_id"] == lister_id), None)
            kept = kept or (current[0] if current else None)
            if kept is None or kept["target_id"] == lister_id:
                target, observer = lister, listed
            else:
                target, observer = listed, lister
            who = (
                f"both '{lister}' and '{listed}' have"
                if lister_observes
                else f"neither '{lister}' nor '{listed}' has"
            )
            run.warnings.add(
                "agent observer",
                f"users.csv, line {row.line}: {who} a parent, guardian, relative, aide or proctor "
                "role, so the agent link between them has no clear observer; stored with "
                f"'{target}' (who lists it) as the target",
                key=pair,
            )
        agent_id = run.id("agent", json.dumps([target, observer]))
        observer_id = run.id("person", observer)
        agents[agent_id] = {
            "id": agent_id,
            "source_id": run.source_id,
            "identifiers": [],
            "properties": {},
            "observer_id": observer_id,
            "target_id": run.id("person", target),
            "relationship": relationships.get(observer_id, "OTHER"),
            "flags": [],
        }
        lines.setdefault(agent_id, row.line)
        doubled.update(a["id"] for a in existing.get(pair, []) if a["id"] != agent_id)
        existing[pair] = [agents[agent_id]]
    await run.store.delete(AGENTS, doubled)
    await run.store.write(
        AGENTS, list(agents.values()), await run.store.fetch(AGENTS, list(agents))
    )
    seen = await run.store.seen_lines("agent", list(agents))
    await run.store.mark_seen(
        "agent", [(i, line, True) for i, line in lines.items() if i not in seen]
    )


async def _links(run: Run, people: Collection[str]) -> dict[Pair, list[dict[str, Any]]]:
    """The stored agents between any two of `people`, by the pair they link."""
    if not people:
        return {}
    rows = await run.conn.execute(
        sa.select(AGENTS.c.id, AGENTS.c.observer_id, AGENTS.c.target_id).where(
            AGENTS.c.source_id == run.source_id,
            run.store.among(AGENTS.c.observer_id, people),
            run.store.among(AGENTS.c.target_id, people),
        )
    )
    found: dict[Pair, list[dict[str, Any]]] = {}
    for row in rows.mappings():
        found.setdefault(frozenset((row["observer_id"], row["target_id"])), []).append(dict(row))
    return found


async def _relationships(run: Run, people: Iterable[str]) -> dict[str, str]:
    """The Agent.relationship each of `people` has as an observer, for those whose OneRoster
    role (users.csv `role`, else their roles.csv rows, primary first) makes them one."""
    ids = list(people)
    if not ids:
        return {}
    rows = await run.conn.execute(
        sa.select(PEOPLE.c.id, PEOPLE.c.properties).where(run.store.among(PEOPLE.c.id, ids))
    )
    found: dict[str, str] = {}
    for person_id, properties in rows:
        raw = [(properties or {}).get("role")]
        raw += [e.get("role") for e in (properties or {}).get("roles", [])]
        for role in raw:
            relationship = OBSERVER_ROLES.get((role or "").lower())
            if relationship is not None:
                found[person_id] = relationship
                break
    return found
