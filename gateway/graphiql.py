"""The GraphiQL page of /graphql and /admin/graphql, and when a request asks for it.

Strawberry's stock page (strawberry/static/graphiql.html) with the same pinned bundles and
Subresource Integrity hashes, but titled for the gateway, with the Authorization header's place
filled in the headers editor and explained in the default query, and with headers never stored
in the browser (`shouldPersistHeaders: false`; what the stock page stored is removed), so a
token typed into it is gone when the page is closed. It loads only what `GRAPHIQL_CSP`
(gateway/middleware.py) allows: inline code and unpkg.com bundles; it fetches only its own URL.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

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

_TEMPLATE = """\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>$title</title>
    <link rel="icon" href="data:," />
    <style>
      body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; display: flex; }
      .graphiql-explorer-actions select { margin-left: 4px; }
    </style>
    <script
      crossorigin
      src="https://unpkg.com/react@18.2.0/umd/react.production.min.js"
      integrity="sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8"
    ></script>
    <script
      crossorigin
      src="https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js"
      integrity="sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh"
    ></script>
    <link
      crossorigin
      rel="stylesheet"
      href="https://unpkg.com/graphiql@3.8.3/graphiql.min.css"
      integrity="sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM"
    />
    <link
      crossorigin
      rel="stylesheet"
      href="https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/style.css"
      integrity="sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi"
    />
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script
      crossorigin
      src="https://unpkg.com/graphiql@3.8.3/graphiql.min.js"
      integrity="sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie"
    ></script>
    <script
      crossorigin
      src="https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/index.umd.js"
      integrity="sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9"
    ></script>
    <script>
      const DEFAULT_QUERY = $query;
      const DEFAULT_HEADERS = $headers;

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
    </script>
  </body>
</html>
"""


def page(title: str, default_query: str, token_placeholder: str) -> str:
    """The GraphiQL page: `title`, `default_query` in the editor, and an Authorization header
    holding `Bearer <token_placeholder>` in the headers editor."""
    headers = json.dumps({"Authorization": f"Bearer <{token_placeholder}>"}, indent=2)
    return (
        _TEMPLATE.replace("$title", html.escape(title))
        .replace("$query", _script_literal(default_query))
        .replace("$headers", _script_literal(headers))
    )


def _script_literal(text: str) -> str:
    """`text` as a JavaScript string literal that cannot end the inline <script>."""
    return json.dumps(text).replace("</", "<\\/").replace("<!--", "<\\!--")


GRAPH_PAGE = page("Rostering gateway · GraphiQL", GRAPH_QUERY, "your integration token")
ADMIN_PAGE = page("Rostering gateway admin API · GraphiQL", ADMIN_QUERY, "your admin key")


def is_page_request(request: BaseRequestProtocol) -> bool:
    """Whether a request asks for the GraphiQL page rather than a GraphQL response.

    A GET without `query` that accepts HTML or anything (Strawberry's rule), or a browser that
    loads a GraphiQL link with `?query=…`: its Accept prefers text/html to every JSON type
    (as a browser's `text/html,…,*/*;q=0.8` does). Other GETs with `query` are GraphQL over
    HTTP, whatever else they accept.
    """
    if request.method != "GET":
        return False
    accept = request.headers.get("accept", "")
    if request.query_params.get("query") is None:
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
