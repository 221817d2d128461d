"""The committed admin.graphql is what `gateway export-schema --admin` prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import graphql
import pytest

from gateway.admin.schema import admin_schema

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "gateway export-schema --admin > admin.graphql"


def test_admin_graphql_matches_the_admin_schema() -> None:
    exported = subprocess.run(
        [sys.executable, "-m", "gateway", "export-schema", "--admin"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    ).stdout
    assert exported == admin_schema.as_str() + "\n"
    committed = (ROOT / "admin.graphql").read_text(encoding="utf-8")
    if committed != exported:
        pytest.fail(f"admin.graphql is out of date with the admin schema; run `{REGENERATE}`")


def test_the_admin_schema_has_no_way_to_change_a_source() -> None:
    schema = graphql.build_schema(admin_schema.as_str())
    update_input = schema.type_map["UpdateIntegrationInput"]
    assert isinstance(update_input, graphql.GraphQLInputObjectType)
    assert sorted(update_input.fields) == [
        "name",
        "permissions",
        "scope",
        "startDate",
        "status",
        "targets",
    ]
    mutation = schema.mutation_type
    assert mutation is not None
    assert sorted(mutation.fields["updateIntegration"].args) == ["id", "input"]
