"""The administration commands: one JSON object per `--json` command, clear errors, audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from gateway import models
from gateway.access.tokens import digest
from gateway.admin.cli import register
from tests.admin_factories import Orgs, make_orgs_in
from tests.conftest import LiveServer, run_db

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def gateway(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`gateway(*args)` runs the administration commands on this test's database."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", db_url)
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return invoke


def one_json_object(result: Any) -> dict[str, Any]:
    """The single JSON object a successful `--json` command printed on standard output."""
    assert result.exit_code == 0, result.stderr
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    return value


@pytest.fixture
def orgs(db_url: str) -> Orgs:
    return run_db(db_url, make_orgs_in)


def test_admin_key_create_prints_the_key_once_and_stores_its_digest(
    gateway: Any, db_url: str
) -> None:
    created = one_json_object(gateway("admin-key", "create", "--name", "ops-team", "--json"))
    assert sorted(created) == ["id", "key", "name"]
    assert created["name"] == "ops-team"

    async def stored(engine: Any) -> list[Any]:
        async with engine.connect() as conn:
            keys = (await conn.execute(sa.select(models.table_of(models.AdminKey)))).all()
            log = (await conn.execute(sa.select(models.table_of(models.AuditEntry)))).all()
        return [keys, log]

    keys, log = run_db(db_url, stored)
    assert [(k.id, k.name, k.key_digest) for k in keys] == [
        (created["id"], "ops-team", digest(created["key"]))
    ]
    assert [(e.action, e.subject_id, e.actor) for e in log] == [
        ("admin_key.create", created["id"], "cli")
    ]
    assert created["key"] not in json.dumps(log[0].after)


def test_admin_keys_are_listed_without_secrets_and_revoked_with_an_audit_entry(
    gateway: Any, db_url: str
) -> None:
    first = one_json_object(gateway("admin-key", "create", "--name", "ops-team", "--json"))
    second = one_json_object(gateway("admin-key", "create", "--name", "sync-job", "--json"))
    listed = one_json_object(gateway("admin-key", "list", "--json"))
    assert [(k["id"], k["name"]) for k in listed["adminKeys"]] == [
        (first["id"], "ops-team"),
        (second["id"], "sync-job"),
    ]
    assert sorted(listed["adminKeys"][0]) == ["createdDate", "id", "name"]
    assert first["key"] not in json.dumps(listed)

    revoked = one_json_object(gateway("admin-key", "revoke", first["id"], "--json"))
    assert revoked["revoked"]["id"] == first["id"]
    listed = one_json_object(gateway("admin-key", "list", "--json"))
    assert [k["id"] for k in listed["adminKeys"]] == [second["id"]]

    again = gateway("admin-key", "revoke", first["id"], "--json")
    assert again.exit_code == 2
    assert f"admin key {first['id']} does not exist" in again.stderr
    assert again.stdout == ""

    async def audit_trail(engine: Any) -> list[Any]:
        async with engine.connect() as conn:
            entries = models.table_of(models.AuditEntry)
            query = sa.select(entries.c.action, entries.c.subject_id).order_by(entries.c.at)
            return list(await conn.execute(query))

    assert [tuple(row) for row in run_db(db_url, audit_trail)] == [
        ("admin_key.create", first["id"]),
        ("admin_key.create", second["id"]),
        ("admin_key.revoke", first["id"]),
    ]


def test_integration_lifecycle(gateway: Any, orgs: Orgs) -> None:
    source = one_json_object(gateway("sources", "create", "Ogdenville", "--json"))
    assert source["name"] == "Ogdenville"
    listed = one_json_object(gateway("sources", "list", "--json"))
    assert [s["name"] for s in listed["sources"]] == ["Springfield", "Ogdenville"]

    created = one_json_object(
        gateway(
            "integrations",
            "create",
            "--source",
            orgs.source,
            "--scope",
            "selected",
            "--permission",
            "people:read",
            "--permission",
            "organizations:read",
            "--target",
            orgs.school,
            "--start-date",
            "2999-01-31",
            "--name",
            "Gradebook",
            "--json",
        )
    )
    integration_id, token = created["id"], created["token"]
    assert len(token) >= 43
    assert {k: created[k] for k in ("scope", "status", "permissions", "targets", "startDate")} == {
        "scope": "SELECTED",
        "status": "INACTIVE",
        "permissions": ["organizations:read", "people:read"],
        "targets": [orgs.school],
        "startDate": "2999-01-31T00:00:00+00:00",
    }
    assert created["targetDetails"] == [
        {"id": orgs.school, "kind": "SCHOOL", "name": "Springfield High", "school": None}
    ]

    shown = one_json_object(gateway("integrations", "show", integration_id, "--json"))
    assert shown == {k: v for k, v in created.items() if k != "token"}

    updated = one_json_object(
        gateway(
            "integrations",
            "update",
            integration_id,
            "--permission",
            "emails:read",
            "--target",
            orgs.class_,
            "--clear-start-date",
            "--json",
        )
    )
    assert (updated["permissions"], updated["targets"], updated["status"]) == (
        ["emails:read"],
        [orgs.class_],
        "ACTIVE",
    )
    to_all = one_json_object(
        gateway("integrations", "update", integration_id, "--scope", "all", "--json")
    )
    assert (to_all["scope"], to_all["targets"]) == ("ALL", [])
    none = one_json_object(
        gateway("integrations", "update", integration_id, "--no-permissions", "--json")
    )
    assert none["permissions"] == []

    disabled = one_json_object(gateway("integrations", "disable", integration_id, "--json"))
    assert disabled["status"] == "DISABLED"
    enabled = one_json_object(gateway("integrations", "enable", integration_id, "--json"))
    assert enabled["status"] == "ACTIVE"
    listed = one_json_object(gateway("integrations", "list", "--source", orgs.source, "--json"))
    assert [i["id"] for i in listed["integrations"]] == [integration_id]
    destroyed = one_json_object(gateway("integrations", "destroy", integration_id, "--json"))
    assert destroyed["id"] == integration_id
    assert one_json_object(gateway("integrations", "list", "--json")) == {"integrations": []}

    log = one_json_object(gateway("audit", "--integration", integration_id, "--json"))
    assert [e["action"] for e in log["entries"]] == [
        "integration.destroy",
        "integration.enable",
        "integration.disable",
        "integration.update",
        "integration.update",
        "integration.update",
        "integration.create",
    ]
    assert {(e["actor"], e["adminKeyId"], e["adminKeyName"]) for e in log["entries"]} == {
        ("cli", None, None)
    }
    assert token not in json.dumps(log)
    assert log["pageInfo"]["hasNextPage"] is False

    first = one_json_object(gateway("audit", "--limit", "1", "--json"))
    rest = one_json_object(
        gateway("audit", "--limit", "500", "--after", first["pageInfo"]["endCursor"], "--json")
    )
    assert first["pageInfo"]["hasNextPage"] is True
    assert len(first["entries"]) + len(rest["entries"]) == 9  # and the two sources


def _failures(o: Orgs, other: Orgs) -> dict[str, tuple[list[str], str]]:
    create = ["integrations", "create", "--source", o.source]
    return {
        "unknown permission": (
            [*create, "--scope", "all", "--permission", "grades:read"],
            "unknown permission 'grades:read'",
        ),
        "selected without targets": (
            [*create, "--scope", "selected"],
            "scope SELECTED needs at least one target",
        ),
        "all with targets": (
            [*create, "--scope", "all", "--target", o.school],
            "scope ALL takes no targets",
        ),
        "target of another source": (
            [*create, "--scope", "selected", "--target", other.school],
            f"target {other.school} is not a school, course or class of source {o.source}",
        ),
        "unknown scope": ([*create, "--scope", "some"], "scope 'some' is not ALL or SELECTED"),
        "bad start date": (
            [*create, "--scope", "all", "--start-date", "tomorrow"],
            "start date 'tomorrow' is not ISO-8601",
        ),
        "unknown source": (
            ["integrations", "create", "--source", MISSING, "--scope", "all"],
            f"source {MISSING} does not exist",
        ),
        "update has no --source": (
            ["integrations", "update", MISSING, "--source", other.source],
            "No such option: --source",
        ),
        "contradicting options": (
            ["integrations", "update", MISSING, "--permission", "people:read", "--no-permissions"],
            "--permission and --no-permissions contradict each other",
        ),
        "targets: unknown kind": (
            ["targets", "list", "--source", o.source, "--kind", "room"],
            "kind 'room' is not school, course or class",
        ),
        "targets: unknown source": (
            ["targets", "list", "--source", MISSING],
            f"source {MISSING} does not exist; `gateway sources list` shows them",
        ),
        "targets: no source": (["targets", "list"], "Missing option '--source'"),
        "unknown integration": (
            ["integrations", "show", MISSING],
            f"integration {MISSING} does not exist; `gateway integrations list` shows them",
        ),
        "bad audit cursor": (["audit", "--after", "xyz"], "cursor 'xyz' is not an audit log"),
        "source name taken": (
            ["sources", "create", "Shelbyville"],
            f"a source named 'Shelbyville' exists already (id {other.source})",
        ),
        "empty admin key name": (["admin-key", "create", "--name", " "], "name is empty"),
        "revoke a non-UUID": (["admin-key", "revoke", "ops"], "admin key 'ops' is not a UUID"),
        "start date past year 9999 in UTC": (
            [*create, "--scope", "all", "--start-date", "9999-12-31T23:00:00-05:00"],
            "outside the years 1 to 9999",
        ),
    }


_NAMES_ONLY = Orgs(*"abcdef")  # placeholder ids, to list the case names at collection time


@pytest.mark.parametrize("case", list(_failures(_NAMES_ONLY, _NAMES_ONLY)))
def test_failures_exit_2_with_a_message_and_print_nothing(
    gateway: Any, orgs: Orgs, db_url: str, case: str
) -> None:
    other = run_db(db_url, lambda engine: make_orgs_in(engine, "Shelbyville"))
    args, message = _failures(orgs, other)[case]
    result = gateway(*args, "--json")
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split()), result.stderr
    assert result.stdout == ""


def test_the_console_script_prints_exactly_one_json_object(db_url: str, orgs: Orgs) -> None:
    env = {**os.environ, "GATEWAY_DATABASE_URL": db_url}
    command = [sys.executable, "-m", "gateway", "integrations", "create", "--source"]
    completed = subprocess.run(  # noqa: S603  # our own console script, arguments built here
        [*command, orgs.source, "--scope", "all", "--permission", "people:read", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    created = json.loads(completed.stdout)
    assert sorted(created) == sorted(
        [
            "id",
            "name",
            "sourceId",
            "application",
            "scope",
            "status",
            "configuredStatus",
            "startDate",
            "permissions",
            "targets",
            "targetDetails",
            "createdDate",
            "updatedDate",
            "token",
        ]
    )


def test_targets_list_names_what_can_be_passed_as_a_target(gateway: Any, orgs: Orgs) -> None:
    springfield_high = {"school": "Springfield High"}
    assert one_json_object(gateway("targets", "list", "--source", orgs.source, "--json")) == {
        "targets": [
            {
                "id": orgs.other_school,
                "kind": "SCHOOL",
                "name": "Springfield Elementary",
                "school": None,
            },
            {"id": orgs.school, "kind": "SCHOOL", "name": "Springfield High", "school": None},
            {"id": orgs.course, "kind": "COURSE", "name": "Algebra", **springfield_high},
            {"id": orgs.class_, "kind": "CLASS", "name": "Algebra 1A", **springfield_high},
        ]
    }
    narrowed = gateway(
        "targets", "list", "--source", orgs.source, "--kind", "class", "--search", "1a", "--json"
    )
    assert [t["id"] for t in one_json_object(narrowed)["targets"]] == [orgs.class_]
    assert one_json_object(
        gateway("targets", "list", "--source", orgs.source, "--search", "Chemistry", "--json")
    ) == {"targets": []}

    text = gateway("targets", "list", "--source", orgs.source, "--kind", "course")
    assert text.exit_code == 0, text.stderr
    assert text.stdout == f"COURSE  {orgs.course}  Algebra  (Springfield High)\n"


def test_integrations_show_and_list_name_their_targets(gateway: Any, orgs: Orgs) -> None:
    created = one_json_object(
        gateway(
            "integrations",
            "create",
            "--source",
            orgs.source,
            "--scope",
            "selected",
            "--target",
            orgs.class_,
            "--name",
            "Gradebook",
            "--json",
        )
    )
    details = [
        {"id": orgs.class_, "kind": "CLASS", "name": "Algebra 1A", "school": "Springfield High"}
    ]
    shown = one_json_object(gateway("integrations", "show", created["id"], "--json"))
    assert shown["targetDetails"] == details
    listed = one_json_object(gateway("integrations", "list", "--json"))
    assert listed["integrations"][0]["targetDetails"] == details

    text = gateway("integrations", "show", created["id"])
    assert text.exit_code == 0, text.stderr
    assert f"targets: Algebra 1A (class, Springfield High) {orgs.class_}\n" in text.stdout
    assert "targetDetails" not in text.stdout
    line = gateway("integrations", "list").stdout
    assert line.rstrip("\n").endswith("Gradebook  targets: Algebra 1A (class, Springfield High)")


def test_sources_show_and_destroy(
    gateway: Any, orgs: Orgs, db_url: str, live_server: Callable[..., LiveServer]
) -> None:
    other = run_db(db_url, lambda engine: make_orgs_in(engine, "Shelbyville"))
    created = one_json_object(
        gateway(
            "integrations",
            "create",
            "--source",
            orgs.source,
            "--scope",
            "all",
            "--permission",
            "organizations:read",
            "--name",
            "Gradebook",
            "--json",
        )
    )
    counts = {
        "districts": 1,
        "schools": 2,
        "sessions": 0,
        "courses": 1,
        "classes": 1,
        "sections": 0,
        "people": 0,
        "enrollments": 0,
        "agents": 0,
    }
    shown = one_json_object(gateway("sources", "show", orgs.source, "--json"))
    assert (shown["id"], shown["name"], shown["counts"]) == (orgs.source, "Springfield", counts)
    assert [i["id"] for i in shown["integrations"]] == [created["id"]]
    text = gateway("sources", "show", orgs.source)
    assert text.exit_code == 0, text.stderr
    assert "schools 2, courses 1, classes 1" in text.stdout
    assert f"{created['id']} (Gradebook)" in text.stdout

    refused = gateway("sources", "destroy", orgs.source, "--json")
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert refused.stderr == (
        f"Source 'Springfield' ({orgs.source}) holds 1 district, 2 schools, 1 course, "
        "1 class and 1 integration:\n"
        f"  {created['id']} (Gradebook)\n"
        "error: nothing was destroyed; pass --yes to destroy the source, its integrations "
        "(their tokens stop working) and its rows\n"
    )
    assert one_json_object(gateway("sources", "show", orgs.source, "--json")) == shown

    with live_server() as server:
        query = "{ schools { nodes { id } } }"
        assert server.graphql(query, created["token"])[0] == 200
        destroyed = one_json_object(gateway("sources", "destroy", orgs.source, "--yes", "--json"))
        assert destroyed == {"destroyed": shown}
        assert server.graphql(query, created["token"])[0] == 401

    listed = one_json_object(gateway("sources", "list", "--json"))
    assert [s["id"] for s in listed["sources"]] == [other.source]
    log = one_json_object(gateway("audit", "--limit", "2", "--json"))
    assert [(e["action"], e["subjectId"]) for e in log["entries"]] == [
        ("source.destroy", orgs.source),
        ("integration.destroy", created["id"]),
    ]
    again = gateway("sources", "destroy", orgs.source, "--yes")
    assert again.exit_code == 2
    assert again.stderr == (
        f"error: source {orgs.source} does not exist; `gateway sources list` shows them\n"
    )
