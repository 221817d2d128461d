"""The GraphiQL pages of /graphql and /admin/graphql, the assets they load, and which GETs get
a page.

Strawberry's stock page (strawberry/static/graphiql.html) with the same pinned bundles and
Subresource Integrity hashes, but titled for the gateway, with the Authorization header's place
filled in the headers editor and explained in the default query, and with headers never stored
in the browser (`shouldPersistHeaders: false`; what the stock page stored is removed), so a
token typed into it is gone when the page is closed.

The bundles ship inside the package (gateway/static/graphiql, with their licences and where they
come from) and the gateway serves them itself at /graphiql/<package>@<version>/…, so the page
works on a network with no internet. Each page carries its own Content-Security-Policy: scripts
and styles from this origin only (or also from GATEWAY_GRAPHIQL_CDN's when that is set), plus
the page's one inline script and one inline style, allowed by their hashes; it fetches only its
own URL. If a bundle does not load, the page says so in words.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from strawberry.http.base import BaseRequestProtocol

from gateway.graph.http import media_ranges

GRAPH_QUERY = """\
# The rostering gateway's Graph API.
#
# Every request needs your integration's access token. Open the Headers
# tab below and put the token in place of the placeholder:
#
#   {"Authorization": "Bearer <your integration token>"}
#
# This page keeps headers in memory only: reload it and the token is gone.
# An administrator creates integrations and their tokens with
# `gateway integrations create`; `gateway demo` prints demo tokens.
#
# Run with Ctrl-Enter (or the play button); Ctrl-Space completes.

{
  integration { status scope permissions { slug } }
  schools(first: 10) { totalCount nodes { id name } }
}
"""

ADMIN_QUERY = """\
# The rostering gateway's admin API.
#
# Every request needs an admin key (`gateway admin-key create` prints one).
# Open the Headers tab below and put the key in place of the placeholder:
#
#   {"Authorization": "Bearer <your admin key>"}
#
# then reload the schema (Shift-Ctrl-R) for the docs and completion.
# This page keeps headers in memory only: reload it and the key is gone.
#
# Run with Ctrl-Enter (or the play button); Ctrl-Space completes.

{
  adminKey { name }
  sources { id name }
}
"""

META_QUERY = """\
# The rostering gateway's meta API: your application's own integrations.
#
# Every request needs your application's key (an administrator creates it
# with `gateway applications create`). Open the Headers tab below and put
# the key in place of the placeholder:
#
#   {"Authorization": "Bearer <your application key>"}
#
# then reload the schema (Shift-Ctrl-R) for the docs and completion.
# This page keeps headers in memory only: reload it and the key is gone.
#
# Run with Ctrl-Enter (or the play button); Ctrl-Space completes.

