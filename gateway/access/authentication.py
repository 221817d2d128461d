"""Who is calling: an access token turned into the calling integration's Grant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.access.grant import Grant, IntegrationStatus, Scope, Targets, effective_status
from gateway.access.tokens import digest, digests_equal
from gateway.coltypes import utcnow
from gateway.request_db import Prepared, RequestDB

_integrations = models.table_of(models.Integration)
_grants = models.table_of(models.IntegrationPermission)
_targets = models.table_of(models.IntegrationTarget)
_permissions = models.table_of(models.Permission)


_GRANT_COLUMNS = (
    _integrations.c.id,
    _integrations.c.source_id,
    _integrations.c.scope,
    _integrations.c.status,
    _integrations.c.start_date,
)


async def load_grant(conn: AsyncConnection, token: str) -> Grant | None:
    """The Grant of the integration whose token is `token`, or None for an unknown token.

    The lookup is by digest (indexed); the digests are then compared in constant time.
    """
    wanted = digest(token)
    rows = (await conn.execute(_GRANT_BY_DIGEST, {"digest": wanted})).all()
    return _grant_of_rows(wanted, rows)


async def request_grant(db: RequestDB, token: str, wanted: str | None = None) -> Grant | None:
    """`load_grant` on a request's connection, the first statement of its read transaction;
    on SQLite one call into the driver's thread (`RequestDB.read`). `wanted` is the token's
    digest when it is known already."""
    if not db.on_driver:
        return await load_grant(await db.connection(), token)
    wanted = wanted or digest(token)
    rows = await db.read([(_prepared(db.engine.dialect), {"digest": wanted})])
    return _grant_of_row(wanted, rows[0])


def gated_statement(dialect: sa.Dialect, grant: Grant, then: Sequence[Prepared]) -> Prepared:
    """One statement, for SQLite's driver, that reads the grant row of the token whose digest
    is bound as `digest` (`_grant_row_statement`) and, only while that row is still `grant`
    as it was when `then` was proven for it (ACTIVE with no start date still to come, the same
    integration, source, scope and permissions), the value of each statement of `then`, as a
    scalar subquery behind a `CASE` that SQLite evaluates only when its condition holds: a
    changed, disabled, not yet started or unknown grant reads no graph data; `now` is bound to
    the time of the request. Its row: the grant row's columns, 1 when the condition held (else
    0), then one value per statement of `then` (null when it did not run).

    One statement reads one snapshot without a transaction around it, and is one call into the
    driver with a single step for its row: BEGIN, a second statement and ROLLBACK each took the
    GIL from the event loop again, a context switch or two each under load."""
    base = _prepared(dialect)
    expected = {
        "id": _stored(_integrations.c.id, grant.integration_id, dialect),
        "source_id": _stored(_integrations.c.source_id, grant.source_id, dialect),
        "scope": grant.scope.value,
        "permissions": orjson.dumps(sorted(grant.permissions)).decode(),
    }
    # ACTIVE as `effective_status` decides: stored ACTIVE with no start date, or not DISABLED
    # with a start date that has passed by `now` (the time of the request, bound as the column
    # stores it: fixed-width text on SQLite, which compares as the times do).
    active = "(g.status = ? AND g.start_date IS NULL OR g.status <> ? AND g.start_date <= ?)"
    holds = " AND ".join([*(f"g.{column} = ?" for column in expected), active])
    values = [*expected.values(), IntegrationStatus.ACTIVE.value, IntegrationStatus.DISABLED.value]
    names: list[str] = []
    fixed: dict[str, Any] = {}

    def bind(params: Sequence[Any]) -> None:
        for value in params:
            name = f"p{len(names)}"
            names.append(name)
            fixed[name] = value

    def bind_holds() -> None:
        bind(values)
        names.append("now")

    columns = [f"CASE WHEN {holds} THEN 1 ELSE 0 END"]
    bind_holds()
    for statement in then:
        columns.append(f"CASE WHEN {holds} THEN ({statement.sql}) END")
        bind_holds()
        bind(statement.parameters())
    # Compiled statements and fixed column names; every value is bound. SQLite flattens a
    # plain subquery into the outer query, and then computes the grant row's permissions and
    # targets once for each reference to them (three times); with an OFFSET it reads the row
    # once (the flattener's rule 14), about 9 µs less a request.
    grant_row = f"{base.sql} LIMIT -1 OFFSET 0"
    sql = f"SELECT g.*, {', '.join(columns)} FROM ({grant_row}) AS g"  # noqa: S608
    names.extend(base.names)  # the grant row's own (the digest), last in the text
    binds = dict(base.binds)
    stored_time = _integrations.c.start_date.type.dialect_impl(dialect).bind_processor(dialect)
    if stored_time is not None:
        binds["now"] = stored_time
    return Prepared(
        sql,
        tuple(names),
        {**fixed, **base.fixed},
        binds,
        base.results + (None,) * len(columns),
    )


def gated_select(dialect: sa.Dialect, grant: Grant, then: Sequence[sa.Select[Any]]) -> Prepared:
    """`gated_statement` for PostgreSQL, built with SQLAlchemy from the plans' statements
    `then`: the grant row of the token whose digest is bound as `digest` and, behind a `CASE`
    whose condition is `gated_statement`'s (the same integration, source, scope and
    permissions, ACTIVE at `now`), the value of each statement as a scalar subquery, which
    PostgreSQL runs only when the condition holds (an uncorrelated subquery is an InitPlan,
    evaluated when its value is first needed). The same row as `gated_statement`'s."""
    g = _grant_row_statement(dialect.name).subquery("g")
    now = sa.bindparam("now", type_=_integrations.c.start_date.type)
    permissions = orjson.dumps(sorted(grant.permissions)).decode()
    holds = sa.and_(
        g.c.id == grant.integration_id,
        g.c.source_id == grant.source_id,
        g.c.scope == grant.scope.value,
        sa.cast(g.c.permissions, JSONB) == sa.cast(sa.literal(permissions, sa.Text), JSONB),
        sa.or_(
            sa.and_(g.c.status == IntegrationStatus.ACTIVE.value, g.c.start_date.is_(None)),
            sa.and_(g.c.status != IntegrationStatus.DISABLED.value, g.c.start_date <= now),
        ),
    )
    values = [
        sa.case((holds, statement.scalar_subquery())).label(f"value_{i}")
        for i, statement in enumerate(then)
    ]
    statement = sa.select(*g.c, sa.case((holds, 1), else_=0).label("holds"), *values)
    return Prepared.of(statement, dialect, ("digest", "now"))


