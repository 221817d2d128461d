"""Shared fixtures: a real database per test (a SQLite file, or a fresh PostgreSQL database when
GATEWAY_TEST_POSTGRES_URL is set) and a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.db import engine_for
from gateway.settings import Settings

T = TypeVar("T")

# A PostgreSQL server the tests may create and drop databases on (`bash .ci/postgres.sh` starts
# one and prints this URL), e.g. postgresql+asyncpg://gateway:gateway@127.0.0.1:55432/postgres.
POSTGRES_URL_VARIABLE = "GATEWAY_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_URL_VARIABLE) or None

# Parametrize a fixture with these to run its tests on both engines (ids `sqlite`, `postgres`).
ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=pytest.mark.skipif(
            POSTGRES_URL is None,
            reason=f"{POSTGRES_URL_VARIABLE} is not set (`bash .ci/postgres.sh` starts a server "
            "and prints the URL to export)",
        ),
    ),
]


def _run_admin(statement: str) -> None:
    """Run one statement outside a transaction on the server's maintenance database."""
    assert POSTGRES_URL is not None

    async def runner() -> None:
        engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(statement))
        finally:
            await engine.dispose()

    asyncio.run(runner())


@contextmanager
def fresh_database(engine: str, directory: Path, label: str = "test") -> Iterator[str]:
    """The URL of a new, empty database for `engine` (`sqlite` or `postgres`), removed on exit.

    SQLite: a file in `directory`. PostgreSQL: a database with a unique name on the server of
    GATEWAY_TEST_POSTGRES_URL, dropped on exit even while connections to it remain open.
    """
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'gateway.db'}"
        return
    if engine != "postgres":
        raise ValueError(f"unknown engine {engine!r}")
    if POSTGRES_URL is None:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:30]
    name = f"gw_{slug}_{uuid.uuid4().hex[:12]}"
    _run_admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE (PostgreSQL 13+) ends the sessions a test left behind instead of failing.
        _run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite file for this test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture(params=ENGINES)
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for this test, once per engine (`sqlite`, and `postgres` when set)."""
    with fresh_database(request.param, tmp_path, request.node.name) as url:
        yield url


def run_db(url: str, body: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `body(engine)` against the database at `url` (schema created when missing)."""

    async def runner() -> T:
        async with engine_for(url) as engine:
            return await body(engine)

    return asyncio.run(runner())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A uvicorn server in a background thread, serving `create_app(settings)`."""

    def __init__(self, settings: Settings) -> None:
        from gateway.app import create_app, proxy_options

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            **proxy_options(settings),  # as `gateway serve` runs it
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def graphql(
        self, query: str, token: str | None = None, variables: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST a GraphQL operation; return the HTTP status and the JSON body."""
        with self.client(token) as http:
            response = http.post("/graphql", json={"query": query, "variables": variables or {}})
        return response.status_code, response.json()

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client for this server, sending `token` as a Bearer token when given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


@pytest.fixture
def live_server(db_url: str) -> Callable[..., LiveServer]:
    """A factory: `with live_server(**setting_overrides) as server:` serves the test's database."""

    def make(**overrides: Any) -> LiveServer:
        return LiveServer(Settings(database_url=db_url, **overrides))

    return make


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> Iterator[LiveServer]:
    """A running server on this test's database with default settings."""
    with live_server() as running:
        yield running


@contextlib.contextmanager
def recorded_statements(server: LiveServer) -> Iterator[list[str]]:
    """Every SQL statement the server's engine runs while the block is open."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = server.app.state.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the property and fuzz tests measured."""
    from tests.reporting import SUMMARY

    for line in SUMMARY:
        terminalreporter.write_line(line)
