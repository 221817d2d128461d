"""Dispatch: answer an operation with compiled SQL when every field of it compiles.

`CompiledExecution` runs inside the guard's `on_execute` (it comes after `Guard` in the
extension list), so it sees the document with denied fields already replaced by `__typename`,
and the guard nulls them and adds their FORBIDDEN errors after it, exactly as for the resolver
path. When the compiler raises `Unsupported` nothing has run and the resolvers answer; so they
do, with the failure logged on `gateway.compiled`, if the compiler fails in any other way.

On PostgreSQL a failing statement aborts the request's transaction, so every compiled
statement runs inside a SAVEPOINT: if one fails, the savepoint is rolled back and the
resolver path still has a usable transaction.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable, Iterator
from dataclasses import replace
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from gateway.compiled.compiler import Compiler, Page, RootPlan, Unsupported
from gateway.compiled.sqljson import DIALECTS
from gateway.errors import RequestTimeout
from gateway.graph.context import Context
from gateway.request_db import Prepared, RequestDB

log = logging.getLogger("gateway.compiled")

PLAN_CACHE_SIZE = 512
T = TypeVar("T")


class PlanCache(Generic[T]):
    """The compiled plans of recent operations, least recently used dropped first.

    A plan holds the grant's scope (source, integration, scope kind) as bound values and was
    compiled from the document after the guard's rewrite for the grant's permissions, so it is
    keyed by the document, the operation, the variables' values and all of those; a change to
    an integration's scope or permissions gives a different key, never a stale plan.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._plans: OrderedDict[Hashable, T] = OrderedDict()

    def get(self, key: Hashable) -> T | None:
        found = self._plans.get(key)
        if found is not None:
            self._plans.move_to_end(key)
        return found

    def put(self, key: Hashable, plans: T) -> None:
        self._plans[key] = plans
        self._plans.move_to_end(key)
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)


PLANS: PlanCache[list[RootPlan]] = PlanCache(PLAN_CACHE_SIZE)
UNSUPPORTED: list[RootPlan] = []  # marks an operation the compiler refused (by identity)

COMPILED = "compiled"
RESOLVERS = "resolvers"


class CompiledExecution(SchemaExtension):
    """Answers the operation from compiled statements when it can (see the module docstring)."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if isinstance(context, Context):
            state = context.request.state
            state.execution = RESOLVERS
            if (
                context.settings.execution == "auto"
                and execution.result is None
                and context.grant is not None
                and execution.graphql_document is not None
            ):
                data = await self._answer(context)
                if data is not None:
                    execution.result = GraphQLExecutionResult(data=data, errors=None)
                    state.execution = COMPILED
        yield

    async def _answer(self, context: Context) -> dict[str, Any] | None:
        execution = self.execution_context
        settings = context.settings
        assert context.grant is not None
        assert execution.graphql_document is not None
        dialect = DIALECTS.get(context.db.engine.dialect.name)
        if dialect is None:
            return None
        grant = context.grant
        key = plan_key(
            context,
            execution.query,
            getattr(execution, "_provided_operation_name", execution.operation_name),
            execution.variables,
        )
        context.request.state.plan_key = key
        plans = PLANS.get(key)
        if plans is None:
            try:
                plans = Compiler(
                    execution.schema._schema,
                    execution.graphql_document,
                    execution.operation_name,
                    execution.variables,
                    grant,
                    dialect,
                    Page(settings.default_page_size, settings.max_page_size),
                ).compile()
            except Unsupported:
                plans = UNSUPPORTED
            except Exception:  # a compiler bug: the resolver path, the reference, still answers
                log.exception("the compiler failed on an operation; the resolvers answer it")
                plans = UNSUPPORTED
            else:
                plans = prepare(plans, context.db.engine.dialect)
            PLANS.put(key, plans)
        if plans is UNSUPPORTED:
            return None
        return await run_plans(context, plans)


def prepare(plans: list[RootPlan], dialect: sa.Dialect) -> list[RootPlan]:
    """`plans` with their statements compiled for the driver, on SQLite (see `run_plans`)."""
    if dialect.name != "sqlite":
        return plans
    return [
        replace(plan, prepared=Prepared.of(plan.statement, dialect))
        if plan.statement is not None
        else plan
        for plan in plans
    ]


def plan_key(
    context: Context, query: str | None, operation_name: str | None, variables: Any
) -> Hashable:
    """What a compiled plan depends on: the document, the operation the client named, the
    variables' values, everything of the grant that shapes the SQL or the guard's rewrite, the
    engine, and the settings that shape the SQL or judge the document."""
    grant = context.grant
    assert grant is not None
    settings = context.settings
    return (
        query,
        operation_name,
        orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS),
        grant.integration_id,
        grant.source_id,
        grant.scope,
        grant.permissions,
        context.db.engine.dialect.name,
        # everything else a full execution judged the operation by (several apps with
        # different limits can share a process: the tests do)
        settings.default_page_size,
        settings.max_page_size,
        settings.max_depth,
        settings.max_aliases,
        settings.max_tokens,
        settings.max_document_bytes,
        settings.max_cost,
        settings.max_list_length,
        settings.introspection,
    )


async def run_plans(context: Context, plans: list[RootPlan]) -> dict[str, Any] | None:
    """The operation's `data` from its compiled plans; None (logged) when a statement failed,
    with the request's transaction still usable for the resolvers."""
    db = context.db
    if db.on_driver and all(p.prepared is not None or p.statement is None for p in plans):
        return await _run_on_driver(db, plans)
    dialect = db.engine.dialect.name
    values: list[Any] = []
    conn = await db.connection()
    savepoint = await conn.begin_nested() if dialect == "postgresql" else None
    try:
        for plan in plans:
            if plan.statement is not None:
                values.append((await db.execute(plan.statement)).scalar())
        data = _data(plans, iter(values))
    except RequestTimeout:
        raise
    except Exception:
        if savepoint is not None:
            await savepoint.rollback()
        log.exception("compiled statement failed; the resolvers answer instead")
        return None
    if savepoint is not None:
        await savepoint.commit()
    return data


