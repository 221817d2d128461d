"""One request's context: who is calling (the Grant), its database connection and loaders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from gateway import queries
from gateway.access.grant import Grant
from gateway.graph.pacing import PacedLoader, Pacer
from gateway.graph.pagination import PageArgs
from gateway.relations import ManyEdge
from gateway.request_db import RequestDB
from gateway.settings import Settings

Predicate = queries.Predicate


class Loaders:
    """Per-request batch loaders: one per (edge or table, arguments), so that every parent at a
    level shares one statement."""

    def __init__(self, db: RequestDB, grant: Grant, pacer: Pacer) -> None:
        self.db = db
        self.grant = grant
        self.pacer = pacer
        self._loaders: dict[tuple[Any, ...], PacedLoader[Any, Any]] = {}

    def edge_page(
        self, edge: ManyEdge, filter_key: str, filters: Sequence[Predicate], args: PageArgs
    ) -> PacedLoader[str, list[queries.Record]]:
        """Pages of `edge` for many parents, one statement per batch."""
        key = ("page", edge.name, filter_key, args.key)
        loader = self._loaders.get(key)
        if loader is None:

            async def load(parents: list[str]) -> list[list[queries.Record]]:
                pages = await queries.fetch_edge_pages(
                    self.db, self.grant, edge, parents, filters, args.first, args.after
                )
                return [pages.get(p, []) for p in parents]

            loader = self._loaders[key] = PacedLoader(load, self.pacer)
        return loader

    def edge_count(
        self, edge: ManyEdge, filter_key: str, filters: Sequence[Predicate]
    ) -> PacedLoader[str, int]:
        """`totalCount` of `edge` for many parents, one statement per batch."""
        key = ("count", edge.name, filter_key)
        loader = self._loaders.get(key)
        if loader is None:

            async def load(parents: list[str]) -> list[int]:
                counts = await queries.count_edges(self.db, self.grant, edge, parents, filters)
                return [counts.get(p, 0) for p in parents]

            loader = self._loaders[key] = PacedLoader(load, self.pacer)
        return loader

    def node_types(self, type_names: tuple[str, ...]) -> PacedLoader[str, str | None]:
        """The GraphQL type name of each visible id (among `type_names`), one statement."""
        key = ("node", type_names)
        loader = self._loaders.get(key)
        if loader is None:

            async def load(ids: list[str]) -> list[str | None]:
                found = await queries.find_types(self.db, self.grant, ids, type_names)
                return [found.get(i) for i in ids]

            loader = self._loaders[key] = PacedLoader(load, self.pacer)
        return loader

    def by_id(self, table: sa.Table) -> PacedLoader[str, queries.Record | None]:
        """Visible rows of `table` by id (None for invisible or missing ids)."""
        key = ("id", table.name)
        loader = self._loaders.get(key)
        if loader is None:

            async def load(ids: list[str]) -> list[queries.Record | None]:
                found = await queries.fetch_by_ids(self.db, self.grant, table, ids)
                return [found.get(i) for i in ids]

            loader = self._loaders[key] = PacedLoader(load, self.pacer)
        return loader


@dataclass
class Context:
    """What every resolver sees as `info.context`."""

    request: Request
    response: Response
    settings: Settings
    db: RequestDB
    request_id: str
    token: str | None = None
    token_sent: bool = False
    grant: Grant | None = None
    # Slices of this request's work on the event loop, shared by its execution and loaders.
    pacer: Pacer = field(default_factory=Pacer, repr=False)
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def loaders(self) -> Loaders:
        """This request's loaders (the guard guarantees a grant before any graph resolver)."""
        if self._loaders is None:
            if self.grant is None:
                raise RuntimeError("graph data was requested without a grant")
            self._loaders = Loaders(self.db, self.grant, self.pacer)
        return self._loaders

    def require_grant(self) -> Grant:
        """The grant; the guard ran before any resolver, so it is always there."""
        if self.grant is None:
            raise RuntimeError("a resolver ran without a grant: the guard was bypassed")
        return self.grant
