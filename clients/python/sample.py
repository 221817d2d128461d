"""A typed Python client of the gateway: ariadne-codegen's `gateway_client` package (generated
from a live gateway's introspection and queries.graphql), calling the demo.

    GATEWAY_GRAPHQL_URL=http://127.0.0.1:8000/graphql GATEWAY_TOKEN=… GATEWAY_PARTIAL_TOKEN=… \
        python sample.py

It prints what it read, then one line `RESULT {json}` that clients/run.sh checks.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import date, datetime
from typing import Any

from gateway_client import Client, GraphQLClientGraphQLMultiError


def client(url: str, token: str) -> Client:
    return Client(url, headers={"Authorization": f"Bearer {token}"})


async def main() -> dict[str, Any]:
    url = os.environ["GATEWAY_GRAPHQL_URL"]
    answer = await client(url, os.environ["GATEWAY_TOKEN"]).schools(first=3)
    # Gated root fields are Optional: None (with a FORBIDDEN error) when the grant lacks them.
    if answer.schools is None or answer.sessions is None:
        raise SystemExit("no schools or sessions in the answer")
    for school in answer.schools.nodes:
        updated: datetime = school.updated_date  # DateTime: parsed into a datetime
        print(f"school {school.name} (updated {updated.isoformat()}, {school.properties=})")
    session = answer.sessions.nodes[0]
    start: date | None = session.start_date  # Date: parsed into a date
    print(f"session {session.name}: {start} to {session.end_date} (dates)")

    # The library raises on any error in the response, keeping the partial data beside it.
    forbidden: dict[str, Any] | None = None
    try:
        await client(url, os.environ["GATEWAY_PARTIAL_TOKEN"]).people_emails(first=2)
    except GraphQLClientGraphQLMultiError as exc:
        print(f"partial token: {type(exc).__name__}: {exc}")
        error = exc.errors[0]
        people = ((exc.data or {}).get("people") or {}).get("nodes") or []
        forbidden = {
            "code": (error.extensions or {}).get("code"),
            "path": error.path,
            "message": error.message,
            "emails": [person["email"] for person in people],
            "names": [person["displayName"] for person in people],
        }
    return {
        "integration": {
            "scope": answer.integration.scope.value,
            "status": answer.integration.status.value,
        },
        "totalCount": answer.schools.total_count,
        "schools": [school.name for school in answer.schools.nodes],
        "session": {"startDate": str(start), "endDate": str(session.end_date)},
        "forbidden": forbidden,
    }


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(main())))
