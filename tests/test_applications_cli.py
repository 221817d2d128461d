"""`gateway applications …` and `gateway integrations create --application`: one JSON object per
`--json` command, granting only what an application requests, clear errors, audit."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from gateway import models
from gateway.access.tokens import digest
from gateway.admin.cli import register
from gateway.vault import generate_key
from tests.admin_factories import Orgs, make_orgs_in
from tests.conftest import run_db

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def gateway(any_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`gateway(*args)` runs the administration commands on this test's database."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", any_db_url)
    if not any_db_url.startswith("sqlite"):
        monkeypatch.setenv("GATEWAY_SECRET_KEY", generate_key())
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return invoke


@pytest.fixture
def orgs(any_db_url: str) -> Orgs:
    return run_db(any_db_url, make_orgs_in)


def one_json_object(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    return value


def refused(result: Any) -> str:
    """The message of a command that failed with exit code 2 (bad input)."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    message: str = result.stderr
    return message


def rows(url: str, model: type[models.SQLModel]) -> list[Any]:
    async def read(engine: Any) -> list[Any]:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.select(models.table_of(model)))).all())

    return run_db(url, read)


def create_app(gateway: Any, *permissions: str, name: str = "Gradebook") -> dict[str, Any]:
    args = [f"--permission={p}" for p in permissions]
    return one_json_object(gateway("applications", "create", "--name", name, *args, "--json"))


def test_create_prints_the_key_once_and_stores_only_its_digest(
    gateway: Any, any_db_url: str
) -> None:
    created = create_app(gateway, "people:read", "organizations:read")
    assert sorted(created) == ["id", "key", "name", "permissions"]
    assert created["name"] == "Gradebook"
    assert created["permissions"] == ["organizations:read", "people:read"]
    (stored,) = rows(any_db_url, models.Application)
    assert (stored.id, stored.key_digest) == (created["id"], digest(created["key"]))
    log = rows(any_db_url, models.AuditEntry)
    assert [(e.action, e.subject_id, e.actor) for e in log] == [
        ("application.create", created["id"], "cli")
    ]
    assert created["key"] not in json.dumps(log[0].after)
    assert digest(created["key"]) not in json.dumps(log[0].after)


def test_list_and_show_never_print_the_key(gateway: Any) -> None:
    created = create_app(gateway, "people:read")
    listed = one_json_object(gateway("applications", "list", "--json"))
    shown = one_json_object(gateway("applications", "show", created["id"], "--json"))
    assert listed == {"applications": [shown]}
    assert sorted(shown) == [
        "createdDate",
        "description",
        "id",
        "name",
        "permissions",
        "updatedDate",
    ]
    assert created["key"] not in json.dumps(listed)


def test_an_integration_is_granted_what_the_application_requests_minus_the_denied(
    gateway: Any, orgs: Orgs, any_db_url: str
) -> None:
    app = create_app(gateway, "people:read", "organizations:read", "enrollments:read")
    base = ["integrations", "create", "--source", orgs.source, "--scope", "all"]
    everything = one_json_object(gateway(*base, "--application", app["id"], "--json"))
    assert everything["permissions"] == ["organizations:read", "people:read", "enrollments:read"]
    assert everything["application"] == {"id": app["id"], "name": "Gradebook"}
    denied = one_json_object(
        gateway(*base, "--application", app["id"], "--deny", "enrollments:read", "--json")
    )
    assert denied["permissions"] == ["organizations:read", "people:read"]
    stored = {row.id: row for row in rows(any_db_url, models.Integration)}
    for created in (everything, denied):
        row = stored[created["id"]]
        assert row.token_digest == digest(created["token"])
        assert row.token_ciphertext is not None
        assert created["token"] not in row.token_ciphertext
    without = one_json_object(gateway(*base, "--permission", "people:read", "--json"))
    assert without["application"] is None
    assert stored.keys() | {without["id"]} == {r.id for r in rows(any_db_url, models.Integration)}
    assert {r.id: r.token_ciphertext for r in rows(any_db_url, models.Integration)}[
        without["id"]
    ] is None  # no application reads it: nothing but the digest is kept


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            ["--permission", "people:read", "--permission", "agents:read"],
            "permission agents:read is not one that application 'Gradebook' requests (people:read)",
            id="a superset",
        ),
        pytest.param(
            ["--deny", "agents:read"],
            "permission agents:read is not one that application 'Gradebook' requests",
            id="denying one it does not request",
        ),
        pytest.param(
            ["--deny", "grades:read"], "unknown permission 'grades:read'", id="unknown permission"
        ),
    ],
)
def test_granting_outside_the_request_is_refused_and_writes_nothing(
    gateway: Any, orgs: Orgs, any_db_url: str, extra: list[str], message: str
) -> None:
    app = create_app(gateway, "people:read")
    message_seen = refused(
        gateway(
            "integrations",
            "create",
            "--source",
            orgs.source,
            "--scope",
            "all",
            "--application",
            app["id"],
            *extra,
            "--json",
        )
    )
    assert message in message_seen
    assert rows(any_db_url, models.Integration) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["integrations", "create", "--scope", "all", "--application", MISSING],
            f"application {MISSING} does not exist; `gateway applications list` shows them",
            id="unknown application",
        ),
        pytest.param(
            ["integrations", "create", "--scope", "all", "--deny", "people:read"],
            "denying permissions needs an application",
            id="deny without an application",
        ),
        pytest.param(
            ["applications", "show", "nope"], "application 'nope' is not a UUID", id="bad id"
        ),
        pytest.param(
            ["applications", "create", "--name", " "],
            "the application name is empty",
            id="empty name",
        ),
        pytest.param(
            ["applications", "update", MISSING, "--name", "x"],
            f"application {MISSING} does not exist",
            id="update unknown",
        ),
        pytest.param(
            ["applications", "update", MISSING, "--permission", "x:y", "--no-permissions"],
            "contradict each other",
            id="contradicting options",
        ),
    ],
)
def test_bad_input_is_a_clear_error(
    gateway: Any, orgs: Orgs, args: list[str], message: str
) -> None:
    if args[0] == "integrations":
        args = [*args, "--source", orgs.source]
    assert message in refused(gateway(*args))


