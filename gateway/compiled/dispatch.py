"""Dispatch: answer an operation with compiled SQL when every field of it compiles.

`CompiledExecution` runs inside the guard's `on_execute` (it comes after `Guard` in the
extension list), so it sees the document with denied fields already replaced by `__typename`,
and the guard nulls them and adds their FORBIDDEN errors after it, exactly as for the resolver
path. When the compiler raises `Unsupported` nothing has run and the resolvers answer.

On PostgreSQL a failing statement aborts the request's transaction, so every compiled
statement runs inside a SAVEPOINT: if one fails, the savepoint is rolled back and the
resolver path still has a usable transaction.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from typing import Any

import orjson
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from gateway.compiled.compiler import Compiler, Page, RootPlan, Unsupported
from gateway.compiled.sqljson import DIALECTS
from gateway.errors import RequestTimeout
from gateway.graph.context import Context

log = logging.getLogger("gateway.compiled")

PLAN_CACHE_SIZE = 512


class PlanCache:
    """The compiled plans of recent operations, least recently used dropped first.

    A plan holds the grant's scope (source, integration, scope kind) as bound values and was
    compiled from the document after the guard's rewrite for the grant's permissions, so it is
    keyed by the document, the operation, the variables' values and all of those; a change to
    an integration's scope or permissions gives a different key, never a stale plan.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._plans: OrderedDict[Hashable, list[RootPlan]] = OrderedDict()

    def get(self, key: Hashable) -> list[RootPlan] | None:
        found = self._plans.get(key)
        if found is not None:
            self._plans.move_to_end(key)
        return found

    def put(self, key: Hashable, plans: list[RootPlan]) -> None:
        self._plans[key] = plans
        self._plans.move_to_end(key)
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)


PLANS = PlanCache(PLAN_CACHE_SIZE)
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
        key = (
            execution.query,
            execution.operation_name,
            orjson.dumps(execution.variables or {}, option=orjson.OPT_SORT_KEYS),
            grant.integration_id,
            grant.source_id,
            grant.scope,
            grant.permissions,
            dialect.name,
            settings.default_page_size,
            settings.max_page_size,
        )
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
            PLANS.put(key, plans)
        if plans is UNSUPPORTED:
            return None
        data: dict[str, Any] = {}
        conn = await context.db.connection()
        savepoint = await conn.begin_nested() if dialect.name == "postgresql" else None
        try:
            for plan in plans:
                if plan.statement is None:
                    data[plan.key] = plan.constant
                    continue
                value = (await context.db.execute(plan.statement)).scalar()
                data[plan.key] = orjson.loads(value) if isinstance(value, str) else value
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
