"""create_app(settings) -> Starlette: routes, lifespan and middleware of the gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway import graphiql
from gateway.admin.app import create_admin_app
from gateway.db import create_engine, create_schema, ping
from gateway.graph.schema import build_schema
from gateway.graph.view import GraphEndpoint, GraphView
from gateway.limits import Limits
from gateway.logs import AccessLogMiddleware, configure_logging
from gateway.meta.app import create_meta_app
from gateway.middleware import (
    BodyLimitMiddleware,
    GraphCompressionMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from gateway.ratelimit import RateLimitMiddleware, TokenBuckets
from gateway.runtime import pace_garbage_collector
from gateway.settings import Settings, load_settings
from gateway.vault import Vault


def create_app(settings: Settings | None = None) -> Starlette:
    """The gateway's ASGI application for `settings` (read from the environment if omitted)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    engine = create_engine(settings.database_url, echo=settings.sql_echo)
    schema = build_schema(
        introspection=settings.introspection, limits=Limits.from_settings(settings)
    )
    graph = GraphEndpoint(
        GraphView(schema, settings), engine, timeout=settings.request_timeout_seconds
    )
    vault = Vault.from_settings(settings)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await ping(engine)
        except Exception:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        pace_garbage_collector()
        await create_schema(engine)
        try:
            yield {}
        finally:
            await engine.dispose()

    app = Starlette(
        routes=[
            # Every method reaches the view, which answers 405 itself (as a GraphQL error body,
            # `Allow: GET, POST`): OPTIONS and TRACE too (a CORS preflight is answered before).
            Route("/graphql", graph, methods=None),
            Route(
                "/admin/graphql",
                create_admin_app(
                    lambda: engine,
                    vault,
                    graphiql=settings.graphiql,
                    graphiql_cdn=settings.graphiql_cdn,
                ),
                methods=["GET", "POST"],
            ),
            Route(
                "/meta/graphql",
                create_meta_app(
                    lambda: engine,
                    vault,
                    graphiql=settings.graphiql,
                    graphiql_cdn=settings.graphiql_cdn,
                    limits=Limits.from_settings(settings),
                ),
                methods=["GET", "POST"],
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *([graphiql.asset_route()] if settings.graphiql else []),
        ],
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    # Listed innermost first (each `add_middleware` wraps what is there): the view's answers
    # are compressed, the body cap and the rate limit run before the view, CORS answers
    # preflights before the rate limit counts them, and every response (a 413 or 429 too)
    # gets the security headers, the request id and its access-log line.
    app.add_middleware(GraphCompressionMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        seconds=settings.body_timeout_seconds,
    )
    app.add_middleware(
        RateLimitMiddleware,
        buckets=TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "WWW-Authenticate"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    if settings.trusted_proxies:
        # Outermost, so that the rate limit and the access log see the client it names. The
        # server does the same (`proxy_options`); doing it here too keeps the setting true
        # under a server that passes X-Forwarded-For through untouched (a second pass changes
        # nothing: the client it found is not a trusted proxy).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's `proxy_headers` and `forwarded_allow_ips` for GATEWAY_TRUSTED_PROXIES: by
    default no peer's X-Forwarded-For is believed (uvicorn's own default believes loopback's,
    which lets any local caller choose the address its rate limit and log line are keyed on)."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
    }
