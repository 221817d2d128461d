"""Compiled execution against the resolver path and a raw floor, with wrk (a benchmark, not a
test; issue #12).

Loads the demo (`--people`, default 10000) into a temporary SQLite file and starts three
servers, each one uvicorn process on loopback:

- the raw floor: plain Starlette + aiosqlite + orjson, no SQLAlchemy, no GraphQL, no scope
  view: 100 rows x 4 fields of `people` for the token's source, in id order (read through a
  memory map of the file, as the gateway reads);
- the gateway with GATEWAY_EXECUTION=resolvers;
- the gateway with GATEWAY_EXECUTION=auto (the compiled path).

For a flat page, a nested page and a three-level page, under ALL and SELECTED tokens, it runs
wrk (`--connections`, one thread, `--seconds` each) against the three in turn, ALL and SELECTED
one after the other, `--rounds` times interleaved. It prints the median req/s and, since a shared
machine's speed drifts by more than the differences measured, the median of each round's ratio
to the run just before it: each server to the floor, and SELECTED to ALL. It also prints each
server process's CPU time per request (from /proc), which other work on the machine moves less.

Each server runs on one core and wrk on the others (`--unpinned` lets them run anywhere).

With `--postgres URL` (a server's maintenance database, e.g. the one `.ci/postgres.sh` starts)
the demo goes into a new database there, dropped at the end, and the floor reads it through
asyncpg (a pool of ten connections) instead of aiosqlite. The PostgreSQL server's own processes
are not pinned, and their CPU is not in the servers' figures.

    .venv/bin/python benchmarks/compiled.py [--people 10000] [--rounds 3] [--seconds 5]
        [--postgres postgresql+asyncpg://gateway:gateway@127.0.0.1:55432/postgres]
        [--log-level INFO]
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
    """The raw floor (uvicorn factory; the database path is in GATEWAY_FLOOR_DB, or a
    PostgreSQL DSN in GATEWAY_FLOOR_PG)."""
    import aiosqlite
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    source = os.environ["GATEWAY_FLOOR_SOURCE"]
    if "GATEWAY_FLOOR_PG" in os.environ:
        return _postgres_floor_app(os.environ["GATEWAY_FLOOR_PG"], source)
    from gateway.db import SQLITE_MMAP_BYTES  # a constant: no query layer of the gateway's

    path = os.environ["GATEWAY_FLOOR_DB"]
    pool: list[aiosqlite.Connection] = []

    async def connect() -> aiosqlite.Connection:
        conn = await aiosqlite.connect(path)
        # Reads through the memory map of the file, as the gateway's connections do, instead of
        # copying each page into its own cache: on a 10,000-person demo it served 3,650-4,100
        # req/s so, against 2,700-3,200 without (and some 6% less with 16 KiB pages).
        await conn.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
        return conn

    async def people(request: Request) -> Response:
        conn = pool.pop() if pool else await connect()
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


def _postgres_floor_app(dsn: str, source: str) -> Any:
    """The raw floor on PostgreSQL: plain Starlette + an asyncpg pool + orjson."""
    import asyncpg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    pool: list[Any] = []
    query = (
        "SELECT id::text, first_name, last_name, email FROM people WHERE source_id = $1 "
        "ORDER BY id LIMIT 100"
    )

    async def people(request: Request) -> Response:
        if not pool:
            pool.append(await asyncpg.create_pool(dsn, min_size=10, max_size=10))
        rows = await pool[0].fetch(query, source)
        nodes = [{"id": r[0], "firstName": r[1], "lastName": r[2], "email": r[3]} for r in rows]
        return Response(
            orjson.dumps({"data": {"people": {"nodes": nodes}}}), media_type="application/json"
        )

    return Starlette(routes=[Route("/graphql", people, methods=["POST"])])


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Where each server and wrk run: `taskset` prefixes (empty: anywhere).
SERVER_CPU: list[str] = []
WRK_CPUS: list[str] = []


def _pin(unpinned: bool) -> str:
    """Each server on one core (the last) and wrk on the others, as the issue measured: on a
    machine with several, a server's SQLite threads would otherwise run beside its event loop
    on another core, and the floor's ten threads contend for the GIL across cores (on a
    2-core VM it served 390 req/s at ten connections, 980 at one)."""
    cores = os.cpu_count() or 1
    taskset = shutil.which("taskset")
    if unpinned or cores < 2 or taskset is None:
        return "unpinned"
    SERVER_CPU[:] = [taskset, "-c", str(cores - 1)]
    WRK_CPUS[:] = [taskset, "-c", f"0-{cores - 2}"]
    return f"each server on core {cores - 1}, wrk on cores 0-{cores - 2}"


def _start(
    app: str, env: dict[str, str], factory: bool, log: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `app` under uvicorn (its standard error appended to `log`, when given)."""
    port = _port()
    command = [
        *SERVER_CPU,
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--log-level",
        "error",
    ]
    if factory:
        command.append("--factory")
    stderr = log.open("ab") if log is not None else None
    try:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            cwd=Path(__file__).resolve().parent.parent,
            stderr=stderr,
        )
    finally:
        if stderr is not None:
            stderr.close()  # the server has its own copy
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
            [*WRK_CPUS, WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", handle.name, url],
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


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user and system, all threads) the process `pid` has used so far; None where
    /proc is not there to say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.3f}" if floor > 0 and value > 0 else "n/a"


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
    parser.add_argument(
        "--unpinned", action="store_true", help="let the servers and wrk run on any core"
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the gateways' GATEWAY_LOG_LEVEL (INFO, the default of a deployment, writes an "
        "access line per request, into a file); WARNING (here the default) writes none, as the "
        "floor",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a PostgreSQL server's maintenance database URL: run on a new database there",
    )
    args = parser.parse_args()
    placement = _pin(args.unpinned)
    if not Path(WRK).exists():
        sys.exit("wrk is not installed")
    directory = Path(tempfile.mkdtemp(prefix="gateway-compiled-"))
    db = directory / "gateway.db"
    url = f"sqlite+aiosqlite:///{db}"
    database = None
    if args.postgres:
        database = f"gw_bench_{os.getpid()}"
        _admin(args.postgres, f'CREATE DATABASE "{database}"')
        url = _with_database(args.postgres, database)
    try:
        _run(args, url, db, placement)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if database is not None:
            _admin(args.postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _with_database(url: str, database: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).set(database=database).render_as_string(hide_password=False)


def _admin(url: str, statement: str) -> None:
    """Run one statement outside a transaction on the server of `url`."""
    import asyncpg
    import sqlalchemy as sa

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _source(url: str, db: Path) -> str:
    """The demo source's id."""
    if url.startswith("sqlite"):
        with sqlite3.connect(db) as conn:
            return str(conn.execute("SELECT source_id FROM people LIMIT 1").fetchone()[0])
    import asyncpg
    import sqlalchemy as sa

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def read() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return str(await conn.fetchval("SELECT source_id FROM people LIMIT 1"))
        finally:
            await conn.close()

    return asyncio.run(read())


def _run(args: argparse.Namespace, url: str, db: Path, placement: str) -> None:
    tokens = asyncio.run(_load(url, args.people))
    source = _source(url, db)
    if url.startswith("sqlite"):
        floor_env = {"GATEWAY_FLOOR_DB": str(db), "GATEWAY_FLOOR_SOURCE": source}
    else:
        import sqlalchemy as sa

        dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        floor_env = {"GATEWAY_FLOOR_PG": dsn, "GATEWAY_FLOOR_SOURCE": source}
    common = {
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
        "GATEWAY_RATE_LIMIT_BURST": "1000000",
        "GATEWAY_MAX_COST": "100000000",
        "GATEWAY_LOG_LEVEL": args.log_level,
    }
    # At INFO every request writes its access line, to a file here as a server would (the
    # floor writes none).
    log = db.parent / "gateway.log" if args.log_level.upper() in ("INFO", "DEBUG") else None
    servers = {
        "floor": _start("benchmarks.compiled:floor_app", floor_env, factory=True),
        "resolvers": _start(
            "gateway.app:create_app",
            {**common, "GATEWAY_EXECUTION": "resolvers"},
            factory=True,
            log=log,
        ),
        "compiled": _start(
            "gateway.app:create_app", {**common, "GATEWAY_EXECUTION": "auto"}, factory=True, log=log
        ),
    }
    try:
        results: dict[tuple[str, str, str], list[float]] = {}
        cpu: dict[tuple[str, str, str], list[float]] = {}  # CPU µs per request
        for _ in range(args.rounds):
            for name, query in QUERIES.items():
                for scope, kind in TOKENS.items():
                    for server, (process, server_url) in servers.items():
                        before = _cpu_seconds(process.pid)
                        rate = _wrk(server_url, query, tokens[kind], args.connections, args.seconds)
                        after = _cpu_seconds(process.pid)
                        results.setdefault((scope, name, server), []).append(rate)
                        if before is not None and after is not None and rate > 0:
                            spent = (after - before) / (rate * args.seconds) * 1e6
                            cpu.setdefault((scope, name, server), []).append(spent)
        engine = "PostgreSQL" if args.postgres else "SQLite"
        print(
            f"{engine}, demo people={args.people}, wrk -t1 -c{args.connections} "
            f"-d{args.seconds}s, {placement}, gateway log level {args.log_level}"
        )
        print(
            f"median of {args.rounds} interleaved rounds (req/s); each ratio is the median of "
            "the rounds' ratios to the floor run just before (this machine's speed drifts)\n"
        )
        print("| scope | request | floor | resolvers | x | compiled | x | compiled/resolvers |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")

        def ratio(scope: str, name: str, server: str, base: tuple[str, str, str]) -> str:
            pairs = zip(results[(scope, name, server)], results[base], strict=True)
            return _ratio(statistics.median(a / b if b > 0 else 0.0 for a, b in pairs), 1.0)

        for scope in TOKENS:
            for name in QUERIES:
                floor = (scope, name, "floor")
                res, com = (
                    statistics.median(results[(scope, name, s)]) for s in ("resolvers", "compiled")
                )
                print(
                    f"| {scope} | {name} | {statistics.median(results[floor]):,.0f} | "
                    f"{res:,.0f} | {ratio(scope, name, 'resolvers', floor)} | {com:,.0f} | "
                    f"{ratio(scope, name, 'compiled', floor)} | "
                    f"{ratio(scope, name, 'compiled', (scope, name, 'resolvers'))} |"
                )
        print("\nSELECTED against ALL, compiled, each round's pair run one after the other:")
        for name in QUERIES:
            print(f"- {name}: {ratio('SELECTED', name, 'compiled', ('ALL', name, 'compiled'))}")
        if cpu:
            _print_cpu(cpu)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=10)


