"""Structured logs (gateway.logs) and error masking: JSON lines with the request id, one access
line per request, unexpected errors logged with their stack, never a token."""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import queries
from gateway.graph import view
from gateway.logs import (
    MAX_FIELD_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_STACK_CHARS,
    JsonFormatter,
    redact,
)
from gateway.settings import Settings
from tests.conftest import LiveServer, run_db
from tests.factories import make_integration, make_source


@dataclass
class Api:
    server: LiveServer
    token: str


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('logs') / 'gateway.db'}"

    async def build(engine: AsyncEngine) -> str:
        graph = await make_source(engine, 13, "Logs", people=10, enrollments=10)
        return await make_integration(engine, graph.source.id)

    token = run_db(url, build)
    # resolver internals are patched below, which the compiled path would skip
    with LiveServer(Settings(database_url=url, execution="resolvers")) as server:
        yield Api(server, token)


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in caplog.records]


def test_a_record_is_one_json_object_with_its_extras_and_stack() -> None:
    try:
        raise ValueError("Bearer abcdefghijklmnop was in the message")
    except ValueError:
        record = logging.LogRecord(
            "gateway.test", logging.ERROR, __file__, 1, "failed for %s", ("x",), sys.exc_info()
        )
    record.request_id = "r-1"
    record.status = 500
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "ERROR"
    assert line["logger"] == "gateway.test"
    assert line["message"] == "failed for x"
    assert line["request_id"] == "r-1"
    assert line["status"] == 500
    assert "ValueError" in line["stack"]
    assert "abcdefghijklmnop" not in line["stack"]
    assert "Bearer [redacted]" in line["stack"]
    assert line["time"].endswith("+00:00")


def test_a_record_is_written_compactly_and_a_value_orjson_refuses_the_standard_way() -> None:
    """The line is orjson's compact JSON, with text as it is (no escapes of non-ASCII) and any
    other object as its text; an integer past 64 bits, which orjson refuses, is written by the
    standard library's encoder instead of losing the line."""
    record = logging.LogRecord("gateway.test", logging.INFO, __file__, 1, "für %s", ("ü",), None)
    record.operation_name = "Émile"
    record.client = uuid.UUID(int=1)  # not a str: written as its text
    text = JsonFormatter().format(record)
    assert text.startswith('{"time":"')
    assert '"message":"für ü"' in text
    assert json.loads(text)["client"] == "00000000-0000-0000-0000-000000000001"
    assert json.loads(text)["operation_name"] == "Émile"
    record.status = 2**70
    assert json.loads(JsonFormatter().format(record))["status"] == 2**70