def _stored(column: sa.Column[Any], value: Any, dialect: sa.Dialect) -> Any:
    """`value` as `column` stores it."""
    processor = column.type.bind_processor(dialect)
    return processor(value) if processor is not None else value


async def request_grant_gated(
    db: RequestDB, wanted: str, gated: Prepared
) -> tuple[Grant | None, list[Any] | None]:
    """The grant of the token whose digest is `wanted` and the values of the statements of
    `gated` (`gated_statement`, `gated_select`), read in one statement on the driver
    (`RequestDB.read_alone`); the values are None when the grant is no longer the one they
    were proven for (they were not read). No read transaction stays open."""
    found = await db.read_alone(gated, {"digest": wanted, "now": utcnow()})
    if not found:
        return None, None
    row = found[0]
    width = len(_GrantRow._fields)
    grant = _grant_of_row(wanted, [row[:width]])
    if grant is None or not row[width]:
        return grant, None
    return grant, list(row[width + 1 :])


class _GrantRow(NamedTuple):
    """The row of `_grant_row_statement` read on the driver (named as SQLAlchemy's are)."""

    id: Any
    source_id: Any
    scope: Any
    status: Any
    start_date: Any
    value: Any
    permissions: str  # a JSON array of slugs
    targets: str  # a JSON array of [id, kind]


