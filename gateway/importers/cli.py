"""`gateway import oneroster DIR --source-name NAME [--provider-name NAME] [--json]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli import emit_json, fail, run, with_engine
from gateway.importers.oneroster import ImportResult, import_oneroster


def register(app: typer.Typer) -> None:
    """Add the `import` command group to the `gateway` command line."""
    group = typer.Typer(help="Import rostering data into a source.", no_args_is_help=True)
    group.command("oneroster")(oneroster)
    app.add_typer(group, name="import")


def oneroster(
    directory: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="A OneRoster 1.1 or 1.2 CSV folder (or its zip file)."),
    ],
    source_name: Annotated[
        str,
        typer.Option(
            "--source-name",
            metavar="NAME",
            help="The source to import into; created when no source has this name.",
        ),
    ],
    provider_name: Annotated[
        str,
        typer.Option(
            "--provider-name", metavar="NAME", help="The provider's name, for a new source."
        ),
    ] = "OneRoster",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: source, counts, warnings.")
    ] = False,
) -> None:
    """Import a OneRoster CSV folder (bulk or delta) into a source, all or nothing."""
    bar = _TerminalProgress() if sys.stderr.isatty() else None
    committed = False

    async def body(engine: Any) -> ImportResult:
        nonlocal committed
        imported = await import_oneroster(
            engine,
            directory,
            source_name=source_name,
            provider_name=provider_name,
            progress=bar,
        )
        committed = True
        return imported

    try:
        result = run(with_engine(body))
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
            bar = None
        if committed:
            fail(f"interrupted after the import of {directory} had committed: it is all in.", 130)
        fail(
            f"interrupted: the import of {directory} stopped before it committed, so none of "
            "it was written. Run the command again to import it.",
            130,
        )
    finally:
        if bar is not None:
            bar.close()
    if result.created_source:
        typer.echo(f"Created source {result.source_name!r} ({result.source_id}).", err=True)
    else:
        typer.echo(
            f"Source {result.source_name!r} ({result.source_id}) already existed; "
            "the folder was imported into it.",
            err=True,
        )
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json(result.as_json())
        return
    modes = ", ".join(f"{stem} {mode}" for stem, mode in result.modes.items())
    typer.echo(f"Imported OneRoster {result.version} ({modes}).")
    typer.echo("  " + ", ".join(f"{name} {count}" for name, count in result.counts.items()))
    changes = [
        f"{what} {sum(numbers.values())}"
        for what, numbers in (
            ("inserted", result.inserted),
            ("updated", result.updated),
            ("deleted", result.deleted),
        )
    ]
    typer.echo("  rows " + ", ".join(changes) + " (the rest unchanged)")


class _TerminalProgress:
    """A rich progress bar per file, on standard error."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: Any = None
        self._progress.start()

    def start(self, name: str, total_bytes: int) -> None:
        self._task = self._progress.add_task(name, total=total_bytes)

    def advance(self, done_bytes: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=done_bytes)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def close(self) -> None:
        self._progress.stop()
