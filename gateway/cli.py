"""The `gateway` command line: serve, demo, export-schema, and the sub-commands of each area.

Commands that create or list something take `--json` and then print exactly one JSON object on
standard output; messages go to standard error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from gateway.errors import ValidationFailed

app = typer.Typer(
    name="gateway",
    help="A scope-enforcing GraphQL gateway for school rostering data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: `--permission SLUG_OR_UUID`, flags without a value, no `<bool>` tags
    # and boxes (typer's rich help shows each option's Python type instead of its metavar).
    rich_markup_mode=None,
)

T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `message` to standard error and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run an async command body; a ValidationFailed becomes a clear message and exit code 2,
    a database that cannot be opened or a bad `GATEWAY_*` setting a clear message and exit
    code 1."""
    from gateway.db_problems import DatabaseUnavailable
    from gateway.settings import SettingsError

    try:
        return asyncio.run(coro)
    except ValidationFailed as exc:
        fail(exc.for_cli())
    except (DatabaseUnavailable, SettingsError) as exc:
        fail(str(exc), code=1)


def emit_json(value: Any) -> None:
    """Print one JSON object on standard output."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def database_url() -> str:
    """The configured database URL (GATEWAY_DATABASE_URL)."""
    from gateway.settings import load_settings

    return load_settings().database_url


def with_engine(body: Callable[[Any], Awaitable[T]]) -> Coroutine[Any, Any, T]:
    """Open the configured database (creating missing tables), run `body(engine)`, close it."""
    from gateway.db import engine_for

    async def runner() -> T:
        async with engine_for(database_url()) as engine:
            return await body(engine)

    return runner()


@app.command("export-schema")
def export_schema(
    admin: Annotated[
        bool, typer.Option("--admin", help="Print the admin API's SDL instead.")
    ] = False,
    meta: Annotated[
        bool, typer.Option("--meta", help="Print the meta API's SDL (meta.graphql) instead.")
    ] = False,
) -> None:
    """Print the SDL of the Graph API (what `schema.graphql` holds)."""
    if admin and meta:
        fail("--admin and --meta each choose one schema; pass one")
    if meta:
        from gateway.meta.schema import meta_schema

        sys.stdout.write(meta_schema.as_str() + "\n")
        return
    if admin:
        from gateway.admin.schema import admin_schema

        sys.stdout.write(admin_schema.as_str() + "\n")
        return
    from gateway.graph.schema import schema

    sys.stdout.write(schema.as_str() + "\n")


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(metavar="N", help="Worker processes.", min=1)] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Load the demo data first (unless it is there) and print its integrations "
            "and new tokens.",
        ),
    ] = False,
    new_demo_tokens: Annotated[
        bool,
        typer.Option(
            "--new-demo-tokens",
            help="With --demo: replace the demo integrations, so new tokens are printed "
            "(the old ones stop working). Without it a loaded demo keeps its tokens.",
        ),
    ] = False,
) -> None:
    """Run the HTTP server."""
    import uvicorn

    if new_demo_tokens and not demo:
        fail(
            "--new-demo-tokens recreates the demo integrations of `--demo`; "
            "pass both: gateway serve --demo --new-demo-tokens"
        )
    url = graphql_url(host, port)
    _check_can_listen(host, port)

    async def prepare(engine: Any) -> None:
        if demo:
            from gateway.demo import ensure_demo

            await ensure_demo(engine, echo=True, new_tokens=new_demo_tokens, graphql_url=url)

    # Opening the database here (and creating missing tables) turns a wrong URL or an
    # unreachable server into one message, instead of a traceback from each worker's startup.
    run(with_engine(prepare))
    # uvicorn runs at log level warning (the gateway writes its own access log), which hides
    # its "running on" line; say where we listen instead.
    base = url.removesuffix("/graphql")
    typer.echo(
        f"Serving {url} (GraphiQL in a browser), {base}/admin/graphql and "
        f"{base}/meta/graphql; Ctrl+C stops.",
        err=True,
    )
    from gateway.app import proxy_options
    from gateway.settings import load_settings

    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        **proxy_options(load_settings()),
    )


def _check_can_listen(host: str, port: int) -> None:
    """Fail with one message when `host`:`port` cannot be listened on (another server has the
    port, a port below 1024 without the right, an address this machine does not have), before
    the database is opened or the demo loaded: uvicorn would say so only after `serve` said it
    serves, in its own words and with exit status 3. Bound as uvicorn binds (SO_REUSEADDR)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, protocol, _, address = infos[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        reason = error.strerror or str(error)
        fail(
            f"cannot listen on {host}:{port}: {reason}; stop what uses it or pass another "
            "--port (and --host an address of this machine)"
        )


_EVERY_INTERFACE = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104  # not a bind


def graphql_url(host: str, port: int) -> str:
    """The Graph API's URL as a client on this machine opens it when the server binds `host`
    and `port`: a wildcard address (every interface) is reached on loopback."""
    host = _EVERY_INTERFACE.get(host, host)
    address = f"[{host}]" if ":" in host else host
    return f"http://{address}:{port}/graphql"


def _register() -> None:
    # Each area owns its sub-commands; importing them here keeps this module the one entry point.
    from gateway.admin import cli as admin_cli
    from gateway.demo import cli as demo_cli
    from gateway.events import cli as events_cli
    from gateway.importers import cli as importers_cli

    for area in (demo_cli, admin_cli, importers_cli, events_cli):
        area.register(app)


def main() -> None:
    """The command line (`gateway.__main__` loads this module first)."""
    from gateway.__main__ import INTERRUPTED

    try:
        _register()  # a second or so of imports, before any command runs
    except KeyboardInterrupt:
        # a one-line message and the shell's code for Ctrl-C, not a stack trace through the
        # imports it stopped (found by a review)
        typer.echo(INTERRUPTED, err=True)
        raise SystemExit(130) from None
    app()
