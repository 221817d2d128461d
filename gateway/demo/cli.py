"""`gateway demo [--people N] [--json]`."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from gateway.cli import emit_json, run, with_engine
from gateway.demo.load import DEFAULT_PEOPLE, MAX_PEOPLE, MIN_PEOPLE, load_demo
from gateway.demo.output import print_summary


def register(app: typer.Typer) -> None:
    """Add `gateway demo` to the command line."""
    app.command("demo")(demo)


def demo(
    people: Annotated[
        int,
        typer.Option(
            "--people",
            metavar="N",
            min=MIN_PEOPLE,
            max=MAX_PEOPLE,
            help="How many people to create.",
        ),
    ] = DEFAULT_PEOPLE,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the tokens on stdout.")
    ] = False,
) -> None:
    """Create the deterministic demo source and one integration of each kind."""
    started = time.perf_counter()
    result = run(with_engine(lambda engine: load_demo(engine, people=people)))
    if as_json:
        emit_json(result.as_json())
    else:
        print_summary(result, time.perf_counter() - started)
