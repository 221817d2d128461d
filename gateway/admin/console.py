"""What every administration command shares: one transaction (or a read) on the configured
database, the `--json` option, and printing a record as JSON or as aligned lines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.cli import emit_json, run, with_engine
from gateway.db import write_transaction
from gateway.vault import Vault

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def transaction(body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `body(conn)` in one write transaction on the configured database (see
    `gateway.db.write_transaction`: no other change interleaves)."""

    async def in_engine(engine: AsyncEngine) -> T:
        async with write_transaction(engine) as conn:
            return await body(conn)

    return run(with_engine(in_engine))


def reading(body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `body(conn)`, which only reads, on the configured database."""

    async def in_engine(engine: AsyncEngine) -> T:
        async with engine.connect() as conn:
            return await body(conn)

    return run(with_engine(in_engine))


def vault() -> Vault:
    """The vault of the configured settings (its key is resolved when first used)."""
    from gateway.settings import load_settings

    return Vault.from_settings(load_settings())


def show(value: dict[str, Any], as_json: bool, *, lines: dict[str, str] | None = None) -> None:
    """`value` as one JSON object, or as `key: value` lines; `lines` replaces the text of some
    keys (and hides those it maps to an empty string)."""
    if as_json:
        emit_json(value)
        return
    for key, item in value.items():
        if lines is not None and key in lines:
            if not lines[key]:
                continue
            item = lines[key]
        elif isinstance(item, list):
            item = ", ".join(map(str, item)) or "-"
        elif isinstance(item, dict):
            item = " ".join(f"{k}={v}" for k, v in item.items())
        typer.echo(f"{key:>16}: {'-' if item is None else item}")