def test_the_access_line_goes_through_the_access_loggers_filters_and_handlers(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """The access record is made by the middleware and handed to the logger (`Logger.handle`):
    a filter on `gateway.access` still sees and can drop it, and a kept one names its maker."""
    access = logging.getLogger("gateway.access")
    dropped: list[str] = []

    def drop_health(record: logging.LogRecord) -> bool:
        if record.__dict__.get("path") == "/healthz":
            dropped.append(record.getMessage())
            return False
        return True

    access.addFilter(drop_health)
    try:
        with caplog.at_level(logging.DEBUG, logger="gateway.access"), api.server.client() as http:
            http.get("/healthz")
            http.post("/graphql", content=b"{", headers={"Content-Type": "application/json"})
    finally:
        access.removeFilter(drop_health)
    kept = [r for r in caplog.records if r.name == "gateway.access"]
    assert dropped == ["GET /healthz 200"]
    assert [r.getMessage() for r in kept] == ["POST /graphql 400"]
    assert kept[0].funcName == "access"
    assert kept[0].filename == "logs.py"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.DEF-123_~+/==", "Authorization: Bearer [redacted]"),
        ("bearer   tok", "bearer [redacted]"),
        ("no credentials here", "no credentials here"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_each_request_has_one_access_line(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gateway"), api.server.client(api.token) as http:
        response = http.post(
            "/graphql",
            json={"query": "query Roster { schools { totalCount } }"},
            headers={"X-Request-ID": "trace-123"},
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-123"
    (access,) = [line for line in lines(caplog) if line["logger"] == "gateway.access"]
    assert access["request_id"] == "trace-123"
    assert access["method"] == "POST"
    assert access["path"] == "/graphql"
    assert access["status"] == 200
    assert access["operation_name"] == "Roster"
    assert access["operation_type"] == "query"
    assert isinstance(access["duration_ms"], float)
    assert len(access["integration_id"]) == 36
    assert api.token not in json.dumps(lines(caplog))


def test_a_refused_request_is_logged_too(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gateway"), api.server.client() as http:
        http.post("/graphql", content=b"{", headers={"Content-Type": "application/json"})
    (access,) = [line for line in lines(caplog) if line["logger"] == "gateway.access"]
    assert access["status"] == 400
    assert "integration_id" not in access


def test_a_client_gone_before_its_body_is_logged_499_not_as_an_error(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that promises more body than it sends and hangs up is no server error: no
    ERROR record, no stack, and its access line says 499 (found by a review: it was a 500
    with a ClientDisconnect traceback, which anyone could cause)."""
    body = b'{"query": "{ schools { totalCount } }"}'
    head = (
        "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {api.token}\r\nContent-Length: {len(body) + 10}\r\n\r\n"
    )
    with caplog.at_level(logging.INFO, logger="gateway"):
        with socket.create_connection(("127.0.0.1", api.server.port)) as client:
            client.sendall(head.encode() + body)
            time.sleep(0.2)  # the server waits for the rest
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            access = [line for line in lines(caplog) if line["logger"] == "gateway.access"]
            if access:
                break
            time.sleep(0.02)
    assert [line["status"] for line in access] == [499]
    assert not [line for line in lines(caplog) if line["level"] in ("ERROR", "CRITICAL")]
    assert api.token not in json.dumps(lines(caplog))


def test_an_unexpected_resolver_error_is_masked_and_logged_with_its_stack(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"database exploded while serving Bearer {api.token}")

    monkeypatch.setattr(queries, "fetch_page", broken)
    with caplog.at_level(logging.INFO, logger="gateway"), api.server.client(api.token) as http:
        response = http.post("/graphql", json={"query": "{ schools { nodes { id } } }"})
    request_id = response.headers["x-request-id"]
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert request_id in error["message"]
    assert "exploded" not in json.dumps(response.json())
    logged = [line for line in lines(caplog) if line["level"] == "ERROR"]
    assert len(logged) == 1
    assert logged[0]["request_id"] == request_id
    assert "RuntimeError: database exploded" in logged[0]["stack"]
    assert api.token not in json.dumps(lines(caplog))


def test_an_unexpected_error_outside_graphql_is_a_coded_500(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the token table is gone")

    monkeypatch.setattr(view, "grant_and_clean", broken)
    with caplog.at_level(logging.INFO, logger="gateway"), api.server.client(api.token) as http:
        response = http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Accept": "application/graphql-response+json"},
        )
    request_id = response.headers["x-request-id"]
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    (logged,) = [line for line in lines(caplog) if line["level"] == "ERROR"]
    assert logged["request_id"] == request_id
    assert "the token table is gone" in logged["stack"]
    (access,) = [line for line in lines(caplog) if line["logger"] == "gateway.access"]
    assert access["status"] == 500
    assert api.token not in json.dumps(lines(caplog))


# ---------------------------------------------------------------- bounded by what a caller sends


def test_a_huge_operation_name_without_a_token_is_logged_bounded(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    name = "Op" + "x" * 900_000
    with caplog.at_level(logging.INFO, logger="gateway"), api.server.client() as http:
        response = http.post(
            "/graphql", json={"query": "{ schools { totalCount } }", "operationName": name}
        )
    assert response.status_code in (400, 401)
    (access,) = [line for line in lines(caplog) if line["logger"] == "gateway.access"]
    assert access["operation_name"].startswith("Opxxx")
    assert len(access["operation_name"]) <= MAX_FIELD_CHARS + 40
    assert "more characters" in access["operation_name"]
    assert max(len(JsonFormatter().format(r)) for r in caplog.records) < 4 * MAX_FIELD_CHARS


def test_every_field_message_and_stack_of_a_record_is_bounded() -> None:
    try:
        raise ValueError("v" * 100_000)
    except ValueError:
        record = logging.LogRecord(
            "gateway.test", logging.ERROR, __file__, 1, "m%s", ("m" * 100_000,), sys.exc_info()
        )
    record.operation_name = "o" * 100_000
    record.path = "/" + "p" * 100_000
    line = json.loads(JsonFormatter().format(record))
    assert len(line["operation_name"]) <= MAX_FIELD_CHARS + 40
    assert len(line["path"]) <= MAX_FIELD_CHARS + 40
    assert len(line["message"]) <= MAX_MESSAGE_CHARS + 40
    assert len(line["stack"]) <= MAX_STACK_CHARS + 40
    assert line["stack"].startswith("Traceback")
    assert line["stack"].endswith("more characters]")


def test_a_database_error_is_logged_without_its_parameters_and_bounded(
    live_server: Callable[..., LiveServer], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def build(engine: AsyncEngine) -> str:
        graph = await make_source(engine, 14, "Broken", people=5, enrollments=5)
        return await make_integration(engine, graph.source.id)

    async def break_people(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            # A real database error: the statement names a table that is no longer there.
            await conn.exec_driver_sql("ALTER TABLE people RENAME TO people_gone")

    token = run_db(db_url, build)
    secret = "needle-" + "s" * 900
    ids = [str(uuid.UUID(int=n)) for n in range(1, 201)]
    query = (
        "query($s: String!, $ids: [ID!]) "
        "{ people(filter: {ids: $ids, lastName: {contains: $s}}) { totalCount } }"
    )
    with live_server() as server, caplog.at_level(logging.INFO, logger="gateway"):
        run_db(db_url, break_people)
        with server.client(token) as http:
            response = http.post(
                "/graphql", json={"query": query, "variables": {"s": secret, "ids": ids}}
            )
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    (logged,) = [line for line in lines(caplog) if line["level"] == "ERROR"]
    assert "no such table" in logged["stack"]
    assert "needle-" not in logged["stack"]
    formatted = [JsonFormatter().format(r) for r in caplog.records]
    assert "needle-" not in "".join(formatted)
    assert ids[-1] not in "".join(formatted)
    assert max(len(line) for line in formatted) < MAX_STACK_CHARS + MAX_MESSAGE_CHARS + 2000