def _grant_of_row(wanted: str, rows: list[tuple[Any, ...]]) -> Grant | None:
    """The Grant read by `_grant_row_statement` for the digest `wanted`, or None.

    A grant row with no start date makes the same Grant every time (it is immutable), so the
    Grant is kept per row, as it was read, in full: a change to any of its values is another
    row. Building one (two JSON arrays, frozen dataclasses, frozensets) cost a request about
    14 µs of the event loop's time, as much as the rest of the token's lookup.
    """
    if not rows:
        return None
    row = _GrantRow._make(rows[0])
    if not digests_equal(row.value, wanted):
        return None
    if row.start_date is None:
        found = _GRANTS.get(row)
        if found is not None:
            return found
    targets = [(target, kind) for target, kind in orjson.loads(row.targets)]
    grant = _make_grant(row, orjson.loads(row.permissions), targets)
    if row.start_date is None:  # with one, its status depends on the time of the request
        if len(_GRANTS) >= _GRANTS_KEPT:
            del _GRANTS[next(iter(_GRANTS))]  # the oldest
        _GRANTS[row] = grant
    return grant


_GRANTS: dict[_GrantRow, Grant] = {}
_GRANTS_KEPT = 4096


_PREPARED: dict[str, Prepared] = {}


def _prepared(dialect: sa.Dialect) -> Prepared:
    found = _PREPARED.get(dialect.name)
    if found is None:
        statement = _grant_row_statement(dialect.name)
        found = _PREPARED[dialect.name] = Prepared.of(statement, dialect, ("digest",))
    return found


def _grant_of_rows(wanted: str, rows: Any) -> Grant | None:
    """The Grant read by `_GRANT_BY_DIGEST` for the digest `wanted`, or None."""
    found = [r for r in rows if r.part == "integration"]
    if not found or not digests_equal(found[0].value, wanted):
        return None
    row = found[0]
    return _make_grant(
        row,
        [r.value for r in rows if r.part == "permission"],
        [(r.value, r.kind) for r in rows if r.part == "target"],
    )


def _grant_statement() -> sa.CompoundSelect[Any]:
    """One statement (one round trip) reading the integration of the token digest bound as
    `digest`, its permission slugs and its targets, each row tagged by `part`. Built once (a
    construct this size costs about a millisecond to build, more than running it)."""
    wanted = sa.bindparam("digest", type_=sa.String)
    owner = _integrations.alias("owner")
    of_token = sa.and_(owner.c.token_digest == wanted)
    nothing = sa.null()
    return sa.union_all(
        sa.select(
            sa.literal("integration").label("part"),
            *_GRANT_COLUMNS,
            _integrations.c.token_digest.label("value"),
            sa.cast(nothing, sa.String).label("kind"),
        ).where(_integrations.c.token_digest == wanted),
        sa.select(
            sa.literal("permission"),
            nothing,
            nothing,
            nothing,
            nothing,
            nothing,
            _permissions.c.slug,
            nothing,
        )
        .select_from(_permissions)
        .join(_grants, _grants.c.permission_id == _permissions.c.id)
        .join(owner, owner.c.id == _grants.c.integration_id)
        .where(of_token),
        sa.select(
            sa.literal("target"),
            nothing,
            nothing,
            nothing,
            nothing,
            nothing,
            sa.cast(_targets.c.target_id, sa.String),
            _targets.c.kind,
        )
        .select_from(_targets)
        .join(owner, owner.c.id == _targets.c.integration_id)
        .where(of_token),
    )


_GRANT_BY_DIGEST = _grant_statement()


