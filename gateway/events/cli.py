"""`gateway events prune [--json]`: delete change-feed events older than the retention."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.cli import emit_json, run, with_engine


def register(app: typer.Typer) -> None:
    """Add the `events` command group to the `gateway` command line."""
    group = typer.Typer(help="The integrations' change feeds.", no_args_is_help=True)
    group.command("prune")(prune)
    app.add_typer(group, name="events")


def prune(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: deleted, retentionDays.")
    ] = False,
) -> None:
    """Delete events older than GATEWAY_EVENT_RETENTION_DAYS (default 30), in one transaction."""
    from gateway.db import write_transaction
    from gateway.events.read import prune as prune_events
    from gateway.settings import load_settings

    async def body(engine: Any) -> tuple[int, int]:
        days = load_settings().event_retention_days  # a bad setting: `run`'s one-line error
        async with write_transaction(engine) as conn:
            return await prune_events(conn, days), days

    deleted, days = run(with_engine(body))
    if as_json:
        emit_json({"deleted": deleted, "retentionDays": days})
    else:
        typer.echo(f"deleted {deleted:,} events older than {days} days")
