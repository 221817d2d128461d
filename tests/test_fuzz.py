"""Fuzzing the Graph API over real HTTP (hypothesis): malformed JSON, wrong parameter types,
huge strings, invalid UTF-8, random text and invalid GraphQL documents (hypothesis-graphql's
negative mode), over POST and GET. Never a 5xx; always a JSON body whose errors carry a code
from the allow-list, and never INTERNAL_SERVER_ERROR."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import graphql
import httpx
import hypothesis_graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import ErrorCode
from gateway.graph.schema import schema as graph_schema
from gateway.settings import Settings
from tests.conftest import LiveServer, run_db
from tests.factories import make_integration, make_source
from tests.reporting import SUMMARY

EXAMPLES = 200
HUGE_EXAMPLES = 60
CLIENT_CODES = {code.value for code in ErrorCode} - {ErrorCode.INTERNAL_SERVER_ERROR.value}
RESPONSE_TYPES = ("application/json", "application/graphql-response+json")
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COUNTS: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@dataclass
class Api:
    http: httpx.Client


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'gateway.db'}"

    async def build(engine: AsyncEngine) -> str:
        graph = await make_source(engine, 17, "Fuzz", people=20, enrollments=30)
        return await make_integration(engine, graph.source.id)

    token = run_db(url, build)
    settings_ = Settings(database_url=url, rate_limit_burst=10**9)
    with LiveServer(settings_) as server, server.client(token) as http:
        yield Api(http)
    SUMMARY.append(
        "fuzz test (hypothesis): "
        + ", ".join(f"{name} {count}" for name, count in sorted(COUNTS.items()))
        + f" requests; statuses {dict(sorted(STATUSES.items()))}"
    )


def check(name: str, response: httpx.Response) -> dict[str, Any]:
    """The invariants every answer keeps; returns the body."""
    COUNTS[name] += 1
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, response.text[:500]
    assert response.headers["content-type"].startswith(RESPONSE_TYPES), response.headers
    assert response.headers["x-request-id"]
    body = response.json()
    assert isinstance(body, dict), body
    errors = body.get("errors")
    if response.status_code != 200:
        assert errors, body
    for error in errors or ():
        assert isinstance(error["message"], str)
        assert error["message"]
        assert error["extensions"]["code"] in CLIENT_CODES, error
    return body


# ---------------------------------------------------------------- strategies

VALID = b'{"query": "{ schools(first: 2) { nodes { id name } } }", "variables": {"a": 1}}'
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
documents = st.sampled_from(
    [
        "{ __typename }",
        "{ schools { nodes { id } } }",
        "query Q($n: Int) { people(first: $n) { totalCount } }",
        "query A { __typename } query B { schools { totalCount } }",
        "mutation { __typename }",
        "subscription { __typename }",
    ]
)


@st.composite
def spliced(draw: st.DrawFn) -> bytes:
    """A valid request with bytes deleted, replaced or inserted somewhere."""
    body = bytearray(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(body)))
        cut = draw(st.integers(min_value=0, max_value=5))
        body[at : at + cut] = draw(st.binary(max_size=6))
    return bytes(body)


INVALID_UTF8 = st.sampled_from(
    [
        b"\xff",
        b"\xfe\xfe",
        b"\x80",
        b"\xc0\x80",
        b"\xc3",
        b"\xe2\x82",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xf8\x88\x80\x80\x80",
    ]
)


# ---------------------------------------------------------------- the tests


@FUZZ
@given(body=st.one_of(spliced(), st.binary(max_size=300)))
def test_malformed_json_bodies(api: Api, body: bytes) -> None:
    response = api.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    check("malformed-json", response)


@FUZZ
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "query": documents | json_values,
                "variables": json_values,
                "operationName": st.sampled_from(["Q", "A", "B", ""]) | json_values,
                "extensions": json_values,
            },
        ),
    ),
    accept=st.sampled_from([None, "application/json", "application/graphql-response+json", "*/*"]),
)
def test_wrong_types_for_the_parameters(api: Api, body: Any, accept: str | None) -> None:
    headers = {"Content-Type": "application/json", **({"Accept": accept} if accept else {})}
    response = api.http.post("/graphql", content=json.dumps(body), headers=headers)
    answer = check("wrong-types", response)
    query = body.get("query") if isinstance(body, dict) else None
    if not isinstance(query, str) or not all(
        isinstance(body.get(key), (dict, type(None))) for key in ("variables", "extensions")
    ):
        assert response.status_code == 400, answer


@settings(FUZZ, max_examples=HUGE_EXAMPLES)
@given(
    size=st.integers(min_value=10_000, max_value=1_500_000),
    piece=st.sampled_from(["a", "{", "{ a", "#", '"', "\\u0000", "é", "🏃", " ", "$"]),
    where=st.sampled_from(["query", "variable", "operationName", "raw-body"]),
)
def test_huge_strings(api: Api, size: int, piece: str, where: str) -> None:
    huge = piece * (size // len(piece))
    if where == "raw-body":
        content = huge.encode("utf-8", "surrogatepass")
    else:
        body: dict[str, Any] = {"query": "query Q($v: String) { __typename }"}
        if where == "query":
            body["query"] = huge
        elif where == "variable":
            body["variables"] = {"v": huge}
        else:
            body["operationName"] = huge
        content = json.dumps(body).encode()
    response = api.http.post(
        "/graphql", content=content, headers={"Content-Type": "application/json"}
    )
    check("huge-strings", response)
    if len(content) > 1_000_000:
        assert response.status_code == 413


@FUZZ
@given(
    bad=INVALID_UTF8 | st.binary(min_size=1, max_size=8).filter(lambda b: not _is_utf8(b)),
    where=st.sampled_from(["query", "key", "variables"]),
)
def test_invalid_utf_8(api: Api, bad: bytes, where: str) -> None:
    if where == "query":
        content = b'{"query": "{ __typename ' + bad + b' }"}'
    elif where == "key":
        content = b'{"qu' + bad + b'ery": "{ __typename }"}'
    else:
        content = b'{"query": "{ __typename }", "variables": {"a": "' + bad + b'"}}'
    response = api.http.post(
        "/graphql", content=content, headers={"Content-Type": "application/json"}
    )
    body = check("invalid-utf-8", response)
    assert response.status_code == 400
    assert "UTF-8" in body["errors"][0]["message"]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.fixture(scope="module")
def invalid_documents() -> st.SearchStrategy[str]:
    text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
    return hypothesis_graphql.queries(
        graph_schema.as_str(),
        mode=hypothesis_graphql.Mode.NEGATIVE,
        custom_scalars={
            "DateTime": text.map(lambda v: graphql.StringValueNode(value=v)),
            "Date": text.map(lambda v: graphql.StringValueNode(value=v)),
            "JSON": text.map(lambda v: graphql.StringValueNode(value=v)),
        },
    )


def test_invalid_documents_are_400_without_data(
    api: Api, invalid_documents: st.SearchStrategy[str]
) -> None:
    @FUZZ
    @given(query=invalid_documents)
    def run(query: str) -> None:
        response = api.http.post(
            "/graphql",
            json={"query": query},
            headers={"Accept": "application/graphql-response+json"},
        )
        body = check("invalid-documents", response)
        assert response.status_code == 400, (query, body)
        assert "data" not in body

    run()


@FUZZ
@given(query=st.text(max_size=200))
def test_random_text_documents(api: Api, query: str) -> None:
    response = api.http.post(
        "/graphql", json={"query": query}, headers={"Accept": "application/graphql-response+json"}
    )
    body = check("random-text", response)
    if response.status_code == 200:
        assert body.get("data") is not None, body


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "extensions", "other"]),
        st.text(max_size=60) | documents | json_values.map(json.dumps),
        max_size=4,
    ),
    accept=st.sampled_from(["application/json", "application/graphql-response+json"]),
)
def test_get_requests(api: Api, params: dict[str, str], accept: str) -> None:
    response = api.http.get("/graphql", params=params, headers={"Accept": accept})
    check("get", response)
