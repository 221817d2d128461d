"""Checks what a generated client's sample printed against the demo database it was served from.

    python clients/check.py DATABASE.db OUTPUT.txt LABEL

The sample's last `RESULT {json}` line must hold, read through the gateway with the demo's
ALL integration, the first three schools by id, their count and the first session's dates;
and, read with the partial-permissions integration (no `emails:read`), the first two people
with their emails withheld (null, though the database has them) and a FORBIDDEN error at
`people.nodes.email`. Exit status 0 when it does; otherwise each difference is printed.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any


def expected(database: Path) -> dict[str, Any]:
    """What the samples must have read, straight from the database."""
    with sqlite3.connect(database) as db:
        schools = [name for (name,) in db.execute("SELECT name FROM schools ORDER BY id LIMIT 3")]
        (count,) = db.execute("SELECT count(*) FROM schools").fetchone()
        start, end = db.execute(
            "SELECT start_date, end_date FROM sessions ORDER BY id LIMIT 1"
        ).fetchone()
        people = db.execute("SELECT display_name, email FROM people ORDER BY id LIMIT 2").fetchall()
    if any(email is None for _, email in people):
        raise SystemExit("the demo's first people have no email: the check would prove nothing")
    return {
        "integration": {"scope": "ALL", "status": "ACTIVE"},
        "totalCount": count,
        "schools": schools,
        "session": {"startDate": start, "endDate": end},
        "forbidden": {
            "code": "FORBIDDEN",
            "path": ["people", "nodes", "email"],
            "message": "`Person.email` needs the permission emails:read, which this integration "
            "was not granted.",
            "emails": [None, None],
            "names": [name for name, _ in people],
        },
    }


def printed(output: Path) -> dict[str, Any]:
    """The sample's `RESULT` line, decoded."""
    lines = [line for line in output.read_text().splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"{output}: the sample printed no RESULT line")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def main(database: str, output: str, label: str) -> int:
    want, got = expected(Path(database)), printed(Path(output))
    differences = [key for key in want if want[key] != got.get(key)]
    for key in differences:
        print(f"{label}: {key} is {got.get(key)!r}, expected {want[key]!r}")
    if differences:
        return 1
    print(
        f"{label}: ok - {len(got['schools'])} of {got['totalCount']} schools, session "
        f"{got['session']['startDate']}..{got['session']['endDate']}, and FORBIDDEN at "
        f"{'.'.join(got['forbidden']['path'])} with the emails withheld"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