{
  application { name permissions { slug } }
  integrations(filter: {statuses: [ACTIVE]}) {
    nodes { id status source { name } accessToken }
  }
}
"""

# ---------------------------------------------------------------- the assets

STATIC = Path(__file__).resolve().parent / "static" / "graphiql"
ASSETS_PATH = "/graphiql"
# Each path names its package's version, so a browser may keep a file for good.
LONG_LIVED = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """One pinned file: its path under gateway/static/graphiql (and under /graphiql/ or the
    CDN), and its Subresource Integrity hash."""

    path: str
    integrity: str

    @property
    def media_type(self) -> str:
        """What the gateway serves it as (a script must be a JavaScript type under nosniff)."""
        if self.path.endswith(".css"):
            return "text/css; charset=utf-8"
        return "text/javascript; charset=utf-8"


REACT = Asset(
    "react@18.2.0/umd/react.production.min.js",
    "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
)
REACT_DOM = Asset(
    "react-dom@18.2.0/umd/react-dom.production.min.js",
    "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
)
GRAPHIQL_CSS = Asset(
    "graphiql@3.8.3/graphiql.min.css",
    "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
)
EXPLORER_CSS = Asset(
    "@graphiql/plugin-explorer@1.0.2/dist/style.css",
    "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
)
GRAPHIQL_JS = Asset(
    "graphiql@3.8.3/graphiql.min.js",
    "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
)
EXPLORER_JS = Asset(
    "@graphiql/plugin-explorer@1.0.2/dist/index.umd.js",
    "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
)
# In the order the page loads them: the head's scripts and styles, then the body's scripts.
HEAD_ASSETS = (REACT, REACT_DOM, GRAPHIQL_CSS, EXPLORER_CSS)
BODY_ASSETS = (GRAPHIQL_JS, EXPLORER_JS)
ASSETS = HEAD_ASSETS + BODY_ASSETS
_BY_PATH = {asset.path: asset for asset in ASSETS}


@functools.cache
def gzipped(asset: Asset) -> bytes:
    """`asset` gzipped, once per process: anyone may ask for these files, and compressing
    graphiql.min.js costs a third of a second of CPU, too much to spend on every request."""
    return gzip.compress((STATIC / asset.path).read_bytes(), compresslevel=9, mtime=0)


async def serve_asset(request: Request) -> Response:
    """One of ASSETS, from the package, cached for good (gzipped when the client accepts it);
    any other path is a 404."""
    asset = _BY_PATH.get(request.path_params["path"])
    if asset is None:
        return PlainTextResponse("Not Found", status_code=404)
    headers = {"Cache-Control": LONG_LIVED, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        # Compressed in a worker thread the first time (GraphCompressionMiddleware leaves
        # these paths alone).
        body = await run_in_threadpool(gzipped, asset)
        headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=asset.media_type, headers=headers)
    return FileResponse(STATIC / asset.path, media_type=asset.media_type, headers=headers)


def asset_route() -> Route:
    """The route that serves ASSETS at /graphiql/<path>."""
    return Route(ASSETS_PATH + "/{path:path}", serve_asset, methods=["GET"], name="graphiql")


# ---------------------------------------------------------------- the page

_STYLE = """
      body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; display: flex; }
      #graphiql.failed { display: block; height: auto; padding: 2em; font: 16px/1.5 sans-serif; }
      .graphiql-explorer-actions select { margin-left: 4px; }
    """

# The one style GraphiQL adds itself: its dialogs' scroll lock (react-remove-scroll-bar, inside
# graphiql.min.js) inserts a <style> whose text follows the body's margins and scroll bar, which
# _STYLE fixes (no margin, no scroll bar), so its text, and this hash, are always the same.
# tests/test_browser.py opens the dialogs and sees no CSP violation.
_SCROLL_LOCK_STYLE = "'sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc='"

# `window.GraphiQL` and the others are the bundles' globals: one that is missing did not load.
_SCRIPT = """
      const DEFAULT_QUERY = $query;
      const DEFAULT_HEADERS = $headers;
      const BUNDLES = {
        React: "react", ReactDOM: "react-dom", GraphiQL: "graphiql",
        GraphiQLPluginExplorer: "@graphiql/plugin-explorer",
      };

      function showFailure(reason) {
        const root = document.getElementById("graphiql");
        const title = document.createElement("h1");
        title.textContent = "GraphiQL could not start";
        const text = document.createElement("p");
        text.textContent = reason;
        const where = document.createElement("p");
        where.textContent = "This page loads its scripts from these addresses; a proxy, a " +
          "firewall or a browser extension may be blocking them (or changing them: each must " +
          "match its pinned hash) or, when the gateway's " +
          "GATEWAY_GRAPHIQL_CDN setting points the page at a CDN, this network may not reach " +
          "it. The browser's console says more.";
        const list = document.createElement("ul");
        for (const script of document.querySelectorAll("script[src]")) {
          const item = document.createElement("li");
          item.textContent = script.src;
          list.append(item);
        }
        root.className = "failed";
        root.replaceChildren(title, text, where, list);
      }

      const missing = Object.keys(BUNDLES).filter((name) => !(name in window));
      if (missing.length > 0) {
        showFailure("The browser could not load " +
          missing.map((name) => BUNDLES[name]).join(", ") + ".");
      } else {
        try {
          start();
        } catch (error) {
          showFailure("GraphiQL failed while starting: " + error + ".");
        }
      }

      function start() {
        // Headers (the token) live in memory only; drop what an earlier page stored.
        try {
          localStorage.removeItem("graphiql:headers");
          const tabs = JSON.parse(localStorage.getItem("graphiql:tabState") || "null");
          if (tabs && Array.isArray(tabs.tabs)) {
            for (const tab of tabs.tabs) tab.headers = null;
            localStorage.setItem("graphiql:tabState", JSON.stringify(tabs));
          }
        } catch (error) {}

        // A shared link carries the query and variables (never headers) in the URL.
        const parameters = new URLSearchParams(window.location.search);
        function updateURL(name, value) {
          if (value) parameters.set(name, value);
          else parameters.delete(name);
          const search = parameters.toString();
          history.replaceState(null, "", search ? "?" + search : window.location.pathname);
        }

        const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
        const explorer = GraphiQLPluginExplorer.explorerPlugin();

        function Page() {
          return React.createElement(GraphiQL, {
            fetcher: fetcher,
            plugins: [explorer],
            query: parameters.get("query") || parameters.get("q") || DEFAULT_QUERY,
            variables: parameters.get("variables") || undefined,
            defaultQuery: DEFAULT_QUERY,
            headers: DEFAULT_HEADERS,
            defaultHeaders: DEFAULT_HEADERS,
            defaultEditorToolsVisibility: "headers",
            isHeadersEditorEnabled: true,
            shouldPersistHeaders: false,
            inputValueDeprecation: true,
            onEditQuery: (value) => updateURL("query", value),
            onEditVariables: (value) => updateURL("variables", value),
          });
        }

        ReactDOM.createRoot(document.getElementById("graphiql")).render(
          React.createElement(Page),
        );
      }
    """

_TEMPLATE = """\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>$title</title>
    <link rel="icon" href="data:," />
    <style>$style</style>
$head_assets
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <noscript>GraphiQL needs JavaScript, which this browser does not run for this page.</noscript>
$body_assets
    <script>$script</script>
  </body>