async def _run_on_driver(db: RequestDB, plans: list[RootPlan]) -> dict[str, Any] | None:
    """`run_plans` on SQLite's driver: every statement in one call into its thread."""
    statements = [(plan.prepared, None) for plan in plans if plan.prepared is not None]
    try:
        results = await db.read(statements)
    except RequestTimeout:
        raise
    except Exception:
        log.exception("compiled statement failed; the resolvers answer instead")
        return None
    # as `.scalar()`: the first column of the first row, null when there is no row
    return _data(plans, (rows[0][0] if rows else None for rows in results))


def _data(plans: list[RootPlan], values: Iterator[Any]) -> dict[str, Any]:
    """The operation's `data`: each plan's constant, or the JSON its statement gave (`values`,
    one per statement, in order)."""
    data: dict[str, Any] = {}
    for plan in plans:
        if plan.statement is None:
            data[plan.key] = plan.constant
        else:
            value = next(values)
            data[plan.key] = orjson.loads(value) if isinstance(value, str) else value
    return data


# Plans proven clean: answered by the compiled path with no error at all (no denied field, no
# bad input) for this very key. Such an operation passed parsing, validation, the input checks,
# the limits and the guard's permission walk for exactly this document, variables and grant, so
# a request with the same key and an ACTIVE grant is answered from its plans without running
# Strawberry again.
CLEAN: PlanCache[tuple[list[RootPlan], str | None]] = PlanCache(PLAN_CACHE_SIZE)


def note_clean(context: Context, result: Any) -> None:
    """After a full execution: remember the plans of a compiled, error-free answer."""
    state = context.request.state
    key = getattr(state, "plan_key", None)
    if key is None or getattr(state, "execution", None) != COMPILED or result.errors:
        return
    plans = PLANS.get(key)
    if plans is not None and plans is not UNSUPPORTED:
        CLEAN.put(key, (plans, getattr(state, "operation_name", None)))


async def answer_clean(
    context: Context, query: str | None, operation_name: str | None, variables: Any
) -> dict[str, Any] | None:
    """The data of an operation whose plans are proven clean for this grant, or None (then the
    full execution runs)."""
    grant = context.grant
    if context.settings.execution != "auto" or grant is None or not grant.active:
        return None
    found = CLEAN.get(plan_key(context, query, operation_name, variables))
    if found is None:
        return None
    plans, name = found
    data = await run_plans(context, plans)
    if data is not None:
        state = context.request.state
        state.execution = COMPILED
        state.operation_name = name
        state.operation_type = "query"
    return data