def _grant_row_statement(dialect_name: str) -> sa.Select[Any]:
    """`_GRANT_BY_DIGEST` as one row, read on the driver: the integration's columns, its
    permission slugs and its targets as JSON arrays (text). Each row a statement returns is a
    step of SQLite's, between which the driver's thread gives the GIL back and must take it
    again from the event loop, a context switch or two each under load: one row, not one per
    permission and target, saves a dozen of them a request."""
    if dialect_name == "postgresql":
        return _grant_row_statement_postgresql()
    owner = _integrations
    target = sa.cast(_targets.c.target_id, sa.String)
    # in slug order, so that the text is the same for the same permissions (`gated_statement`)
    ordered = (
        sa.select(_permissions.c.slug)
        .join(_grants, _grants.c.permission_id == _permissions.c.id)
        .where(_grants.c.integration_id == owner.c.id)
        .order_by(_permissions.c.slug)
        .correlate(owner)  # a subquery in FROM correlates only when told
        .subquery()
    )
    slugs = sa.select(
        sa.func.coalesce(sa.func.json_group_array(ordered.c.slug), "[]")
    ).scalar_subquery()
    targets = (
        sa.select(
            sa.func.coalesce(
                sa.func.json_group_array(sa.func.json_array(target, _targets.c.kind)), "[]"
            )
        )
        .where(_targets.c.integration_id == owner.c.id)
        .scalar_subquery()
    )
    return sa.select(
        *_GRANT_COLUMNS,
        owner.c.token_digest.label("value"),
        slugs.label("permissions"),
        targets.label("targets"),
    ).where(owner.c.token_digest == sa.bindparam("digest", type_=sa.String))


def _grant_row_statement_postgresql() -> sa.Select[Any]:
    """`_grant_row_statement` for PostgreSQL (its JSON functions)."""
    owner = _integrations
    target = sa.cast(_targets.c.target_id, sa.String)
    # the permissions in slug order (`gated_select` compares them as JSON values)
    slug = _permissions.c.slug
    slugs = (
        sa.select(
            sa.cast(
                sa.func.coalesce(
                    sa.func.json_agg(aggregate_order_by(slug, slug)),
                    sa.literal_column("'[]'::json"),
                ),
                sa.Text,
            )
        )
        .join(_grants, _grants.c.permission_id == _permissions.c.id)
        .where(_grants.c.integration_id == owner.c.id)
    )
    pairs = sa.select(
        sa.cast(
            sa.func.coalesce(
                sa.func.json_agg(sa.func.json_build_array(target, _targets.c.kind)),
                sa.literal_column("'[]'::json"),
            ),
            sa.Text,
        )
    ).where(_targets.c.integration_id == owner.c.id)
    return sa.select(
        *_GRANT_COLUMNS,
        owner.c.token_digest.label("value"),
        slugs.scalar_subquery().label("permissions"),
        pairs.scalar_subquery().label("targets"),
    ).where(owner.c.token_digest == sa.bindparam("digest", type_=sa.String))


async def load_grant_by_id(conn: AsyncConnection, integration_id: str) -> Grant | None:
    """The Grant of integration `integration_id`, or None when it does not exist."""
    query = sa.select(*_GRANT_COLUMNS).where(_integrations.c.id == integration_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return await _grant(conn, row)


async def _grant(conn: AsyncConnection, row: sa.Row[*tuple[Any, ...]]) -> Grant:
    """The Grant of the integration `row` (its `_GRANT_COLUMNS`), with its permissions and
    targets."""
    slugs = (
        await conn.execute(
            sa.select(_permissions.c.slug)
            .join(_grants, _grants.c.permission_id == _permissions.c.id)
            .where(_grants.c.integration_id == row.id)
        )
    ).scalars()
    targets = await conn.execute(
        sa.select(_targets.c.target_id, _targets.c.kind).where(_targets.c.integration_id == row.id)
    )
    return _make_grant(row, list(slugs), [(t, k) for t, k in targets])


def _make_grant(row: Any, slugs: list[str], targets: list[tuple[str, str]]) -> Grant:
    """The Grant of integration `row` with its permission `slugs` and (id, kind) `targets`."""
    by_kind: dict[str, set[str]] = {"SCHOOL": set(), "COURSE": set(), "CLASS": set()}
    for target_id, kind in targets:
        by_kind[kind].add(target_id)
    status = effective_status(IntegrationStatus(row.status), row.start_date)
    scheduled = status is IntegrationStatus.INACTIVE and row.start_date is not None
    return Grant(
        integration_id=row.id,
        source_id=row.source_id,
        scope=Scope(row.scope),
        status=status,
        starts_at=row.start_date if scheduled else None,
        permissions=frozenset(slugs),
        targets=Targets(
            schools=frozenset(by_kind["SCHOOL"]),
            courses=frozenset(by_kind["COURSE"]),
            classes=frozenset(by_kind["CLASS"]),
        ),
    )
