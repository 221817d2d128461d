"""The committed meta.graphql is what `gateway export-schema --meta` prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import graphql
import pytest

from gateway.meta.schema import meta_schema

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "gateway export-schema --meta > meta.graphql"


def test_meta_graphql_matches_the_meta_schema() -> None:
    exported = subprocess.run(
        [sys.executable, "-m", "gateway", "export-schema", "--meta"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    ).stdout
    assert exported == meta_schema.as_str() + "\n"
    committed = (ROOT / "meta.graphql").read_text(encoding="utf-8")
    if committed != exported:
        pytest.fail(f"meta.graphql is out of date with the meta schema; run `{REGENERATE}`")


def test_the_meta_schema_only_reads_and_describes_everything() -> None:
    schema = graphql.build_schema(meta_schema.as_str())
    assert schema.mutation_type is None
    assert schema.subscription_type is None
    query = schema.query_type
    assert query is not None
    assert sorted(query.fields) == ["application", "integrations"]
    undescribed = []
    for name, kind in schema.type_map.items():
        if name.startswith("__") or name in ("String", "Boolean", "ID", "Int", "Float"):
            continue
        if not kind.description:
            undescribed.append(name)
        for field_name, field in getattr(kind, "fields", {}).items():
            if not field.description:
                undescribed.append(f"{name}.{field_name}")
    assert undescribed == []


def test_the_meta_integration_has_every_property_of_design_section_2() -> None:
    schema = graphql.build_schema(meta_schema.as_str())
    integration = schema.type_map["Integration"]
    assert isinstance(integration, graphql.GraphQLObjectType)
    assert sorted(integration.fields) == sorted(
        [
            "id",
            "createdDate",
            "updatedDate",
            "permissions",
            "scope",
            "targets",
            "status",
            "startDate",
            "accessToken",
            "application",
            "source",
            "team",
            "provider",
            "entity",
        ]
    )
