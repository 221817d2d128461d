"""What the demo prints on standard error: its integrations with their tokens, a load summary."""

from __future__ import annotations

import sys

from gateway.demo.results import DemoResult

# Where `gateway serve` listens by default; `gateway serve --demo` passes its own URL.
GRAPHQL_URL = "http://127.0.0.1:8000/graphql"
_TABLE_WIDTH = 100


def print_integrations(result: DemoResult, graphql_url: str = GRAPHQL_URL) -> None:
    """A table of the demo integrations and a curl example for `graphql_url`, on standard
    error."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    # Tokens must stay whole to be copied: never let a narrow (or absent) terminal crop them.
    console.width = max(console.width, _TABLE_WIDTH)
    table = Table(title=f"Demo integrations of {result.source_name!r}", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("scope", no_wrap=True)
    table.add_column("token", no_wrap=True, min_width=43)
    for integration in result.integrations:
        shown = integration.token or "(kept: stored only as a digest)"
        table.add_row(integration.name, integration.status, integration.scope, shown)
    console.print(table)
    token = next((i.token for i in result.integrations if i.name == "all"), None)
    if token is None:
        return
    console.print(
        f"curl -s {graphql_url} -H 'Authorization: Bearer {token}' "
        "-H 'Content-Type: application/json' "
        """-d '{"query": "{ schools { nodes { id name } } }"}'""",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def print_summary(result: DemoResult, seconds: float) -> None:
    """How long loading took and how many rows each table got, then the integrations."""
    counts = ", ".join(f"{n:,} {table}" for table, n in result.counts.items())
    sys.stderr.write(
        f"Loaded the demo source {result.source_name!r} (id {result.source_id}) "
        f"in {seconds:.1f} s: {counts}.\n"
    )
    print_integrations(result)
