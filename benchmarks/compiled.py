"""Compiled execution against the resolver path and a raw floor, with wrk (a benchmark, not a
test; issue #12).

Loads the demo (`--people`, default 10000) into a temporary SQLite file and starts three
servers, each one uvicorn process on loopback:

- the raw floor: plain Starlette + aiosqlite + orjson, no SQLAlchemy, no GraphQL, no scope
  view: 100 rows x 4 fields of `people` for the token's source, in id order;
- the gateway with GATEWAY_EXECUTION=resolvers;
- the gateway with GATEWAY_EXECUTION=auto (the compiled path).

For a flat page, a nested page and a three-level page, under ALL and SELECTED tokens, it runs
wrk (`--connections`, one thread, `--seconds` each) against the three in turn, `--rounds`
times interleaved, and prints the median req/s and the ratios to the floor.

    .venv/bin/python benchmarks/compiled.py [--people 10000] [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

FLAT = "{ people(first: 100) { nodes { id firstName lastName email } } }"
NESTED = (
    "{ people(first: 100) { nodes { id firstName lastName email "
    "schools(first: 1) { nodes { name } } } } }"
)
THREE = (
    "{ schools(first: 4) { nodes { id name classes(first: 25) { nodes { id name "
    "enrollments(first: 30) { nodes { id role person { id displayName } } } } } } } }"
)
WRK = shutil.which("wrk") or "/usr/bin/wrk"
QUERIES = {"flat": FLAT, "nested": NESTED, "three-level": THREE}
TOKENS = {"ALL": "all", "SELECTED": "selected-schools"}


def floor_app() -> Any:
    """The raw floor (uvicorn factory; the database path is in GATEWAY_FLOOR_DB)."""
    import aiosqlite
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    path = os.environ["GATEWAY_FLOOR_DB"]
    source = os.environ["GATEWAY_FLOOR_SOURCE"]
    pool: list[aiosqlite.Connection] = []

    async def people(request: Request) -> Response:
        conn = pool.pop() if pool else await aiosqlite.connect(path)
        try:
            cursor = await conn.execute(
                "SELECT id, first_name, last_name, email FROM people WHERE source_id = ? "
                "ORDER BY id LIMIT 100",
                (source,),
            )
            rows = await cursor.fetchall()
        finally:
            pool.append(conn)
        nodes = [{"id": r[0], "firstName": r[1], "lastName": r[2], "email": r[3]} for r in rows]
        return Response(
            orjson.dumps({"data": {"people": {"nodes": nodes}}}), media_type="application/json"
        )

    return Starlette(routes=[Route("/graphql", people, methods=["POST"])])


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(app: str, env: dict[str, str], factory: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "error"]
    if factory:
        command.append("--factory")
    process = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent
    )
    url = f"http://127.0.0.1:{port}/graphql"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.post(url, json={"query": "{ __typename }"}, timeout=2)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{app} did not start")


def _wrk(url: str, query: str, token: str, connections: int, seconds: int) -> float:
    body = orjson.dumps({"query": query}).decode()
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = {orjson.dumps(body).decode()}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", handle.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} failed responses\n{out}")
    return float(found.group(1)) if found else 0.0


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.3f}" if floor > 0 else "n/a"


async def _load(url: str, people: int) -> dict[str, str]:
    from gateway.db import engine_for
    from gateway.demo import load_demo

    async with engine_for(url) as engine:
        demo = await load_demo(engine, people=people)
        return {i.name: i.token for i in demo.integrations if i.token is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args()
    if not Path(WRK).exists():
        sys.exit("wrk is not installed")
    directory = Path(tempfile.mkdtemp(prefix="gateway-compiled-"))
    db = directory / "gateway.db"
    url = f"sqlite+aiosqlite:///{db}"
    tokens = asyncio.run(_load(url, args.people))
    with sqlite3.connect(db) as conn:
        source = conn.execute("SELECT source_id FROM people LIMIT 1").fetchone()[0]
    common = {
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
        "GATEWAY_RATE_LIMIT_BURST": "1000000",
        "GATEWAY_MAX_COST": "100000000",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    servers = {
        "floor": _start(
            "benchmarks.compiled:floor_app",
            {"GATEWAY_FLOOR_DB": str(db), "GATEWAY_FLOOR_SOURCE": source},
            factory=True,
        ),
        "resolvers": _start(
            "gateway.app:create_app", {**common, "GATEWAY_EXECUTION": "resolvers"}, factory=True
        ),
        "compiled": _start(
            "gateway.app:create_app", {**common, "GATEWAY_EXECUTION": "auto"}, factory=True
        ),
    }
    try:
        results: dict[tuple[str, str, str], list[float]] = {}
        for _ in range(args.rounds):
            for scope, kind in TOKENS.items():
                for name, query in QUERIES.items():
                    for server, (_, server_url) in servers.items():
                        rate = _wrk(server_url, query, tokens[kind], args.connections, args.seconds)
                        results.setdefault((scope, name, server), []).append(rate)
        print(f"demo people={args.people}, wrk -t1 -c{args.connections} -d{args.seconds}s, ")
        print(f"median of {args.rounds} interleaved rounds (req/s; x the raw floor)\n")
        print("| scope | request | floor | resolvers | x | compiled | x | compiled/resolvers |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for scope in TOKENS:
            for name in QUERIES:
                floor = statistics.median(results[(scope, "flat", "floor")])
                res = statistics.median(results[(scope, name, "resolvers")])
                com = statistics.median(results[(scope, name, "compiled")])
                print(
                    f"| {scope} | {name} | {floor:,.0f} | {res:,.0f} | {_ratio(res, floor)} | "
                    f"{com:,.0f} | {_ratio(com, floor)} | {_ratio(com, res)} |"
                )
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
