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

import json
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable, Iterator, MutableMapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from gateway.access.authentication import (
    gated_select,
    gated_statement,
    request_grant,
    request_grant_gated,
)
from gateway.access.grant import Grant
from gateway.access.tokens import digest_once
from gateway.compiled.compiler import Compiler, Page, RootPlan, Unsupported
from gateway.compiled.sqljson import DIALECTS
from gateway.errors import RequestTimeout
from gateway.graph.context import Context
from gateway.request_db import Prepared, RequestDB
from gateway.settings import Settings

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

    def discard(self, key: Hashable) -> None:
        self._plans.pop(key, None)


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
        variables = _variables_key(execution.variables)
        if variables is None:
            return None
        request = (
            execution.query,
            getattr(execution, "_provided_operation_name", execution.operation_name),
            variables,
        )
        key = grant_plan_key(grant, settings, context.db.engine.dialect.name, *request)
        state = context.request.state
        state.plan_key, state.plan_request = key, request
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
        data = await run_plans(context, plans)
        if data is None and getattr(state, "beyond_engine", False):
            PLANS.put(key, UNSUPPORTED)  # the same statement would fail the same way
        return data


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


def _variables_key(variables: Any) -> str | None:
    """The variables' values as a key: their JSON with sorted keys, by the standard library's
    encoder, which keeps apart what its decoder let in (NaN, ±Infinity, integers past 64 bits),
    where orjson would write null or refuse; None for values it cannot write (nesting past the
    recursion limit), which are then never cached."""
    if not variables:
        return "{}"
    try:
        return json.dumps(variables, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return None


def grant_plan_key(
    grant: Grant,
    settings: Settings,
    dialect: str,
    query: str | None,
    operation_name: str | None,
    variables: str,
) -> Hashable:
    """What a compiled plan depends on: the document, the operation the client named, the
    variables' values (`_variables_key`), everything of the grant that shapes the SQL or the
    guard's rewrite, the engine, and the settings that shape the SQL or judge the document."""
    return (
        query,
        operation_name,
        variables,
        grant.integration_id,
        grant.source_id,
        grant.scope,
        grant.permissions,
        dialect,
        # everything else a full execution judged the operation by (several apps with
        # different limits can share a process: the tests do)
        settings.default_page_size,
        settings.max_page_size,
        settings.max_depth,
        settings.max_aliases,
        settings.max_tokens,
        settings.max_fields,
        settings.max_document_bytes,
        settings.max_cost,
        settings.max_list_length,
        settings.introspection,
    )


async def run_plans(
    context: Context, plans: list[RootPlan], *, verbatim: bool = False
) -> dict[str, Any] | None:
    """The operation's `data` from its compiled plans; None (logged) when a statement failed,
    with the request's transaction still usable for the resolvers. On SQLite's driver the read
    transaction ends with the statements (a compiled answer reads nothing more), unless other
    operations of a batch follow, which read the same snapshot; with `verbatim` their JSON
    goes into the response as SQLite wrote it (`_data`)."""
    db = context.db
    if db.on_driver and _all_prepared(plans):
        end = not getattr(context.request.state, "batch", False)
        return await _run_on_driver(context, plans, end, verbatim)
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
    except Exception as error:
        if savepoint is not None:
            await savepoint.rollback()
        _failed(context, error)
        return None
    if savepoint is not None:
        await savepoint.commit()
    return data


def _all_prepared(plans: list[RootPlan]) -> bool:
    """Whether SQLite's driver can run every statement of `plans` (`prepare`)."""
    return all(p.prepared is not None or p.statement is None for p in plans)


def _driver_statements(plans: list[RootPlan]) -> list[Prepared]:
    return [plan.prepared for plan in plans if plan.prepared is not None]


async def _run_on_driver(
    context: Context, plans: list[RootPlan], end: bool, verbatim: bool
) -> dict[str, Any] | None:
    """`run_plans` on SQLite's driver: every statement in one call into its thread."""
    try:
        results = await context.db.read([(p, None) for p in _driver_statements(plans)], end=end)
    except RequestTimeout:
        raise
    except Exception as error:
        _failed(context, error)
        return None
    return _data(plans, _scalars(results), verbatim)


_ENGINE_LIMITS = ("parser stack overflow", "Expression tree is too large")
"""What SQLite says of a statement nested deeper than it parses (its parser's stack, 100 deep
in builds before 3.46; its expression depth, 1000): an operation within the gateway's own
limits can reach them (a chain enrollments → person → enrollments, three times)."""


def _failed(context: Context, error: Exception) -> None:
    """Log why a compiled statement failed (the resolvers answer instead). An operation nested
    deeper than the database parses is not a fault: a warning, and `_answer` keeps it from
    the compiled path from now on (the request's `state.beyond_engine`); anything else is
    logged with its traceback."""
    if _beyond_engine(error):
        log.warning(
            "compiled statement nested deeper than the database parses; the resolvers answer "
            "this operation"
        )
        context.request.state.beyond_engine = True
        return
    log.exception("compiled statement failed; the resolvers answer instead", exc_info=error)


def _beyond_engine(error: Exception) -> bool:
    """Whether `error` is SQLite refusing a statement nested deeper than it parses."""
    cause = getattr(error, "orig", error)  # SQLAlchemy wraps the driver's error
    return isinstance(cause, sqlite3.OperationalError) and str(cause).startswith(_ENGINE_LIMITS)


def _scalars(results: list[list[tuple[Any, ...]]]) -> Iterator[Any]:
    """As `.scalar()`: the first column of each statement's first row, null when none."""
    return (rows[0][0] if rows else None for rows in results)


def _data(plans: list[RootPlan], values: Iterator[Any], verbatim: bool = False) -> dict[str, Any]:
    """The operation's `data`: each plan's constant, or the JSON its statement gave (`values`,
    one per statement, in order).

    `verbatim` keeps SQLite's JSON text as it is, to be written into the response unparsed
    (`orjson.Fragment`): only for an answer nothing changes afterwards (no denied field to
    null). SQLite writes JSON as orjson does (no spaces, the same escapes: a test holds them to
    it), and the compiled fields are strings, integers, booleans and nulls, never floats; a
    plan that passes stored JSON through (`RootPlan.verbatim` false) is parsed all the same.
    """
    data: dict[str, Any] = {}
    for plan in plans:
        if plan.statement is None:
            data[plan.key] = plan.constant
        else:
            value = next(values)
            if isinstance(value, str):
                kept = verbatim and plan.verbatim
                value = orjson.Fragment(value) if kept else orjson.loads(value)
            data[plan.key] = value
    return data


# Plans proven clean: answered by the compiled path with no error at all (no denied field, no
# bad input) for this very key. Such an operation passed parsing, validation, the input checks,
# the limits and the guard's permission walk for exactly this document, variables and grant, so
# a request with the same key and an ACTIVE grant is answered from its plans without running
# Strawberry again.
CLEAN: PlanCache[tuple[list[RootPlan], str | None]] = PlanCache(PLAN_CACHE_SIZE)


@dataclass(frozen=True, slots=True)
class _Known:
    """A clean answer's plans as a token asks for them (`BY_TOKEN`)."""

    key: Hashable  # the plan key (`grant_plan_key`) the grant must give
    plans: list[RootPlan]
    operation_name: str | None
    gated: Prepared  # the grant and the plans' statements in one (`gated_statement`)


# The same, by the token's digest, the engine and the request, read on the driver: the token's
# grant and the plans' statements are read in one statement, the plans' only while the grant is
# still the one they were proven for (`gated_statement`, `gated_select`, `grant_and_clean`).
BY_TOKEN: PlanCache[_Known] = PlanCache(PLAN_CACHE_SIZE)


def note_clean(context: Context, result: Any) -> None:
    """After a full execution: remember the plans of a compiled, error-free answer."""
    state = context.request.state
    key = getattr(state, "plan_key", None)
    if key is None or getattr(state, "execution", None) != COMPILED or result.errors:
        return
    plans = PLANS.get(key)
    if plans is not None and plans is not UNSUPPORTED:
        name = getattr(state, "operation_name", None)
        CLEAN.put(key, (plans, name))
        _remember_for_token(context, state.plan_request, key, plans, name)


def _remember_for_token(
    context: Context,
    request: tuple[str | None, str | None, str],
    key: Hashable,
    plans: list[RootPlan],
    operation_name: str | None,
) -> None:
    """Remember a clean answer's plans for the calling token (`BY_TOKEN`), when the driver
    can run them with its grant in one statement (`RequestDB.reads_alone`)."""
    grant, db = context.grant, context.db
    if context.token is None or grant is None or not db.reads_alone:
        return
    dialect = db.engine.dialect
    if dialect.name == "sqlite":
        if not _all_prepared(plans):
            return
        gated = gated_statement(dialect, grant, _driver_statements(plans))
    else:
        statements = [plan.statement for plan in plans if plan.statement is not None]
        try:
            gated = gated_select(dialect, grant, statements)
        except Exception:  # answered as before, by the grant lookup and the clean plans
            log.exception("the plans of a clean answer could not be gated")
            return
    wanted = digest_once(context.request.scope, context.token)
    BY_TOKEN.put((wanted, dialect.name, *request), _Known(key, plans, operation_name, gated))


@dataclass(frozen=True, slots=True)
class Prefetched:
    """A clean answer read together with the grant."""

    data: dict[str, Any]
    operation_name: str | None


async def grant_and_clean(
    db: RequestDB,
    settings: Settings,
    token: str,
    wanted: str,
    request: tuple[str | None, str | None, Any] | None,
) -> tuple[Grant | None, Prefetched | None]:
    """The grant of `token` (whose digest is `wanted`) and, when `request` (query, operation
    name, variables) is one whose answer was proven clean for this token, that answer, read in
    the same statement on the driver (`RequestDB.read_alone`): its statements run only while
    the grant is still the one they were proven for (`gated_statement`, `gated_select`), so a
    refused or changed grant reads no graph data; the grant is then read again, in the read
    transaction of the full execution the request goes on to."""
    if request is None or settings.execution != "auto" or not db.reads_alone:
        return await request_grant(db, token, wanted), None
    query, operation_name, variables = request
    variables_key = _variables_key(variables)
    if variables_key is None:
        return await request_grant(db, token, wanted), None
    asked = (query, operation_name, variables_key)
    dialect = db.engine.dialect.name
    known = BY_TOKEN.get((wanted, dialect, *asked))  # its statement is written for one engine
    if known is None:
        return await request_grant(db, token, wanted), None

    def accept(grant: Grant) -> bool:
        return grant.active and known.key == grant_plan_key(
            grant, settings, dialect, query, operation_name, variables_key
        )

    try:
        grant, values = await request_grant_gated(db, wanted, known.gated)
    except RequestTimeout:
        raise
    except Exception as error:
        if _beyond_engine(error):
            # the grant's part nests the clean statements one level deeper: this operation
            # goes to the resolvers from now on, not to this failure on every request
            log.warning(
                "compiled statement with its grant nested deeper than the database parses; "
                "the resolvers answer this operation"
            )
            PLANS.put(known.key, UNSUPPORTED)
            CLEAN.discard(known.key)
            BY_TOKEN.discard((wanted, dialect, *asked))
        else:
            log.exception("compiled statement failed; the resolvers answer instead")
        return await request_grant(db, token, wanted), None
    if grant is None:
        return None, None  # an unknown token: nothing more is read
    if values is None or not accept(grant):
        return await request_grant(db, token, wanted), None
    # SQLite's JSON text goes into the response as it is; PostgreSQL's is parsed (`_data`)
    data = _data(known.plans, iter(values), verbatim=db.on_driver)
    return grant, Prefetched(data, known.operation_name)


async def answer_clean(
    context: Context, query: str | None, operation_name: str | None, variables: Any
) -> dict[str, Any] | None:
    """The data of an operation whose plans are proven clean for this grant, or None (then the
    full execution runs)."""
    grant = context.grant
    if context.settings.execution != "auto" or grant is None or not grant.active:
        return None
    variables_key = _variables_key(variables)
    if variables_key is None:
        return None
    request = (query, operation_name, variables_key)
    key = grant_plan_key(grant, context.settings, context.db.engine.dialect.name, *request)
    found = CLEAN.get(key)
    if found is None:
        return None
    plans, name = found
    data = await run_plans(context, plans, verbatim=True)
    if data is not None:
        _served_compiled(context, name)
        # another token of the integration (a new one, after a rotation) gets the one call
        _remember_for_token(context, request, key, plans, name)
    return data


def answer_prefetched(context: Context, prefetched: Prefetched) -> dict[str, Any]:
    """The data of a clean answer read with the grant (`grant_and_clean`)."""
    _served_compiled(context, prefetched.operation_name)
    return prefetched.data


def _served_compiled(context: Context, operation_name: str | None) -> None:
    """Note for the access log that a clean answer served the request."""
    note_served_compiled(context.request.scope["state"], operation_name)


def note_served_compiled(state: MutableMapping[str, Any], operation_name: str | None) -> None:
    """Note in a request's ASGI state, for the access log, that a clean answer served it."""
    state["execution"] = COMPILED
    state["operation_name"] = operation_name
    state["operation_type"] = "query"
