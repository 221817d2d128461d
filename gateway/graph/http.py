"""GraphQL over HTTP: media types, the request's parameters, status codes, error bodies.

Follows the GraphQL-over-HTTP spec (https://graphql.github.io/graphql-over-http/draft/):

- the response is `application/graphql-response+json` when the client's `Accept` prefers it,
  else `application/json` (also for `*/*`, no `Accept`, or nothing we can produce);
- a request error (parse, validation, variables: no `data`) is 400 under
  `application/graphql-response+json` and has no `data` entry; under `application/json` it is
  200 with `"data": null`, as legacy clients expect;
- QUERY_TOO_COMPLEX is 400 whatever the media type, 401/403 come from the guard, an
  unexpected error before execution is 500;
- a malformed request (body not JSON, wrong parameter types, no query, a batch while batching
  is off: `gateway.graph.batch`) is 400, a mutation over GET 405, a POST body that is not
  `application/json` 415;
- every error, including those no GraphQL execution produced, is a JSON body
  `{"errors": [{"message", "extensions": {"code"}}]}` (413 and 429 come from
  `gateway.middleware` and `gateway.ratelimit`, in the same shape).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from gateway.errors import ErrorCode

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
_JSON_RANGES = frozenset({JSON, "application/*", "*/*"})


class HTTPError(Exception):
    """A request refused before (or instead of) GraphQL execution."""

    def __init__(
        self,
        status: int,
        message: str,
        code: ErrorCode = ErrorCode.BAD_USER_INPUT,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})


def media_ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an `Accept` header, lower-cased, in order, each with its quality
    (`q`; 1 when absent, 0 when unreadable)."""
    ranges = []
    for media_range in accept.split(","):
        media, *parameters = (part.strip() for part in media_range.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return ranges


def negotiate(accept: str | None) -> str:
    """The media type to answer with, for the request's `Accept` header."""
    if not accept:
        return JSON
    best, best_quality = JSON, 0.0
    for media, quality in media_ranges(accept):
        if media == GRAPHQL_RESPONSE_JSON:
            candidate = GRAPHQL_RESPONSE_JSON
        elif media in _JSON_RANGES:
            candidate = JSON
        else:
            continue
        if quality > best_quality:  # the first listed wins a tie
            best, best_quality = candidate, quality
    return best


def content_type(media_type: str) -> str:
    """The `Content-Type` of a response in `media_type` (always UTF-8)."""
    return f"{media_type}; charset=utf-8"


def error_body(message: str, code: ErrorCode, **extensions: Any) -> dict[str, Any]:
    """A GraphQL response holding one request error."""
    return {"errors": [{"message": message, "extensions": {"code": code.value, **extensions}}]}


def error_response(error: HTTPError, media_type: str, request_id: str | None = None) -> Response:
    """`error` as an HTTP response in `media_type`."""
    extensions = dict(error.extensions)
    if request_id is not None and error.code is ErrorCode.INTERNAL_SERVER_ERROR:
        extensions["requestId"] = request_id
    body = error_body(error.message, error.code, **extensions)
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status_code=error.status,
        headers=error.headers,
        media_type=content_type(media_type),
    )


# ---------------------------------------------------------------- reading the request


