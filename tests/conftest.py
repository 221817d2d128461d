"""Shared fixtures: a real SQLite file per test and a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import engine_for
from gateway.settings import Settings

T = TypeVar("T")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite file for this test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


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
        from gateway.app import create_app

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the property and fuzz tests measured."""
    from tests.reporting import SUMMARY

    for line in SUMMARY:
        terminalreporter.write_line(line)
