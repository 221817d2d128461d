"""The worst requests we know within the default limits, and what they do to `/healthz`.

Loads the demo (`--people`, default 20,000) into a temporary SQLite file (or uses
`--database-url`, which must already hold the demo), starts `gateway serve` in a process of its
own with the default limits, and sends each request below `--rounds` times while another
thread asks `/healthz` every 20 ms. It prints, per request, its status and time, and the
slowest `/healthz` answer while it ran (a benchmark, not a test: the numbers depend on the
machine).

    .venv/bin/python benchmarks/stall.py [--people 20000] [--rounds 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.db import engine_for
from gateway.demo import load_demo
from gateway.settings import Settings

DEFAULTS = Settings.model_construct()
LONGEST = DEFAULTS.max_list_length
ALIASES = DEFAULTS.max_aliases


def _aliased(field: str) -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(ALIASES)) + " }"


def _ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


@dataclass
class Attack:
    name: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)


ATTACKS = [
    # Issue 11 finding 1, with lists at the cap: one variable feeding every id filter and alias.
    Attack(
        "classes-id-filters-x30",
        "query($i: [ID!])"
        + _aliased(
            "classes(first: 0, filter: {ids: $i, schoolIds: $i, courseIds: $i}) { totalCount }"
        ),
        {"i": _ids(LONGEST)},
    ),
    Attack(
        "people-id-filters-x30",
        "query($i: [ID!])"
        + _aliased(
            "people(first: 0, filter: {ids: $i, schoolIds: $i, classIds: $i}) { totalCount }"
        ),
        {"i": _ids(LONGEST)},
    ),
    # Every person matched against the longest list of distinct grade levels, 30 times.
    Attack(
        "people-grade-levels-x30",
        "query($g: [String!])"
        + _aliased("people(first: 0, filter: {gradeLevels: $g}) { totalCount }"),
        {"g": [f"g{i}" for i in range(LONGEST)]},
    ),
    # Substring matches with the longest filter text, on every person, 30 times.
    Attack(
        "people-contains-x30",
        "query($t: String)"
        + _aliased("people(first: 0, filter: {displayName: {contains: $t}}) { totalCount }"),
        {"t": "%_" * 500},
    ),
    # The most rows the cost limit allows: 1000 classes x 99 enrollments with their person.
    Attack(
        "classes-enrollments-199k",
        "{ classes(first: 1000) { nodes { id name enrollments(first: 99)"
        " { nodes { id role state person { id displayName } } } } } }",
    ),
    # 1000 people with every field and two nested connections (cost 199,000).
    Attack(
        "people-everything-199k",
        "{ people(first: 1000) { nodes { id firstName lastName displayName email phone roles"
        " gradeLevels properties identifiers { type value } demographics { birthday gender }"
        " address { street city } enrollments(first: 49) { nodes { id role class { id name } } }"
        " classes(first: 49) { nodes { id name school { name } } } } } }",
    ),
    # Issue 11 finding 2: refused now (the estimate reads the variable's default).
    Attack(
        "variable-default-cost-dodge",
        "query($f: Int = 1000) { people(first: $f) { nodes { id classes(first: $f)"
        " { nodes { id people(first: 18) { nodes { id } } } } } } }",
    ),
]


class Prober(threading.Thread):
    """Asks `/healthz` every 20 ms and keeps each answer's latency with its start time."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                client.get("/healthz")
                self.samples.append((started, time.perf_counter() - started))
                time.sleep(0.02)

    def worst_between(self, start: float, end: float) -> float:
        during = [latency for at, latency in self.samples if at <= end and at + latency >= start]
        return max(during, default=0.0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_RATE_LIMIT_BURST": "100000",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    gateway = Path(sys.executable).with_name("gateway")
    server = subprocess.Popen([str(gateway), "serve", "--port", str(port)], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("the gateway did not start")


async def _token(url: str, people: int, load: bool) -> str:
    async with engine_for(url) as engine:
        if load:
            demo = await load_demo(engine, people=people)
            token = next(i.token for i in demo.integrations if i.name == "all")
            assert token is not None  # a fresh load shows every token
            return token
    raise SystemExit("--database-url needs --token")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument("--token")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'stall.db'}"
        token = args.token or asyncio.run(_token(url, args.people, args.database_url is None))
        port = _free_port()
        server = _serve(url, port)
        base = f"http://127.0.0.1:{port}"
        prober = Prober(base)
        prober.start()
        try:
            time.sleep(0.5)
            print(
                f"idle: /healthz worst {prober.worst_between(0, time.perf_counter()) * 1000:.1f} ms"
            )
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                for attack in ATTACKS:
                    times, worst, statuses = [], [], set()
                    for _ in range(args.rounds):
                        start = time.perf_counter()
                        response = client.post(
                            "/graphql", json={"query": attack.query, "variables": attack.variables}
                        )
                        end = time.perf_counter()
                        body = response.json()
                        code = [e["extensions"]["code"] for e in body.get("errors", [])][:1]
                        statuses.add(f"{response.status_code}{' ' + code[0] if code else ''}")
                        times.append(end - start)
                        time.sleep(0.1)  # let the prober's sample that overlaps the end land
                        worst.append(prober.worst_between(start, end))
                    print(
                        f"{attack.name:32} {', '.join(sorted(statuses)):24} "
                        f"{len(response.content) / 1e6:6.2f} MB  "
                        f"median {statistics.median(times) * 1000:7.0f} ms  "
                        f"max {max(times) * 1000:7.0f} ms  "
                        f"/healthz worst {max(worst) * 1000:6.1f} ms"
                    )
        finally:
            prober.stop.set()
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
