"""Errors the gateway raises on purpose, each with a machine code (DESIGN §5).

    GatewayError                      code, HTTP status, extensions
     ├── Unauthenticated              UNAUTHENTICATED            401
     ├── InvalidIntegrationState      INVALID_INTEGRATION_STATE  403
     ├── Forbidden                    FORBIDDEN                  200 (field-level)
     ├── BadUserInput                 BAD_USER_INPUT             200 / 400
     ├── QueryTooComplex              QUERY_TOO_COMPLEX          400
     │    └── RequestTimeout          (GATEWAY_REQUEST_TIMEOUT_SECONDS passed)
     ├── RateLimited                  RATE_LIMITED               429
     └── InternalServerError          INTERNAL_SERVER_ERROR      500 (masked)

Apollo's automatic persisted queries add PERSISTED_QUERY_NOT_FOUND and
PERSISTED_QUERY_NOT_SUPPORTED (HTTP 200, the answers Apollo clients act on;
`gateway.graph.persisted`).

Anything else that escapes a resolver is masked as INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    """The allow-listed values of `extensions.code`."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_INTEGRATION_STATE = "INVALID_INTEGRATION_STATE"
    FORBIDDEN = "FORBIDDEN"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"


class GatewayError(Exception):
    """An error whose message is safe to show to the client."""

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR
    http_status: int = 200

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": str(self.code), **extensions}


class Unauthenticated(GatewayError):
    """No usable access token."""

    code = ErrorCode.UNAUTHENTICATED
    http_status = 401


class InvalidIntegrationState(GatewayError):
    """The integration exists but may not read graph data now."""

    code = ErrorCode.INVALID_INTEGRATION_STATE
    http_status = 403


class Forbidden(GatewayError):
    """A field the integration's permissions do not cover."""

    code = ErrorCode.FORBIDDEN


class BadUserInput(GatewayError):
    """An argument the client can fix: an id, a cursor, a page size, a filter."""

    code = ErrorCode.BAD_USER_INPUT


class QueryTooComplex(GatewayError):
    """The operation exceeds one of the configured limits."""

    code = ErrorCode.QUERY_TOO_COMPLEX
    http_status = 400


class RequestTimeout(QueryTooComplex):
    """The request ran past its deadline (GATEWAY_REQUEST_TIMEOUT_SECONDS)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The request ran longer than {seconds:g} s, the limit "
            "(GATEWAY_REQUEST_TIMEOUT_SECONDS); ask for smaller pages, fewer nested connections "
            "or shorter filter lists.",
            limit="requestTimeout",
            maximum=seconds,
        )


class RateLimited(GatewayError):
    """The token sent more requests than its bucket allows."""

    code = ErrorCode.RATE_LIMITED
    http_status = 429


class ValidationFailed(ValueError):
    """Bad input to a command or an admin mutation; the message names the value and the fix.

    Where the fix depends on the door the caller came through (a command to run, a query to
    send), `cli_hint` and `api_hint` say it in the words of each; `str()` is the bare message.
    """

    def __init__(
        self, message: str, *, cli_hint: str | None = None, api_hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.cli_hint = cli_hint
        self.api_hint = api_hint

    def for_cli(self) -> str:
        """The message as the command line prints it."""
        return str(self) if self.cli_hint is None else f"{self}; {self.cli_hint}"

    def for_api(self) -> str:
        """The message as the admin API returns it."""
        return str(self) if self.api_hint is None else f"{self}; {self.api_hint}"
