"""The administration commands: admin-key, sources, integrations, applications and audit.

Each command runs one transaction through the same service layer as /admin/graphql; changes
are audited with actor `cli` and no admin key. With `--json` a command prints exactly one JSON
object on standard output; everything else goes to standard error.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.admin import applications_cli, audit, keys, records, service, sources_cli
from gateway.admin.console import JsonOption, reading, show, transaction, vault
from gateway.cli import emit_json, fail

IdArgument = Annotated[
    str, typer.Argument(metavar="ID", help="The integration's id.", show_default=False)
]


def _show(integration: records.Integration, as_json: bool, **extra: str) -> None:
    """An integration (with `extra` keys such as its token), its targets by name in text."""
    targets = f"\n{'':>18}".join(t.label() for t in integration.target_details)
    show(
        {**integration.as_json(), **extra},
        as_json,
        lines={"targets": targets or "-", "targetDetails": ""},
    )


# ---------------------------------------------------------------- admin keys

admin_keys = typer.Typer(help="Keys for the admin API at /admin/graphql.", no_args_is_help=True)


@admin_keys.command("create")
def create_admin_key(
    name: Annotated[str, typer.Option(metavar="NAME", help="Who or what uses the key.")] = "admin",
    as_json: JsonOption = False,
) -> None:
    """Create an admin key; it is printed only this once and stored as a SHA-256 digest."""
    created = transaction(lambda conn: keys.create_admin_key(conn, name))
    if as_json:
        emit_json({"id": created.id, "name": created.name, "key": created.key})
        return
    typer.echo("Store this admin key now; it cannot be shown again.", err=True)
    typer.echo(created.key)


@admin_keys.command("list")
def list_admin_keys(as_json: JsonOption = False) -> None:
    """List the admin keys, oldest first (names and ids; the keys themselves are not stored)."""
    found = reading(keys.list_admin_keys)
    if as_json:
        emit_json({"adminKeys": [key.as_json() for key in found]})
        return
    for key in found:
        typer.echo(f"{key.id}  {key.created_date:%Y-%m-%d %H:%M}  {key.name}")


@admin_keys.command("revoke")
def revoke_admin_key(
    key_id: Annotated[
        str, typer.Argument(metavar="ID", help="The admin key's id.", show_default=False)
    ],
    as_json: JsonOption = False,
) -> None:
    """Revoke an admin key: requests bearing it are refused from now on."""
    revoked = transaction(lambda conn: keys.revoke_admin_key(conn, key_id))
    if as_json:
        emit_json({"revoked": revoked.as_json()})
        return
    typer.echo(f"Revoked admin key {revoked.id} ({revoked.name}).", err=True)


# ---------------------------------------------------------------- integrations

integrations = typer.Typer(
    help="Integrations: an application's scoped access to one source.", no_args_is_help=True
)

PermissionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--permission",
        metavar="SLUG_OR_UUID",
        help="A permission slug (people:read) or UUID; repeat for several.",
    ),
]
TargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target", metavar="ID", help="A school, course or class id of the source; repeatable."
    ),
]
StartDateOption = Annotated[
    str | None,
    typer.Option(
        metavar="DATE",
        help="ISO-8601; INACTIVE until then, ACTIVE from then on (UTC if no zone).",
    ),
]


@integrations.command("create")
def create_integration(
    source: Annotated[str, typer.Option(metavar="ID", help="The source's id.", show_default=False)],
    scope: Annotated[
        str, typer.Option(metavar="SCOPE", help="all or selected.", show_default=False)
    ],
    permission: PermissionOption = None,
    target: TargetOption = None,
    start_date: StartDateOption = None,
    status: Annotated[
        str, typer.Option(metavar="STATUS", help="active, inactive or disabled.")
    ] = "active",
    name: Annotated[
        str | None, typer.Option(metavar="NAME", help="A label for administrators.")
    ] = None,
    application: Annotated[
        str | None,
        typer.Option(
            metavar="ID",
            help="The application it is for: it is granted what the application requests "
            "(minus --deny), and its developer reads the token from the meta API.",
        ),
    ] = None,
    deny: Annotated[
        list[str] | None,
        typer.Option(
            "--deny",
            metavar="SLUG_OR_UUID",
            help="With --application: a requested permission not to grant; repeatable.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an integration and print it with its token (shown only this once)."""

    async def body(conn: AsyncConnection) -> service.CreatedIntegration:
        return await service.create_integration(
            conn,
            source_id=source,
            scope=service.parse_scope(scope),
            permissions=permission or (),
            targets=target or (),
            status=service.parse_status(status),
            start_date=service.parse_start_date(start_date),
            name=name,
            application_id=application,
            deny=deny or (),
            vault=None if application is None else vault(),
        )

    created = transaction(body)
    if not as_json:
        typer.echo("Store the token now; it cannot be shown again.", err=True)
    _show(created.integration, as_json, token=created.token)


