"""The commands about sources and what their integrations can target: `gateway sources`
(create, list, show, destroy) and `gateway targets list` (DESIGN §6, §7)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.admin import records, service
from gateway.admin import sources as sources_service
from gateway.admin.console import JsonOption, reading, show, transaction
from gateway.admin.sources import SourceSummary, describe_source
from gateway.admin.targets import Target, list_targets, parse_kind
from gateway.cli import emit_json, fail

# ---------------------------------------------------------------- sources

sources = typer.Typer(help="Data sources (SIS, LMS, OneRoster exports).", no_args_is_help=True)


@sources.command("create")
def create_source(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The source's name.", show_default=False)
    ],
    provider_name: Annotated[str, typer.Option(metavar="NAME", help="E.g. Canvas.")] = "OneRoster",
    provider_application: Annotated[
        str, typer.Option(metavar="NAME", help="The provider's machine name, e.g. canvas.")
    ] = "oneroster",
    team_name: Annotated[str | None, typer.Option(metavar="NAME", help="Defaults to NAME.")] = None,
    entity_name: Annotated[
        str | None, typer.Option(metavar="NAME", help="Defaults to NAME.")
    ] = None,
    entity_type: Annotated[
        str, typer.Option(metavar="TYPE", help="DISTRICT or SCHOOL.")
    ] = "DISTRICT",
    as_json: JsonOption = False,
) -> None:
    """Create a source with its provider, team and entity; its name must be one no source has."""

    async def body(conn: AsyncConnection) -> records.Source:
        created = await service.create_source(
            conn,
            name,
            provider_name=provider_name,
            provider_application=provider_application,
            team_name=team_name,
            entity_name=entity_name,
            entity_type=entity_type.strip().upper(),
        )
        (source,) = await records.load_sources(conn, ids=[created.id])
        return source

    show(transaction(body).as_json(), as_json)


@sources.command("list")
def list_sources(as_json: JsonOption = False) -> None:
    """List every source, oldest first."""
    found = reading(records.load_sources)
    if as_json:
        emit_json({"sources": [s.as_json() for s in found]})
        return
    for source in found:
        typer.echo(f"{source.id}  {source.status:<8}  {source.name}")


SourceArgument = Annotated[
    str, typer.Argument(metavar="ID", help="The source's id.", show_default=False)
]

_ONE = {
    "districts": "district",
    "schools": "school",
    "sessions": "session",
    "courses": "course",
    "classes": "class",
    "sections": "section",
    "people": "person",
    "enrollments": "enrollment",
    "agents": "agent",
    "integrations": "integration",
}


def _holdings(summary: SourceSummary) -> str:
    """`1 district, 2 schools and 1 integration`: what is there, nothing that is not."""
    numbers = {**summary.counts, "integrations": len(summary.integrations)}
    parts = [f"{n:,} {name if n != 1 else _ONE[name]}" for name, n in numbers.items() if n]
    if not parts:
        return "nothing"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _integration_lines(summary: SourceSummary) -> list[str]:
    return [f"{i.id}" + (f" ({i.name})" if i.name else "") for i in summary.integrations]


@sources.command("show")
def show_source(source_id: SourceArgument, as_json: JsonOption = False) -> None:
    """Show a source: its provider, how many rows of each graph type it holds, its integrations."""
    summary = reading(lambda conn: describe_source(conn, source_id))
    counts = ", ".join(f"{name} {n:,}" for name, n in summary.counts.items() if n)
    show(
        summary.as_json(),
        as_json,
        lines={
            "counts": counts or "no rows",
            "integrations": f"\n{'':>18}".join(_integration_lines(summary)) or "-",
        },
    )


@sources.command("destroy")
def destroy_source(
    source_id: SourceArgument,
    yes: Annotated[
        bool, typer.Option("--yes", help="Destroy it; without this, say what would go.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Destroy a source with its integrations (their tokens stop working at once) and every
    row it holds, in one transaction. Without --yes, say what would go and change nothing."""
    if not yes:
        summary = reading(lambda conn: describe_source(conn, source_id))
        source = summary.source
        typer.echo(
            f"Source {source.name!r} ({source.id}) holds {_holdings(summary)}"
            + (":" if summary.integrations else "."),
            err=True,
        )
        for line in _integration_lines(summary):
            typer.echo(f"  {line}", err=True)
        fail(
            "nothing was destroyed; pass --yes to destroy the source, its integrations "
            "(their tokens stop working) and its rows"
        )
    destroyed = transaction(lambda conn: sources_service.destroy_source(conn, source_id))
    if as_json:
        emit_json({"destroyed": destroyed.as_json()})
        return
    typer.echo(
        f"Destroyed source {destroyed.source.name!r} ({destroyed.source.id}) and "
        f"{_holdings(destroyed)}.",
        err=True,
    )


# ---------------------------------------------------------------- targets

targets = typer.Typer(
    help="The schools, courses and classes an integration can be scoped to.",
    no_args_is_help=True,
)


@targets.command("list")
def list_source_targets(
    source: Annotated[str, typer.Option(metavar="ID", help="The source's id.", show_default=False)],
    kind: Annotated[
        str | None, typer.Option(metavar="KIND", help="Only school, course or class.")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="Only those whose name contains TEXT (any case)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List a source's schools, then courses, then classes: the ids `--target` takes.

    `school` is the name of a course's or class's school (none for a school, or for a course
    of the whole district).
    """

    async def body(conn: AsyncConnection) -> list[Target]:
        wanted = None if kind is None else parse_kind(kind)
        source_id = await service.require_source(conn, source)
        return await list_targets(conn, source_id, kind=wanted, search=search)

    found = reading(body)
    if as_json:
        emit_json({"targets": [t.as_json() for t in found]})
        return
    for target in found:
        school = f"  ({target.school})" if target.school else ""
        typer.echo(f"{target.kind.value:<6}  {target.id}  {target.name}{school}")