def test_an_application_that_stops_requesting_keeps_its_integrations_grants(
    gateway: Any, orgs: Orgs, any_db_url: str
) -> None:
    app = create_app(gateway, "people:read", "organizations:read")
    integration = one_json_object(
        gateway(
            "integrations",
            "create",
            "--source",
            orgs.source,
            "--scope",
            "all",
            "--application",
            app["id"],
            "--json",
        )
    )
    updated = one_json_object(
        gateway("applications", "update", app["id"], "--permission", "people:read", "--json")
    )
    assert updated["permissions"] == ["people:read"]
    shown = one_json_object(gateway("integrations", "show", integration["id"], "--json"))
    assert shown["permissions"] == ["organizations:read", "people:read"]
    actions = [e.action for e in rows(any_db_url, models.AuditEntry)]
    assert actions.count("application.update") == 1
    # An administrator's update may grant only what the application requests now.
    regrant = ["integrations", "update", integration["id"], "--permission", "people:read"]
    assert "permission organizations:read is not one that application 'Gradebook'" in refused(
        gateway(*regrant, "--permission", "organizations:read")
    )
    narrowed = one_json_object(gateway(*regrant, "--json"))
    assert narrowed["permissions"] == ["people:read"]


def test_rotate_key_replaces_the_digest(gateway: Any, any_db_url: str) -> None:
    app = create_app(gateway, "people:read")
    rotated = one_json_object(gateway("applications", "rotate-key", app["id"], "--json"))
    assert rotated["id"] == app["id"]
    assert rotated["key"] != app["key"]
    (stored,) = rows(any_db_url, models.Application)
    assert stored.key_digest == digest(rotated["key"])
    assert "application.rotate_key" in [e.action for e in rows(any_db_url, models.AuditEntry)]


@pytest.mark.parametrize("with_integrations", [False, True], ids=["keep", "with-integrations"])
def test_destroy_keeps_or_destroys_the_integrations(
    gateway: Any, orgs: Orgs, any_db_url: str, with_integrations: bool
) -> None:
    app = create_app(gateway, "people:read")
    integration = one_json_object(
        gateway(
            "integrations",
            "create",
            "--source",
            orgs.source,
            "--scope",
            "all",
            "--application",
            app["id"],
            "--json",
        )
    )
    flags = ["--with-integrations"] if with_integrations else []
    destroyed = one_json_object(gateway("applications", "destroy", app["id"], *flags, "--json"))
    assert destroyed["application"]["id"] == app["id"]
    assert [i["id"] for i in destroyed["integrations"]] == [integration["id"]]
    assert destroyed["integrationsDestroyed"] is with_integrations
    assert rows(any_db_url, models.Application) == []
    assert rows(any_db_url, models.ApplicationPermission) == []
    left = rows(any_db_url, models.Integration)
    if with_integrations:
        assert left == []
    else:
        assert [(r.id, r.application_id, r.token_ciphertext) for r in left] == [
            (integration["id"], None, None)
        ]


def test_postgresql_without_a_secret_key_says_what_to_set(
    orgs: Orgs, any_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if any_db_url.startswith("sqlite"):
        pytest.skip("SQLite makes its key file beside the database")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", any_db_url)
    monkeypatch.delenv("GATEWAY_SECRET_KEY", raising=False)
    monkeypatch.delenv("GATEWAY_SECRET_KEY_FILE", raising=False)
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    created = one_json_object(
        runner.invoke(
            app, ["applications", "create", "--name", "G", "--permission=people:read", "--json"]
        )
    )
    result = runner.invoke(
        app,
        [
            "integrations",
            "create",
            "--source",
            orgs.source,
            "--scope",
            "all",
            "--application",
            created["id"],
        ],
    )
    assert result.exit_code == 1
    assert "set GATEWAY_SECRET_KEY" in result.stderr
    assert rows(any_db_url, models.Integration) == []