@integrations.command("update")
def update_integration(
    integration_id: IdArgument,
    permission: Annotated[
        list[str] | None,
        typer.Option(
            "--permission",
            metavar="SLUG_OR_UUID",
            help="Replace the permissions with these; repeatable.",
        ),
    ] = None,
    no_permissions: Annotated[
        bool, typer.Option("--no-permissions", help="Remove every permission.")
    ] = False,
    scope: Annotated[str | None, typer.Option(metavar="SCOPE", help="all or selected.")] = None,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", metavar="ID", help="Replace the targets with these; repeatable."),
    ] = None,
    status: Annotated[
        str | None, typer.Option(metavar="STATUS", help="active, inactive or disabled.")
    ] = None,
    start_date: StartDateOption = None,
    clear_start_date: Annotated[
        bool, typer.Option("--clear-start-date", help="Remove the start date.")
    ] = False,
    name: Annotated[str | None, typer.Option(metavar="NAME", help="A new label.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Change an integration; its token stays the same. Its source cannot be changed.

    `--scope all` without `--target` clears the targets.
    """
    if permission and no_permissions:
        fail("--permission and --no-permissions contradict each other; pass one")
    if start_date is not None and clear_start_date:
        fail("--start-date and --clear-start-date contradict each other; pass one")

    async def body(conn: AsyncConnection) -> records.Integration:
        changes = service.IntegrationChanges(
            permissions=[] if no_permissions else permission,
            scope=None if scope is None else service.parse_scope(scope),
            targets=target,
            status=None if status is None else service.parse_status(status),
            start_date=(
                None
                if clear_start_date
                else service.KEEP
                if start_date is None
                else service.parse_start_date(start_date)
            ),
            name=service.KEEP if name is None else name,
        )
        return await service.update_integration(conn, integration_id, changes)

    _show(transaction(body), as_json)


@integrations.command("disable")
def disable_integration(integration_id: IdArgument, as_json: JsonOption = False) -> None:
    """Refuse the integration's graph requests from the next request on."""
    _show(
        transaction(lambda conn: service.disable_integration(conn, integration_id)),
        as_json,
    )


@integrations.command("enable")
def enable_integration(integration_id: IdArgument, as_json: JsonOption = False) -> None:
    """Set the status to ACTIVE again (a start date in the future still waits)."""
    _show(
        transaction(lambda conn: service.enable_integration(conn, integration_id)),
        as_json,
    )


@integrations.command("destroy")
def destroy_integration(integration_id: IdArgument, as_json: JsonOption = False) -> None:
    """Delete the integration; its token stops working at once. Prints it as it was."""
    destroyed = transaction(lambda conn: service.destroy_integration(conn, integration_id))
    if not as_json:
        typer.echo(f"Destroyed integration {destroyed.id}.", err=True)
    _show(destroyed, as_json)


@integrations.command("list")
def list_integrations(
    source: Annotated[
        str | None, typer.Option(metavar="ID", help="Only this source's integrations.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List integrations, oldest first."""

    async def body(conn: AsyncConnection) -> list[records.Integration]:
        wanted = None if source is None else await service.require_source(conn, source)
        return await records.load_integrations(conn, source_id=wanted)

    found = reading(body)
    if as_json:
        emit_json({"integrations": [i.as_json() for i in found]})
        return
    for item in found:
        names = ", ".join(t.title() for t in item.target_details)
        typer.echo(
            f"{item.id}  {item.status().value:<8}  {item.scope.value:<8}  "
            f"{len(item.permissions):>2} permission{'' if len(item.permissions) == 1 else 's'}"
            f"  {item.name or ''}" + (f"  targets: {names}" if names else "")
        )


@integrations.command("show")
def show_integration(integration_id: IdArgument, as_json: JsonOption = False) -> None:
    """Show one integration (never its token)."""
    found = reading(lambda conn: service.require_integration(conn, integration_id))
    _show(found, as_json)


# ---------------------------------------------------------------- audit


def show_audit_log(
    integration: Annotated[
        str | None, typer.Option(metavar="ID", help="Only entries about this integration.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(metavar="ACTION", help="Only this action, e.g. integration.update."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(metavar="N", help=f"Entries per page (at most {audit.MAX_PAGE_SIZE})."),
    ] = audit.DEFAULT_PAGE_SIZE,
    after: Annotated[
        str | None,
        typer.Option(metavar="CURSOR", help="Continue after this cursor (pageInfo.endCursor)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the audit log of administrative changes, newest first."""

    async def body(conn: AsyncConnection) -> audit.Page:
        subject = (
            None if integration is None else service.canonical_uuid(integration, "integration")
        )
        return await audit.list_entries(
            conn, subject_id=subject, action=action, first=limit, after=after
        )

    page = reading(body)
    if as_json:
        emit_json(page.as_json())
        return
    for entry in page.entries:
        who = entry.admin_key_name or entry.actor
        typer.echo(f"{entry.at.isoformat()}  {who:<12}  {entry.action:<20}  {entry.subject_id}")
    if page.has_next_page:
        typer.echo(f"more: --after {page.end_cursor}", err=True)


def register(app: typer.Typer) -> None:
    """Add the administration commands to the `gateway` command line."""
    app.add_typer(admin_keys, name="admin-key")
    app.add_typer(sources_cli.sources, name="sources")
    app.add_typer(sources_cli.targets, name="targets")
    app.add_typer(integrations, name="integrations")
    app.add_typer(applications_cli.applications, name="applications")
    app.add_typer(applications_cli.secret_key, name="secret-key")
    app.command("audit")(show_audit_log)
