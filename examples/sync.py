"""Keep a local copy of what one integration sees: a full sync, then the change feed.

    python examples/sync.py http://127.0.0.1:8000/graphql "$TOKEN" state.json

The first run remembers where the feed ends, then reads every list the integration may read
(a full sync); each later run applies the events after the saved cursor. When the saved cursor
has expired (the feed keeps GATEWAY_EVENT_RETENTION_DAYS), the gateway answers BAD_USER_INPUT
with `fullSyncRequired: true` and the script starts over. Only `httpx` is needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

LISTS = {  # event target type -> root list
    "DISTRICT": "districts",
    "SCHOOL": "schools",
    "SESSION": "sessions",
    "COURSE": "courses",
    "CLASS": "classes",
    "SECTION": "sections",
    "PERSON": "people",
    "ENROLLMENT": "enrollments",
    "AGENT": "agents",
}
URL = "http://127.0.0.1:8000/graphql"
FEED = """query Feed($after: String) { events(first: 1000, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { type targetType targetId data } } }"""


class FullSyncRequired(Exception):
    """The saved cursor is older than what the feed keeps."""


def post(client: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    """Run one operation; errors other than FORBIDDEN (a list the integration may not read)
    stop the sync."""
    body = client.post(URL, json={"query": query, "variables": variables}).json()
    for error in body.get("errors", []):
        if error["extensions"].get("fullSyncRequired"):
            raise FullSyncRequired(error["message"])
        if error["extensions"]["code"] != "FORBIDDEN":
            raise RuntimeError(error["message"])
    return body["data"]


def follow(client: httpx.Client, state: dict[str, Any]) -> int:
    """Apply every event after `state["cursor"]`; returns how many there were."""
    applied = 0
    while True:
        page = post(client, FEED, after=state["cursor"])["events"]
        for event in page["nodes"]:
            key = f"{event['targetType']}:{event['targetId']}"
            if event["type"] == "DELETED":
                state["objects"].pop(key, None)
            else:  # a real app keeps the fields it needs; this one keeps two
                data = event["data"]
                state["objects"][key] = {"id": data["id"], "updatedDate": data["updatedDate"]}
            applied += 1
        state["cursor"] = page["pageInfo"]["endCursor"] or state["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            return applied


def full_sync(client: httpx.Client) -> dict[str, Any]:
    """Note where the feed ends first (so no change is missed), then read every list; the
    events written meanwhile are applied by the next `follow` (applying one twice is
    harmless)."""
    state: dict[str, Any] = {"cursor": None, "objects": {}}
    follow(client, state)
    state["objects"] = {}
    for target, root in LISTS.items():
        after = None
        while True:
            query = f"""query ($after: String) {{ {root}(first: 1000, after: $after) {{
                pageInfo {{ hasNextPage endCursor }} nodes {{ id updatedDate }} }} }}"""
            page = post(client, query, after=after)[root]
            if page is None:  # a type its permissions do not cover
                break
            for node in page["nodes"]:
                state["objects"][f"{target}:{node['id']}"] = node
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    return state


def main() -> None:
    """Sync the integration of the token into the state file."""
    global URL
    URL, token, path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        state = json.loads(path.read_text()) if path.exists() else None
        try:
            if state is None:
                raise FullSyncRequired("no saved state")
            applied = follow(client, state)
            print(f"applied {applied} events")
        except FullSyncRequired as reason:
            print(f"full sync ({reason})")
            state = full_sync(client)
            follow(client, state)
        path.write_text(json.dumps(state))
        print(f"{len(state['objects'])} objects, cursor {state['cursor']}")


if __name__ == "__main__":
    main()
