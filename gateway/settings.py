"""The only reader of GATEWAY_* environment variables (and of a `.env` file)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the gateway; each field is read from `GATEWAY_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///gateway.db",
        description="SQLAlchemy async URL; postgresql+asyncpg://… for PostgreSQL.",
    )
    log_level: str = Field(default="INFO", description="Python logging level name.")
    sql_echo: bool = Field(default=False, description="Log every SQL statement.")
    default_page_size: int = Field(default=100, ge=1, description="`first` when omitted.")
    max_page_size: int = Field(default=1000, ge=1, description="The largest `first` accepted.")
    execution: Literal["auto", "resolvers"] = Field(
        default="auto",
        description="`auto` answers an operation with one compiled SQL statement per root "
        "field when the compiler supports every field of it, else with the resolvers; "
        "`resolvers` always uses the resolvers.",
    )
    introspection: bool = Field(default=True, description="Allow schema introspection.")
    graphiql: bool = Field(default=True, description="Serve GraphiQL to browsers.")
    graphiql_cdn: str = Field(
        default="",
        pattern=r"^(https?://[^/?#@\s]+(/[^?#\s]*)?)?$",
        description="Base URL of an npm CDN (unpkg-style paths) for GraphiQL's bundles; "
        "empty: the gateway serves them itself.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS (JSON list or comma-separated)."
    )
    # 15: district → school → class → enrollment → person → a field, in Relay `edges { node }`
    # form, is 14 levels deep; deeper than that is a walk in circles, which costs more than it
    # tells.
    max_depth: int = Field(default=15, ge=1, description="Deepest selection nesting allowed.")
    max_aliases: int = Field(default=30, ge=1, description="Aliases allowed in one document.")
    max_tokens: int = Field(default=5000, ge=1, description="Lexer tokens allowed per document.")
    max_fields: int = Field(
        default=2000,
        ge=1,
        description="Field selections allowed in one operation, fragments counted at each spread.",
    )
    max_document_bytes: int = Field(
        default=50_000, ge=1, description="Largest GraphQL document accepted, in bytes."
    )
    max_cost: int = Field(
        default=200_000, ge=1, description="Largest estimated row count of one operation."
    )
    # 500 ids is a long hand-picked list; a client that holds more pages through them. 5000 is
    # the ceiling every engine takes in one statement (PostgreSQL binds at most 32,767
    # parameters, and a filter has up to five lists).
    max_list_length: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="Most values in one list argument or list variable (filter ids, roles…).",
    )
    # Ten seconds is about twenty times the largest page the cost limit allows on a laptop; a
    # request that needs longer is stuck or hostile, and holds a database connection meanwhile.
    request_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest one Graph API request may run (database work and execution).",
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1, description="Largest HTTP request body accepted (413 past it)."
    )
    # A megabyte (the body limit) takes well under a second on any link an application uses; a
    # body that has not all come after ten is stalled or hostile, and holds a connection.
    body_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest a client may take to send a request's body (408 past it).",
    )
    rate_limit_per_second: float = Field(
        default=20.0,
        gt=0,
        description="Requests per second refilled into each token's bucket.",
    )
    rate_limit_burst: int = Field(
        default=200, ge=1, description="Bucket size: requests one token may send at once."
    )
    # A thousand documents of at most GATEWAY_MAX_DOCUMENT_BYTES each: far more operations than
    # an application sends, and at most 50 MB with the default document limit.
    persisted_queries_max: int = Field(
        default=1000,
        ge=0,
        description="Documents kept for Apollo's automatic persisted queries (least recently "
        "used dropped first); 0 turns persisted queries off.",
    )
    max_batch: int = Field(
        default=0,
        ge=0,
        description="Most operations in one batched request (a JSON array body); 0 turns "
        "batching off.",
    )
    event_retention_days: int = Field(
        default=30,
        ge=1,
        description="Days each change-feed event is kept; `gateway events prune` removes older "
        "ones, and a cursor from before them asks for a full sync.",
    )
    secret_key: str | None = Field(
        default=None,
        description="The key that encrypts the access tokens the meta API returns to an "
        "application's developer (`gateway secret-key generate` prints one). Unset: "
        "GATEWAY_SECRET_KEY_FILE, else (SQLite only) a key file beside the database, made on "
        "first use.",
    )
    secret_key_file: str | None = Field(
        default=None,
        description="A file holding the secret key (read when GATEWAY_SECRET_KEY is unset).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks of the proxies whose X-Forwarded-For names the client "
        "(JSON list or comma-separated; `*` trusts every peer). None by default: the client is "
        "the connecting peer.",
    )

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value


class SettingsError(ValueError):
    """A `GATEWAY_*` variable (or `.env` line) holds a value the gateway cannot use."""


def load_settings() -> Settings:
    """Read the settings from the environment (and `.env`); SettingsError names each bad
    variable, its value and what it must be."""
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = "GATEWAY_" + "_".join(str(part) for part in item["loc"][:1]).upper()
            value = str(item.get("input", ""))[:80]
            problems.append(f"{name}={value!r}: {item['msg']}")
        raise SettingsError(
            "bad setting" + ("s" if len(problems) > 1 else "") + ": " + "; ".join(problems)
        ) from None
