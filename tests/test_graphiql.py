"""The GraphiQL pages (gateway.graphiql) over real HTTP: they load only the assets the gateway
serves itself (pinned, with Subresource Integrity), under a CSP that allows only this origin
and the pages' own inline code; GATEWAY_GRAPHIQL_CDN points them at a CDN instead."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway import graphiql
from gateway.settings import Settings
from tests.conftest import LiveServer

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "gateway" / "static" / "graphiql"
PAGES = {"graph": "/graphql", "admin": "/admin/graphql", "meta": "/meta/graphql"}
LONG_LIVED = "public, max-age=31536000, immutable"
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# The style GraphiQL's dialogs insert (seen in Chromium by tests/test_browser.py).
SCROLL_LOCK_STYLE = "'sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc='"
# react, react-dom, graphiql (script and styles), the explorer plugin (script and styles)
EXPECTED_ASSETS = {
    "react@18.2.0/umd/react.production.min.js",
    "react-dom@18.2.0/umd/react-dom.production.min.js",
    "graphiql@3.8.3/graphiql.min.js",
    "graphiql@3.8.3/graphiql.min.css",
    "@graphiql/plugin-explorer@1.0.2/dist/index.umd.js",
    "@graphiql/plugin-explorer@1.0.2/dist/style.css",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('graphiql') / 'gateway.db'}"
    with LiveServer(Settings(database_url=url, rate_limit_burst=100_000)) as running:
        yield running


@pytest.fixture(scope="module")
def cdn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('graphiql-cdn') / 'gateway.db'}"
    settings = Settings(database_url=url, graphiql_cdn="https://cdn.example:8443/npm/")
    with LiveServer(settings) as running:
        yield running


def get_page(server: LiveServer, path: str) -> httpx.Response:
    with server.client() as http:
        response = http.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response


def references(page: str) -> list[tuple[str, str, str]]:
    """(tag, URL, integrity) of every <script src> and <link href> of a page."""
    found = []
    for tag in re.findall(r"<(?:script|link)\b[^>]*>", page):
        url = re.search(r'\b(?:src|href)="([^"]*)"', tag)
        if url is None:
            continue
        integrity = re.search(r'\bintegrity="([^"]*)"', tag)
        found.append((tag, url[1], integrity[1] if integrity else ""))
    return found


def sri(content: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode()


def csp_source_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


# ---------------------------------------------------------------- the packaged assets


def test_the_asset_table_lists_the_pinned_bundles() -> None:
    assert {asset.path for asset in graphiql.ASSETS} == EXPECTED_ASSETS


@pytest.mark.parametrize("asset", graphiql.ASSETS, ids=lambda asset: asset.path)
def test_each_packaged_asset_matches_its_integrity_hash(asset: graphiql.Asset) -> None:
    assert sri((STATIC / asset.path).read_bytes()) == asset.integrity


@pytest.mark.parametrize("package", sorted({path.split("/")[0] for path in EXPECTED_ASSETS}))
def test_each_vendored_package_carries_its_licence(package: str) -> None:
    folder = STATIC / package
    if package.startswith("@"):
        (folder,) = folder.iterdir()  # @scope/name@version
    assert "Permission is hereby granted" in (folder / "LICENSE").read_text()


def test_the_provenance_notes_record_every_integrity_hash() -> None:
    notes = (STATIC / "README.md").read_text()
    for asset in graphiql.ASSETS:
        assert f"`{asset.path}`" in notes
        assert asset.integrity in notes


def test_the_package_data_ships_every_asset_and_licence() -> None:
    """The wheel (and an editable install) carries gateway/static/graphiql/** as package data."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gateway"]
    shipped = {file for pattern in patterns for file in (ROOT / "gateway").glob(pattern)}
    vendored = {file for file in STATIC.rglob("*") if file.is_file()}
    assert vendored <= shipped
    assert len(vendored) >= len(EXPECTED_ASSETS) + 5  # the files, 5 licences, the notes


# ---------------------------------------------------------------- the pages


@pytest.mark.parametrize("kind", PAGES)
def test_a_page_references_only_the_gateways_own_assets(server: LiveServer, kind: str) -> None:
    page = get_page(server, PAGES[kind]).text
    found = references(page)
    table = {asset.path: asset.integrity for asset in graphiql.ASSETS}
    local = [
        (url.removeprefix("/graphiql/"), integrity)
        for _, url, integrity in found
        if url.startswith("/graphiql/")
    ]
    assert sorted(local) == sorted(table.items())
    # the only other reference is the empty favicon, so the browser asks no one for one
    assert [url for _, url, _ in found if not url.startswith("/graphiql/")] == ["data:,"]
    assert "unpkg" not in page
    assert "https://" not in page


@pytest.mark.parametrize("kind", PAGES)
def test_the_page_csp_allows_only_this_origin_and_its_own_inline_code(
    server: LiveServer, kind: str
) -> None:
    response = get_page(server, PAGES[kind])
    inline_scripts = re.findall(r"<script>(.*?)</script>", response.text, re.S)
    (inline_style,) = re.findall(r"<style>(.*?)</style>", response.text, re.S)
    assert len(inline_scripts) == 1
    directives = csp_directives(response.headers["content-security-policy"])
    assert directives == {
        "default-src": ["'none'"],
        "script-src": ["'self'", csp_source_hash(inline_scripts[0])],
        "style-src": ["'self'", csp_source_hash(inline_style), SCROLL_LOCK_STYLE],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
    }


@pytest.mark.parametrize("kind", PAGES)
def test_a_page_says_in_words_when_its_scripts_did_not_load(server: LiveServer, kind: str) -> None:
    """The words themselves are seen in a browser (tests/test_browser.py); here: they are there,
    naming the setting to look at, and the page keeps no "Loading…" as its only text."""
    page = get_page(server, PAGES[kind]).text
    assert "could not load" in page
    assert "<noscript>" in page


# ---------------------------------------------------------------- serving the assets


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
@pytest.mark.parametrize("asset", graphiql.ASSETS, ids=lambda asset: asset.path)
def test_each_asset_is_served_with_its_type_long_cache_and_matching_hash(
    server: LiveServer, asset: graphiql.Asset, encoding: str
) -> None:
    with server.client() as http:
        response = http.get(f"/graphiql/{asset.path}", headers={"Accept-Encoding": encoding})
    assert response.status_code == 200
    assert response.headers["content-type"] == MEDIA_TYPES[Path(asset.path).suffix]
    assert response.headers["cache-control"] == LONG_LIVED
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers.get("content-encoding", "identity") == encoding
    assert sri(response.content) == asset.integrity  # httpx undoes the gzip


def test_an_asset_is_gzipped_once_not_per_request(server: LiveServer) -> None:
    """Compressing graphiql.min.js takes a third of a second of CPU: anyone may ask for it, so
    it is compressed once and the same bytes are sent to every client."""
    path = f"/graphiql/{graphiql.GRAPHIQL_JS.path}"
    bodies = []
    with server.client() as http:
        for _ in range(2):
            with http.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
                bodies.append(b"".join(response.iter_raw()))
    assert bodies[0] == bodies[1]
    assert gzip.decompress(bodies[0]) == (STATIC / graphiql.GRAPHIQL_JS.path).read_bytes()
    assert graphiql.gzipped.cache_info().currsize >= 1


def test_a_head_request_gets_the_headers(server: LiveServer) -> None:
    asset = graphiql.ASSETS[0]
    with server.client() as http:
        response = http.head(f"/graphiql/{asset.path}", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == LONG_LIVED
    assert int(response.headers["content-length"]) == (STATIC / asset.path).stat().st_size


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql/",
        "/graphiql/README.md",
        "/graphiql/react@18.2.0/LICENSE",
        "/graphiql/react@18.2.0/umd/react.development.js",
        "/graphiql/graphiql@3.8.3/graphiql.min.js.map",
        "/graphiql/react@18.2.0/../../../settings.py",
        "/graphiql/%2e%2e/%2e%2e/settings.py",
    ],
)
def test_only_the_listed_assets_are_served(server: LiveServer, path: str) -> None:
    with server.client() as http:
        response = http.get(path)
    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-store"


def test_other_methods_on_an_asset_are_refused(server: LiveServer) -> None:
    with server.client() as http:
        response = http.post(f"/graphiql/{graphiql.ASSETS[0].path}")
    assert response.status_code == 405


# ---------------------------------------------------------------- GATEWAY_GRAPHIQL_CDN


@pytest.mark.parametrize("kind", PAGES)
def test_the_cdn_setting_points_the_page_at_the_cdn(cdn_server: LiveServer, kind: str) -> None:
    response = get_page(cdn_server, PAGES[kind])
    table = {asset.path: asset.integrity for asset in graphiql.ASSETS}
    found = [ref for ref in references(response.text) if ref[1] != "data:,"]
    assert sorted((url, integrity) for _, url, integrity in found) == sorted(
        (f"https://cdn.example:8443/npm/{path}", integrity) for path, integrity in table.items()
    )
    assert all(" crossorigin" in tag for tag, _, _ in found)
    directives = csp_directives(response.headers["content-security-policy"])
    assert directives["script-src"][:2] == ["'self'", "https://cdn.example:8443"]
    assert directives["style-src"][:2] == ["'self'", "https://cdn.example:8443"]
    assert directives["connect-src"] == ["'self'"]


@pytest.mark.parametrize(
    "value", ["unpkg.com", "ftp://cdn.example", "https://cdn.example/npm?x=1", "https://"]
)
def test_the_cdn_setting_must_be_an_http_url(value: str) -> None:
    with pytest.raises(ValueError, match="graphiql_cdn"):
        Settings(graphiql_cdn=value)