</html>
"""


@dataclass(frozen=True)
class Page:
    """A GraphiQL page: `title`, `default_query` in the editor, and an Authorization header
    holding `Bearer <token_placeholder>` in the headers editor."""

    title: str
    default_query: str
    token_placeholder: str

    @functools.cached_property
    def script(self) -> str:
        """The page's one inline script (its hash is in the CSP)."""
        headers = json.dumps({"Authorization": f"Bearer <{self.token_placeholder}>"}, indent=2)
        return _SCRIPT.replace("$query", _script_literal(self.default_query)).replace(
            "$headers", _script_literal(headers)
        )

    def html(self, *, cdn: str = "", root_path: str = "") -> str:
        """The page, loading the assets from `cdn` (a base URL) or else from this gateway
        (mounted at `root_path`)."""
        base = cdn.rstrip("/") if cdn else root_path + ASSETS_PATH
        return (
            _TEMPLATE.replace("$title", html.escape(self.title))
            .replace("$style", _STYLE)
            .replace("$head_assets", _tags(HEAD_ASSETS, base, cross_origin=bool(cdn)))
            .replace("$body_assets", _tags(BODY_ASSETS, base, cross_origin=bool(cdn)))
            .replace("$script", self.script)
        )

    def content_security_policy(self, *, cdn: str = "") -> str:
        """Scripts and styles from this origin (and `cdn`'s), plus the page's own inline
        script and style and GraphiQL's scroll-lock style; requests to this origin only;
        nothing else."""
        cdn_source = f" {_origin(cdn)}" if cdn else ""
        return (
            "default-src 'none'; "
            f"script-src 'self'{cdn_source} {_source_hash(self.script)}; "
            f"style-src 'self'{cdn_source} {_source_hash(_STYLE)} {_SCROLL_LOCK_STYLE}; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )

    def response(self, request: Request, *, cdn: str = "") -> HTMLResponse:
        """The page as an HTML response with its Content-Security-Policy."""
        root_path = str(request.scope.get("root_path", ""))
        return HTMLResponse(
            self.html(cdn=cdn, root_path=root_path),
            headers={"Content-Security-Policy": self.content_security_policy(cdn=cdn)},
        )


def _tags(assets: tuple[Asset, ...], base: str, *, cross_origin: bool) -> str:
    """<script> and <link> tags loading `assets` from `base`, pinned by their hashes."""
    extra = " crossorigin" if cross_origin else ""
    tags = []
    for asset in assets:
        url = html.escape(f"{base}/{asset.path}")
        if asset.path.endswith(".css"):
            tags.append(
                f'    <link rel="stylesheet" href="{url}" integrity="{asset.integrity}"{extra} />'
            )
        else:
            tags.append(f'    <script src="{url}" integrity="{asset.integrity}"{extra}></script>')
    return "\n".join(tags)


def _origin(url: str) -> str:
    """The origin (scheme, host, port) of `url`, as a CSP source."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _source_hash(text: str) -> str:
    """A CSP hash source allowing the inline element whose text is `text`."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _script_literal(text: str) -> str:
    """`text` as a JavaScript string literal that cannot end the inline <script>."""
    return json.dumps(text).replace("</", "<\\/").replace("<!--", "<\\!--")


GRAPH_PAGE = Page("Rostering gateway · GraphiQL", GRAPH_QUERY, "your integration token")
ADMIN_PAGE = Page("Rostering gateway admin API · GraphiQL", ADMIN_QUERY, "your admin key")
META_PAGE = Page("Rostering gateway meta API · GraphiQL", META_QUERY, "your application key")


def is_page_request(request: BaseRequestProtocol) -> bool:
    """Whether a request asks for the GraphiQL page rather than a GraphQL response.

    A GET without `query` (or a persisted query's `extensions`) that accepts HTML or anything
    (Strawberry's rule), or a browser that loads a GraphiQL link with `?query=…`: its Accept
    prefers text/html to every JSON type (as a browser's `text/html,…,*/*;q=0.8` does). Other
    GETs with `query` or `extensions` are GraphQL over HTTP, whatever else they accept: curl's
    `*/*` asking for a persisted query by its hash got the page (an app developer's review).
    """
    if request.method != "GET":
        return False
    accept = request.headers.get("accept", "")
    if request.query_params.get("query") is None:
        if request.query_params.get("extensions") is not None:
            return False
        return "text/html" in accept or "*/*" in accept
    quality = _qualities(accept)
    html_quality = quality.get("text/html", 0.0)
    json_quality = max(quality.get(media, 0.0) for media in _JSON_MEDIA)
    return html_quality > 0 and html_quality > json_quality


_JSON_MEDIA = ("application/graphql-response+json", "application/json", "application/*", "*/*")


def _qualities(accept: str) -> Mapping[str, float]:
    """Each media range of an Accept header with its best quality."""
    found: dict[str, float] = {}
    for media, quality in media_ranges(accept):
        found[media] = max(quality, found.get(media, 0.0))
    return found