def _print_cpu(cpu: dict[tuple[str, str, str], list[float]]) -> None:
    """The servers' CPU time per request (median of the rounds): what a request costs the
    server itself, which other work on the machine moves less than it moves req/s. A ratio is
    the floor's cost over the server's (comparable to "x floor" above), or ALL's over
    SELECTED's."""

    def us(key: tuple[str, str, str]) -> float:
        """The median, or 0 for a server that answered nothing in time (three levels through
        the resolvers can take longer than a run)."""
        return statistics.median(cpu[key]) if key in cpu else 0.0

    print("\nCPU µs per request of each server process (median of the rounds):\n")
    print("| scope | request | floor | resolvers | compiled | floor/compiled |")
    print("|---|---|---:|---:|---:|---:|")
    for scope in TOKENS:
        for name in QUERIES:
            floor, res, com = (us((scope, name, s)) for s in ("floor", "resolvers", "compiled"))
            shown = [f"{value:,.0f}" if value > 0 else "n/a" for value in (floor, res, com)]
            print(f"| {scope} | {name} | {' | '.join(shown)} | {_ratio(floor, com)} |")
    print("\nALL's CPU per request over SELECTED's, compiled:")
    for name in QUERIES:
        print(
            f"- {name}: {_ratio(us(('ALL', name, 'compiled')), us(('SELECTED', name, 'compiled')))}"
        )


if __name__ == "__main__":
    main()
