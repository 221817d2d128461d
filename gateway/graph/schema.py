"""The Graph API's root query and the Strawberry schema object."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
import strawberry
from strawberry.extensions import ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from gateway import queries
from gateway.access.gates import TYPE_PERMISSIONS
from gateway.coltypes import JSONText
from gateway.errors import BadUserInput
from gateway.graph import types as t
from gateway.graph.context import Context
from gateway.graph.directives import gate
from gateway.graph.errors import ErrorShaping
from gateway.graph.guard import Guard
from gateway.graph.integration import Integration, load_integration
from gateway.graph.pagination import Connection, connection, page_args
from gateway.limits import Limits, RequestLimits
from gateway.logs import OperationLog
from gateway.relations import TABLES

Ctx = Info[Context, Any]
First = t.First
After = t.After


def _uuid(value: str, argument: str = "id") -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadUserInput(
            f"`{argument}` {value[:64]!r} is not a UUID "
            "(ids look like 3f2b8c1e-0d5a-4c6e-9b7a-1e2d3c4b5a69)",
            argument=argument,
        ) from None


async def _root(
    info: Ctx,
    type_name: str,
    first: int | None,
    after: str | None,
    filter: Any,
) -> Connection[Any]:
    ctx = info.context
    grant = ctx.require_grant()
    args = page_args(first, after, ctx.settings.default_page_size, ctx.settings.max_page_size)
    table = TABLES[type_name]
    predicates: Sequence[Any] = filter.predicates() if filter is not None else []
    rows = await queries.fetch_page(ctx.db, grant, table, predicates, args.first, args.after)

    async def count() -> int:
        return await queries.count_rows(ctx.db, grant, table, predicates)

    return connection(rows, args.first, count)


async def _lookup(info: Ctx, type_name: str, id: str) -> Any:
    return await info.context.loaders.by_id(TABLES[type_name]).load(_uuid(id))


IdArg = Annotated[strawberry.ID, strawberry.argument(description="The object's UUID.")]


def _list_description(what: str) -> str:
    return f"Every visible {what}, one page at a time, ordered by id."


def _get_description(what: str) -> str:
    return f"One {what} by id; null when it does not exist or is outside the integration's scope."


@strawberry.type(description="The Graph API: everything the calling integration may read.")
class Query:
    @strawberry.field(
        description="The calling integration (answers in every status, with no permission)."
    )
    async def integration(self, info: Ctx) -> Integration:
        ctx = info.context
        assert ctx.token is not None
        return await load_integration(ctx.db, ctx.require_grant(), ctx.token)

    @strawberry.field(
        description=_list_description("district"), directives=gate("Query", "districts", "District")
    )
    async def districts(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        filter: t.DistrictFilterArg = None,
    ) -> Connection[t.District] | None:
        return await _root(info, "District", first, after, filter)

    @strawberry.field(
        description=_list_description("school"), directives=gate("Query", "schools", "School")
    )
    async def schools(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        filter: t.SchoolFilterArg = None,
    ) -> Connection[t.School] | None:
        return await _root(info, "School", first, after, filter)

    @strawberry.field(
        description=_list_description("session"), directives=gate("Query", "sessions", "Session")
    )
    async def sessions(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        filter: t.SessionFilterArg = None,
    ) -> Connection[t.Session] | None:
        return await _root(info, "Session", first, after, filter)

    @strawberry.field(
        description=_list_description("course"), directives=gate("Query", "courses", "Course")
    )
    async def courses(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        filter: t.CourseFilterArg = None,
    ) -> Connection[t.Course] | None:
        return await _root(info, "Course", first, after, filter)

    @strawberry.field(
        description=_list_description("class"), directives=gate("Query", "classes", "Class")
    )
    async def classes(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        filter: t.ClassFilterArg = None,
    ) -> Connection[t.Class] | None:
        return await _root(info, "Class", first, after, filter)

    @strawberry.field(
        description=_list_description("section"), directives=gate("Query", "sections", "Section")
    )
    async def sections(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        filter: t.SectionFilterArg = None,
    ) -> Connection[t.Section] | None:
        return await _root(info, "Section", first, after, filter)

    @strawberry.field(
        description=_list_description("person"), directives=gate("Query", "people", "Person")
    )
    async def people(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        filter: t.PersonFilterArg = None,
    ) -> Connection[t.Person] | None:
        return await _root(info, "Person", first, after, filter)

    @strawberry.field(
        description=_list_description("enrollment"),
        directives=gate("Query", "enrollments", "Enrollment"),
    )
    async def enrollments(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        filter: t.EnrollmentFilterArg = None,
    ) -> Connection[t.Enrollment] | None:
        return await _root(info, "Enrollment", first, after, filter)

    @strawberry.field(
        description=_list_description("agent"), directives=gate("Query", "agents", "Agent")
    )
    async def agents(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        filter: t.AgentFilterArg = None,
    ) -> Connection[t.Agent] | None:
        return await _root(info, "Agent", first, after, filter)

    @strawberry.field(
        description=_get_description("district"), directives=gate("Query", "district", "District")
    )
    async def district(self, info: Ctx, id: IdArg) -> t.District | None:
        return await _lookup(info, "District", id)

    @strawberry.field(
        description=_get_description("school"), directives=gate("Query", "school", "School")
    )
    async def school(self, info: Ctx, id: IdArg) -> t.School | None:
        return await _lookup(info, "School", id)

    @strawberry.field(
        description=_get_description("session"), directives=gate("Query", "session", "Session")
    )
    async def session(self, info: Ctx, id: IdArg) -> t.Session | None:
        return await _lookup(info, "Session", id)

    @strawberry.field(
        description=_get_description("course"), directives=gate("Query", "course", "Course")
    )
    async def course(self, info: Ctx, id: IdArg) -> t.Course | None:
        return await _lookup(info, "Course", id)

    @strawberry.field(
        name="class",
        description=_get_description("class"),
        directives=gate("Query", "class", "Class"),
    )
    async def class_(self, info: Ctx, id: IdArg) -> t.Class | None:
        return await _lookup(info, "Class", id)

    @strawberry.field(
        description=_get_description("section"), directives=gate("Query", "section", "Section")
    )
    async def section(self, info: Ctx, id: IdArg) -> t.Section | None:
        return await _lookup(info, "Section", id)

    @strawberry.field(
        description=_get_description("person"), directives=gate("Query", "person", "Person")
    )
    async def person(self, info: Ctx, id: IdArg) -> t.Person | None:
        return await _lookup(info, "Person", id)

    @strawberry.field(
        description=_get_description("enrollment"),
        directives=gate("Query", "enrollment", "Enrollment"),
    )
    async def enrollment(self, info: Ctx, id: IdArg) -> t.Enrollment | None:
        return await _lookup(info, "Enrollment", id)

    @strawberry.field(
        description=_get_description("agent"), directives=gate("Query", "agent", "Agent")
    )
    async def agent(self, info: Ctx, id: IdArg) -> t.Agent | None:
        return await _lookup(info, "Agent", id)

    @strawberry.field(
        description=(
            "Any visible object by id, whatever its type; null when it does not exist, is "
            "outside the integration's scope, or its type needs a permission not granted."
        )
    )
    async def node(self, info: Ctx, id: IdArg) -> t.Node | None:
        ctx = info.context
        grant = ctx.require_grant()
        wanted = _uuid(id)
        readable = tuple(name for name, slug in TYPE_PERMISSIONS.items() if grant.allows(slug))
        type_name = await ctx.loaders.node_types(readable).load(wanted)
        if type_name is None:
            return None
        row = await ctx.loaders.by_id(TABLES[type_name]).load(wanted)
        return _Typed(row, type_name) if row is not None else None  # type: ignore[return-value]  # a row stands in for the Node


class _Typed:
    """A row tagged with its GraphQL type name, so the `Node` interface can resolve it."""

    __slots__ = ("_row", "type_name")

    def __init__(self, row: Any, type_name: str) -> None:
        self._row = row
        self.type_name = type_name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


_CAMEL: dict[str, str] = {}


def _camel(name: str) -> str:
    found = _CAMEL.get(name)
    if found is None:
        head, *rest = name.split("_")
        found = _CAMEL[name] = head + "".join(part.title() for part in rest)
    return found


def resolve_attribute(source: Any, name: str) -> Any:
    """Default field resolver: row attributes (JSON decoded on first use), or camelCase keys
    of JSON objects."""
    if type(source) is dict:
        return source.get(_camel(name))
    value = getattr(source, name)
    if type(value) is JSONText:
        return orjson.loads(str(value))  # orjson takes only exact str
    return value


class GatewaySchema(strawberry.Schema):
    """Strawberry's schema, minus its own error logging: `ErrorShaping` logs what is unexpected,
    and client errors (401, 403, FORBIDDEN, bad input) are not server errors."""

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None


def build_schema(*, introspection: bool = True, limits: Limits | None = None) -> strawberry.Schema:
    """The Graph API schema; the guard, the limits and error shaping run on every operation.

    Extensions are factories, never shared instances (DESIGN §8). `RequestLimits` parses the
    document (with its own cache, so `ParserCache` is not used) and adds the depth and alias
    rules that `ValidationCache` then caches with the document.
    """
    from strawberry.extensions import DisableIntrospection

    request_limits = limits or Limits.defaults()
    extensions: list[Any] = [
        ErrorShaping,
        Guard,
        lambda: RequestLimits(request_limits),
        lambda: ValidationCache(maxsize=256),
        OperationLog,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return GatewaySchema(
        query=Query,
        types=list(t.GRAPH_CLASSES.values()),
        extensions=extensions,
        config=StrawberryConfig(
            default_resolver=resolve_attribute,
            disable_field_suggestions=not introspection,
        ),
    )


schema = build_schema()