def require_json_body(content_type_header: str | None) -> None:
    """Refuse (415) a POST whose body is not UTF-8 `application/json`."""
    media, *parameters = (part.strip().lower() for part in (content_type_header or "").split(";"))
    if media != JSON:
        shown = f"`{media}`" if media else "no Content-Type"
        raise HTTPError(
            415,
            f"Unsupported content type: {shown}. POST a JSON body with "
            "`Content-Type: application/json`, or use GET with URL parameters.",
            headers={"Accept-Post": JSON},
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            raise HTTPError(
                415,
                f"Unsupported charset `{value.strip()}`: the body must be UTF-8.",
                headers={"Accept-Post": JSON},
            )


def decode_json(text: str | bytes, what: str) -> Any:
    """`text` parsed as JSON; 400 when it is not JSON (or is not UTF-8, or nests absurdly)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError:
        raise HTTPError(400, f"The {what} is not valid UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise HTTPError(
            400,
            f"The {what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
        ) from None
    except (ValueError, RecursionError):
        raise HTTPError(
            400, f"The {what} is not valid JSON, or nests arrays and objects too deeply to read."
        ) from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _has_lone_surrogate(value: Any) -> bool:
    try:
        orjson.dumps(value)  # fast; refuses lone surrogates, and integers past 64 bits
    except orjson.JSONEncodeError:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False


def request_parameters(data: Any) -> tuple[str | None, dict[str, Any] | None, str | None, Any]:
    """`(query, variables, operationName, extensions)` of a decoded request, checked: 400 for
    a missing or non-string query, or a parameter of the wrong JSON type. The query may be
    missing (None) only when `extensions.persistedQuery` names it (`gateway.graph.persisted`).
    """
    if not isinstance(data, dict):
        raise HTTPError(
            400, f"The request must be a JSON object with a `query`, not {_json_type(data)}."
        )
    extensions = data.get("extensions")
    query = data.get("query")
    if query is None:
        if not (isinstance(extensions, dict) and "persistedQuery" in extensions):
            raise HTTPError(400, "The request has no `query` parameter.")
    elif not isinstance(query, str):
        raise HTTPError(400, f"`query` must be a string, not {_json_type(query)}.")
    elif not query.strip():
        raise HTTPError(400, "`query` is empty.")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise HTTPError(400, f"`variables` must be an object or null, not {_json_type(variables)}.")
    operation_name = data.get("operationName")
    if operation_name == "":  # GraphiQL and some clients send an empty name for "the only one"
        operation_name = None
    if operation_name is not None and not isinstance(operation_name, str):
        raise HTTPError(
            400, f"`operationName` must be a string or null, not {_json_type(operation_name)}."
        )
    if extensions is not None and not isinstance(extensions, dict):
        raise HTTPError(
            400, f"`extensions` must be an object or null, not {_json_type(extensions)}."
        )
    if _has_lone_surrogate(data):
        raise HTTPError(400, "The request contains a lone UTF-16 surrogate, which is not text.")
    return query, variables, operation_name, extensions


def query_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a GET request, with `variables` and `extensions` decoded from JSON."""
    data: dict[str, Any] = dict(params)
    for name in ("variables", "extensions"):
        value = data.get(name)
        if isinstance(value, str) and value:
            data[name] = decode_json(value, f"`{name}` URL parameter")
        elif name in data:
            data[name] = None
    return data


# ---------------------------------------------------------------- the response's status


def response_status(body: Mapping[str, Any], media_type: str) -> int:
    """The HTTP status of a GraphQL response `body` (before any status the guard set)."""
    errors = body.get("errors") or []
    if not errors or body.get("data") is not None:
        return 200
    codes = {(error.get("extensions") or {}).get("code") for error in errors}
    if ErrorCode.QUERY_TOO_COMPLEX.value in codes:
        return 400
    if any(error.get("path") for error in errors):
        return 200  # execution ran and a field error nulled the whole result
    if ErrorCode.INTERNAL_SERVER_ERROR.value in codes:
        return 500
    return 400 if media_type == GRAPHQL_RESPONSE_JSON else 200


def is_request_error(body: Mapping[str, Any]) -> bool:
    """Whether `body` reports an error raised before execution began (no `data` belongs)."""
    errors = body.get("errors") or []
    return bool(errors) and body.get("data") is None and not any(e.get("path") for e in errors)


def status_code_error(status: int, reason: str) -> HTTPError:
    """An HTTPError for a status Strawberry itself chose (`cross_web.HTTPException`)."""
    if status == 404:
        return HTTPError(
            404,
            "GraphiQL is turned off here (GATEWAY_GRAPHIQL=false): send a GraphQL request.",
        )
    if status == 405:
        return HTTPError(405, "Use GET or POST.", headers={"Allow": "GET, POST"})
    return HTTPError(status, reason)
