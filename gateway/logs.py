"""Structured logs: one JSON object per line, and one access line per HTTP request.

Every line carries the request id when there is one, so a client quoting the id of an
INTERNAL_SERVER_ERROR leads to the stack. The access line adds the method, path (never the
query string), status, duration, integration id and operation name and type. No token is ever
put in a record; as a second line of defence anything shaped like `Bearer <token>` in a
message or stack is replaced by `Bearer [redacted]`. Every field, message and stack is cut to
a bound, and the engine hides SQL parameters (`db.create_engine`), so a request cannot fill
the log with what it sent.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from graphql import get_operation_ast
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

access_log = logging.getLogger("gateway.access")

# Extra attributes of a record that become fields of its JSON line, in this order.
FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "integration_id",
    "operation_name",
    "operation_type",
    "execution",
    "client",
)
QUIET_PATHS = frozenset({"/healthz", "/readyz"})
# The key of a request's state set when its client went away before the app could answer
# (logged with status 499, nginx's "client closed request", not as the server's 500).
CLIENT_GONE = "client_gone"
# A caller controls much of what is logged (operation name, path, messages that quote its
# input), so every part of a line has a bound: 900 KB of operationName must not be 900 KB of log.
MAX_FIELD_CHARS = 256
MAX_MESSAGE_CHARS = 4096
MAX_STACK_CHARS = 16384
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")


def redact(text: str) -> str:
    """`text` with every bearer credential replaced."""
    return _BEARER.sub(r"\1 [redacted]", text)


def bounded(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, known extras, stack."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": bounded(redact(record.getMessage()), MAX_MESSAGE_CHARS),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str):
                line[name] = bounded(value, MAX_FIELD_CHARS)
            elif value is not None:
                line[name] = value
        if record.exc_info:
            line["stack"] = bounded(redact(self.formatException(record.exc_info)), MAX_STACK_CHARS)
        return _json_line(line)


def _json_line(line: dict[str, Any]) -> str:
    """`line` as compact JSON, by orjson: the standard library's encoder took a quarter of the
    time of an access line, which every request writes at the default level (INFO). Values it
    cannot write (an integer past 64 bits) take the standard library's way."""
    try:
        return orjson.dumps(line, default=str).decode("utf-8")
    except TypeError:
        return json.dumps(line, ensure_ascii=False, default=str)


class _JsonHandler(logging.Handler):
    """Writes JSON lines to whatever `sys.stderr` is when a record comes (test runners and
    servers swap it), one write per line."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure_logging(level: str) -> None:
    """Write the `gateway.*` loggers' records to standard error as JSON lines, at `level`.

    Idempotent: creating several apps in one process installs one handler.
    """
    logger = logging.getLogger("gateway")
    logger.setLevel(level.upper())
    if not any(isinstance(handler, _JsonHandler) for handler in logger.handlers):
        logger.addHandler(_JsonHandler())


class AccessLogMiddleware:
    """Logs one line per HTTP request, just before the last byte of its response is sent (or
    when the request failed without one).

    What the view learnt (integration id, operation) is read from the request's state.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None  # until the response starts
        logged = False

        def log_once() -> None:
            nonlocal logged, status
            if logged:
                return
            logged = True
            level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
            if not access_log.isEnabledFor(level):
                return  # no record to build
            state = scope.get("state") or {}
            if status is None:
                status = 499 if state.get(CLIENT_GONE) else 500
            client = scope.get("client")
            # The record is made here and handed to the logger's handlers (`Logger.handle`, as
            # for a record made elsewhere): `Logger.log` would also look up the calling frame,
            # for a file name and line that an access line has no use for.
            record = access_log.makeRecord(
                access_log.name,
                level,
                __file__,
                0,
                "%s %s %s",
                (scope["method"], scope["path"], status),
                None,
                "access",
                extra={
                    "request_id": state.get("request_id"),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "integration_id": state.get("integration_id"),
                    "operation_name": state.get("operation_name"),
                    "operation_type": state.get("operation_type"),
                    "execution": state.get("execution"),
                    "client": client[0] if client else None,
                },
            )
            access_log.handle(record)

        async def send_and_log(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                log_once()
            await send(message)

        try:
            await self.app(scope, receive, send_and_log)
        finally:
            log_once()


class OperationLog(SchemaExtension):
    """Notes the executed operation's name and type on the request, for its access line."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        request = getattr(execution.context, "request", None)
        document = execution.graphql_document
        if request is not None and document is not None:
            operation = get_operation_ast(document, execution.operation_name)
            if operation is not None:
                request.state.operation_name = operation.name.value if operation.name else None
                request.state.operation_type = operation.operation.value
        yield
