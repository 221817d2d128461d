"""The two resolver shapes every edge uses: a batched nested page and a batched to-one load."""

from __future__ import annotations

from typing import Any, Protocol

from strawberry.types import Info

from gateway.access.grant import Grant
from gateway.graph.context import Context
from gateway.graph.pagination import Connection, connection, page_args
from gateway.relations import ManyEdge, OneEdge


class Filter(Protocol):
    """A filter input: turns itself into SQL predicates."""

    def predicates(self, grant: Grant) -> list[Any]: ...


async def many(
    info: Info[Context, Any],
    edge: ManyEdge,
    parent_id: str,
    first: int | None,
    after: str | None,
    filter: Filter | None,
) -> Connection[Any]:
    """One parent's page of `edge`, loaded together with every sibling parent's page."""
    ctx = info.context
    kind = edge.table.name
    args = page_args(kind, first, after, ctx.settings.default_page_size, ctx.settings.max_page_size)
    predicates = filter.predicates(ctx.require_grant()) if filter is not None else []
    filter_key = repr(filter)
    rows = await ctx.loaders.edge_page(edge, filter_key, predicates, args).load(parent_id)

    async def count() -> int:
        return await ctx.loaders.edge_count(edge, filter_key, predicates).load(parent_id)

    return connection(kind, rows, args.first, count)


async def one(info: Info[Context, Any], edge: OneEdge, target_id: str | None) -> Any:
    """The object a foreign key points to, or None when it is unset or not visible."""
    if target_id is None:
        return None
    return await info.context.loaders.by_id(edge.table).load(target_id)
