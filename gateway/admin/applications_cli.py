"""The `gateway applications` and `gateway secret-key` commands (issue #16).

Each runs one transaction through `gateway.admin.applications`, audited with actor `cli`. A new
or rotated key is printed only once: with `--json` in the one JSON object, else on its own line
on standard output (the message about it goes to standard error).
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.admin import applications as service
from gateway.admin.console import JsonOption, reading, show, transaction
from gateway.admin.records import Application, load_applications
from gateway.cli import emit_json, fail
from gateway.vault import generate_key

applications = typer.Typer(
    help="Applications: the permissions each requests, and its key for /meta/graphql.",
    no_args_is_help=True,
)

IdArgument = Annotated[
    str, typer.Argument(metavar="ID", help="The application's id.", show_default=False)
]
PermissionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--permission",
        metavar="SLUG_OR_UUID",
        help="A permission the application requests (people:read or a UUID); repeatable.",
    ),
]
DescriptionOption = Annotated[
    str | None, typer.Option(metavar="TEXT", help="What the application does, for administrators.")
]


def _created(created: service.CreatedApplication, as_json: bool) -> None:
    application = created.application
    if as_json:
        emit_json(
            {
                "id": application.id,
                "name": application.name,
                "permissions": list(application.permissions),
                "key": created.key,
            }
        )
        return
    typer.echo(
        f"Application {application.id} ({application.name}). Give this key to its developer "
        "now (Authorization: Bearer <key> on /meta/graphql); it cannot be shown again.",
        err=True,
    )
    typer.echo(created.key)


@applications.command("create")
def create_application(
    name: Annotated[str, typer.Option(metavar="NAME", help="The application's name.")],
    description: DescriptionOption = None,
    permission: PermissionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an application and print its key for the meta API (shown only this once)."""
    _created(
        transaction(
            lambda conn: service.create_application(
                conn, name, description=description, permissions=permission or ()
            )
        ),
        as_json,
    )


@applications.command("list")
def list_applications(as_json: JsonOption = False) -> None:
    """List the applications, oldest first (never their keys)."""
    found = reading(lambda conn: load_applications(conn))
    if as_json:
        emit_json({"applications": [a.as_json() for a in found]})
        return
    for item in found:
        typer.echo(f"{item.id}  {item.name}  requests: {', '.join(item.permissions) or '-'}")


@applications.command("show")
def show_application(application_id: IdArgument, as_json: JsonOption = False) -> None:
    """Show one application (never its key)."""
    show(reading(lambda conn: service.require_application(conn, application_id)).as_json(), as_json)


@applications.command("update")
def update_application(
    application_id: IdArgument,
    name: Annotated[str | None, typer.Option(metavar="NAME", help="A new name.")] = None,
    description: DescriptionOption = None,
    permission: Annotated[
        list[str] | None,
        typer.Option(
            "--permission",
            metavar="SLUG_OR_UUID",
            help="Replace the requested permissions with these; repeatable.",
        ),
    ] = None,
    no_permissions: Annotated[
        bool, typer.Option("--no-permissions", help="Request no permission at all.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Change an application's name, description or requested permissions.

    Its integrations keep what they were granted until an administrator updates them.
    """
    if permission and no_permissions:
        fail("--permission and --no-permissions contradict each other; pass one")
    changes = service.ApplicationChanges(
        name=name, description=description, permissions=[] if no_permissions else permission
    )

    async def body(conn: AsyncConnection) -> Application:
        return await service.update_application(conn, application_id, changes)

    show(transaction(body).as_json(), as_json)


@applications.command("rotate-key")
def rotate_key(application_id: IdArgument, as_json: JsonOption = False) -> None:
    """Give the application a new key (printed only this once); the old one stops working."""
    _created(
        transaction(lambda conn: service.rotate_application_key(conn, application_id)), as_json
    )


@applications.command("destroy")
def destroy_application(
    application_id: IdArgument,
    with_integrations: Annotated[
        bool,
        typer.Option(
            "--with-integrations",
            help="Destroy its integrations too (by default they keep working, with no "
            "application).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete an application; its key stops working at once."""
    destroyed = transaction(
        lambda conn: service.destroy_application(
            conn, application_id, with_integrations=with_integrations
        )
    )
    if as_json:
        emit_json(destroyed.as_json())
        return
    what = "destroyed" if with_integrations else "kept without an application"
    typer.echo(
        f"Destroyed application {destroyed.application.id}; "
        f"{len(destroyed.integrations)} integration(s) {what}.",
        err=True,
    )


secret_key = typer.Typer(
    help="The key that encrypts the tokens the meta API returns.", no_args_is_help=True
)


@secret_key.command("generate")
def generate_secret_key() -> None:
    """Print a fresh secret key for GATEWAY_SECRET_KEY (the same on every gateway machine)."""
    typer.echo(generate_key())
