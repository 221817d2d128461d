"""Graph API throughput against a raw baseline, in one process (a benchmark, not a test).

Loads the demo (`--people`, default 2000) into a temporary SQLite file and, for each query,
times the gateway (`create_app`, through its ASGI stack: gate, Strawberry, loaders) and a raw
Starlette endpoint that runs the same scoped SQL (`gateway.queries`) and writes the JSON by
hand. It prints milliseconds per request and the ratio gateway/baseline; the two run
interleaved in the same minute, so the ratio holds on a noisy machine where the absolute
numbers do not.

    .venv/bin/python benchmarks/graph_api.py [--people 2000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import queries
from gateway.access.authentication import load_grant
from gateway.app import create_app
from gateway.db import engine_for
from gateway.demo import load_demo
from gateway.relations import (
    CLASS_ENROLLMENTS,
    CLASS_SCHOOL,
    PERSON_CLASSES,
    PERSON_ENROLLMENTS,
    SCHOOL_CLASSES,
    TABLES,
)
from gateway.request_db import RequestDB
from gateway.settings import Settings

DEFAULT_GC = (700, 10, 10)  # CPython's own thresholds

PEOPLE_4 = "{ people(first: 100) { nodes { id firstName lastName email } } }"
CLASSES_NESTED = "{ classes(first: 100) { nodes { id name school { id name } } } }"
THREE_LEVELS = (
    "{ schools(first: 4) { nodes { id name classes(first: 25) { nodes { id name "
    "enrollments(first: 30) { nodes { id role person { id displayName } } } } } } } }"
)


PEOPLE_1000_NESTED = (
    "{ people(first: 1000) { nodes { id enrollments(first: 20) { nodes { id role state "
    "class { id name } } } classes(first: 20) { nodes { id name school { name } } } } } }"
)


def baseline_app(url: str) -> Starlette:
    """Raw endpoints running the same scoped SQL as the gateway, JSON written by hand."""
    from gateway.db import create_engine

    engine = create_engine(url)

    async def grant_of(request: Request, db: RequestDB) -> Any:
        token = request.headers["authorization"].split(" ")[1]
        return await load_grant(await db.connection(), token)

    async def people(request: Request) -> Response:
        db = RequestDB(engine)
        try:
            grant = await grant_of(request, db)
            rows = await queries.fetch_page(db, grant, TABLES["Person"], [], 100, None)
            nodes = [
                {"id": r.id, "firstName": r.first_name, "lastName": r.last_name, "email": r.email}
                for r in rows[:100]
            ]
        finally:
            await db.close()
        return Response(orjson.dumps({"data": {"people": {"nodes": nodes}}}))

    async def classes(request: Request) -> Response:
        db = RequestDB(engine)
        try:
            grant = await grant_of(request, db)
            rows = (await queries.fetch_page(db, grant, TABLES["Class"], [], 100, None))[:100]
            schools = await queries.fetch_by_ids(
                db, grant, CLASS_SCHOOL.table, [r.school_id for r in rows]
            )
            nodes = [
                {"id": r.id, "name": r.name,
                 "school": {"id": r.school_id, "name": schools[r.school_id].name}}
                for r in rows
            ]  # fmt: skip
        finally:
            await db.close()
        return Response(orjson.dumps({"data": {"classes": {"nodes": nodes}}}))

    async def three_levels(request: Request) -> Response:
        db = RequestDB(engine)
        try:
            grant = await grant_of(request, db)
            schools = (await queries.fetch_page(db, grant, TABLES["School"], [], 4, None))[:4]
            classes = await queries.fetch_edge_pages(
                db, grant, SCHOOL_CLASSES, [s.id for s in schools], [], 25, None
            )
            class_ids = [c.id for page in classes.values() for c in page[:25]]
            enrollments = await queries.fetch_edge_pages(
                db, grant, CLASS_ENROLLMENTS, class_ids, [], 30, None
            )
            person_ids = [e.person_id for page in enrollments.values() for e in page[:30]]
            people = await queries.fetch_by_ids(db, grant, TABLES["Person"], person_ids)
            nodes = [
                {"id": s.id, "name": s.name, "classes": {"nodes": [
                    {"id": c.id, "name": c.name, "enrollments": {"nodes": [
                        {"id": e.id, "role": e.role, "person": {
                            "id": e.person_id, "displayName": people[e.person_id].display_name}}
                        for e in enrollments.get(c.id, [])[:30]
                    ]}}
                    for c in classes.get(s.id, [])[:25]
                ]}}
                for s in schools
            ]  # fmt: skip
        finally:
            await db.close()
        return Response(orjson.dumps({"data": {"schools": {"nodes": nodes}}}))

    async def people_nested(request: Request) -> Response:
        db = RequestDB(engine)
        try:
            grant = await grant_of(request, db)
            people = (await queries.fetch_page(db, grant, TABLES["Person"], [], 1000, None))[:1000]
            ids = [p.id for p in people]
            enrollments = await queries.fetch_edge_pages(
                db, grant, PERSON_ENROLLMENTS, ids, [], 20, None
            )
            classes = await queries.fetch_edge_pages(db, grant, PERSON_CLASSES, ids, [], 20, None)
            class_ids = [e.class_id for page in enrollments.values() for e in page[:20]]
            enrolled_in = await queries.fetch_by_ids(db, grant, TABLES["Class"], class_ids)
            school_ids = [c.school_id for page in classes.values() for c in page[:20]]
            schools = await queries.fetch_by_ids(db, grant, TABLES["School"], school_ids)
            nodes = [
                {"id": p.id,
                 "enrollments": {"nodes": [
                     {"id": e.id, "role": e.role, "state": e.state, "class": {
                         "id": e.class_id, "name": enrolled_in[e.class_id].name}}
                     for e in enrollments.get(p.id, [])[:20]
                 ]},
                 "classes": {"nodes": [
                     {"id": c.id, "name": c.name, "school": {"name": schools[c.school_id].name}}
                     for c in classes.get(p.id, [])[:20]
                 ]}}
                for p in people
            ]  # fmt: skip
        finally:
            await db.close()
        return Response(orjson.dumps({"data": {"people": {"nodes": nodes}}}))

    return Starlette(
        routes=[
            Route("/people", people),
            Route("/classes", classes),
            Route("/three-levels", three_levels),
            Route("/people-nested", people_nested),
        ]
    )


async def timed(call: Callable[[], Awaitable[httpx.Response]], rounds: int) -> list[float]:
    """Milliseconds of each of `rounds` calls (after two warm-up calls)."""
    for _ in range(2):
        (await call()).raise_for_status()
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = await call()
        out.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return out


async def main(people: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    async with engine_for(url) as engine:
        demo = await load_demo(engine, people=people)
    token = next(i.token for i in demo.integrations if i.name == "all")
    headers = {"Authorization": f"Bearer {token}"}
    settings = Settings(database_url=url, max_cost=10**9)
    gateway = create_app(settings)
    baseline = baseline_app(url)
    async with (
        gateway.router.lifespan_context(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://g") as g,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=baseline), base_url="http://b") as b,
    ):

        def gql(query: str) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: g.post("/graphql", json={"query": query}, headers=headers)

        def raw(path: str) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: b.get(path, headers=headers)

        cases: list[tuple[str, Callable[[], Awaitable[httpx.Response]], Any]] = [
            ("100 people x 4 fields", gql(PEOPLE_4), raw("/people")),
            ("100 classes + school", gql(CLASSES_NESTED), raw("/classes")),
            ("3 levels (4x25x30 rows)", gql(THREE_LEVELS), raw("/three-levels")),
            ("1000 people, 2 edges x 20", gql(PEOPLE_1000_NESTED), raw("/people-nested")),
        ]
        print(f"demo: {people} people; {rounds} rounds each; median ms per request")
        print(f"{'query':28} {'gateway':>9} {'baseline':>9} {'ratio':>6}")
        for name, call, base in cases:
            g_ms: list[float] = []
            b_ms: list[float] = []
            for _ in range(3):  # interleave so both see the same machine load
                g_ms += await timed(call, rounds // 3 or 1)
                if base is not None:
                    b_ms += await timed(base, rounds // 3 or 1)
            gm = statistics.median(g_ms)
            if b_ms:
                bm = statistics.median(b_ms)
                print(f"{name:28} {gm:9.2f} {bm:9.2f} {gm / bm:6.1f}")
            else:
                print(f"{name:28} {gm:9.2f} {'-':>9} {'-':>6}")

        # The app paces the garbage collector (gateway.runtime); the same request under
        # CPython's default pace, interleaved with the paced one, shows what that is worth.
        paced = gc.get_threshold()
        nested = gql(PEOPLE_1000_NESTED)
        paced_ms: list[float] = []
        default_ms: list[float] = []
        for _ in range(3):
            paced_ms += await timed(nested, rounds // 6 or 1)
            gc.set_threshold(*DEFAULT_GC)
            default_ms += await timed(nested, rounds // 6 or 1)
            gc.set_threshold(*paced)
        pm, dm = statistics.median(paced_ms), statistics.median(default_ms)
        print(f"{'1000 people, paced gc':28} {pm:9.2f}")
        print(f"{'1000 people, default gc':28} {dm:9.2f} {'':>9} {dm / pm:6.1f}x slower")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=30)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.people, arguments.rounds))
