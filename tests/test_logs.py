"""Structured logs (gateway.logs) and error masking: JSON lines with the request id, one access
line per request, unexpected errors logged with their stack, never a token."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import queries
from gateway.graph import view
from gateway.logs import JsonFormatter, redact
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
    with LiveServer(Settings(database_url=url)) as server:
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

    monkeypatch.setattr(view, "load_grant", broken)
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
