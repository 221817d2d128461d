"""Why the configured database cannot be opened, said so that whoever runs the gateway can fix it.

Opening the database fails in ways that are no defect of the gateway: the URL cannot be read,
it names a driver this installation cannot use, or the database is not there or refuses us (no
server at that address, a wrong password, a folder that does not exist). `open_problem` turns
each into a DatabaseUnavailable whose message says what is wrong, shows the URL without its
password, and says what to set instead; the command line prints it without a traceback.
"""

from __future__ import annotations

import os
import re

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

VARIABLE = "GATEWAY_DATABASE_URL"
SQLITE_EXAMPLE = "sqlite+aiosqlite:///gateway.db"
POSTGRES_EXAMPLE = "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE"
# The async driver the gateway is installed with, per backend.
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}

# What building an engine raises for a URL it cannot read or a driver it cannot load.
URL_ERRORS = (sa.exc.ArgumentError, sa.exc.InvalidRequestError, ImportError, ValueError)
# What the first connection raises when the database is missing or refuses us (asyncpg's own
# errors arrive wrapped as DBAPIError; a refused or unresolvable address is an OSError).
CONNECT_ERRORS = (sa.exc.DBAPIError, OSError)

_PASSWORD_PARAMETER = re.compile(r"(?i)([?&][^=&]*pass[^=&]*=)[^&]*")


class DatabaseUnavailable(Exception):
    """The configured database cannot be opened; the message says why and what to set."""


def redacted(url: str) -> str:
    """`url` as it may be shown: its password, and any `password=` parameter, replaced by ***."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        # Unreadable, so hide everything between the user name and the last '@'.
        scheme, separator, rest = url.rpartition("://")
        userinfo, at, host = rest.rpartition("@")
        if at and ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:***@{host}"
        shown = f"{scheme}{separator}{rest}"
    return _PASSWORD_PARAMETER.sub(r"\1***", shown)


def open_problem(url: str, error: BaseException) -> DatabaseUnavailable:
    """What is wrong with opening `url` (which raised `error`), and what to set instead."""
    shown = f"{VARIABLE}={redacted(url)}"
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError) as unreadable:
        return DatabaseUnavailable(
            f"{shown} is not a database URL ({_reason(unreadable)}). Set {VARIABLE} to an "
            f"SQLAlchemy URL, e.g. {SQLITE_EXAMPLE} (a file in the working directory) or "
            f"{POSTGRES_EXAMPLE}."
        )
    if not isinstance(error, CONNECT_ERRORS):
        return DatabaseUnavailable(
            f"{shown} cannot be used: {_reason(error)}. The gateway opens SQLite through "
            f"aiosqlite and PostgreSQL through asyncpg; set {VARIABLE} to {_suggestion(parsed)}."
        )
    if parsed.get_backend_name() == "sqlite":
        path = os.path.abspath(parsed.database or "")
        return DatabaseUnavailable(
            f"cannot open the SQLite database {path} ({shown}): {_reason(error)}. Check that "
            f"the folder {os.path.dirname(path)} exists and that this user may write there "
            f"(the file is created when missing), or set {VARIABLE} to another file, e.g. "
            f"{SQLITE_EXAMPLE}."
        )
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return DatabaseUnavailable(
        f"cannot connect to the database {parsed.database or '(default)'} at {where} as "
        f"{parsed.username or '(default user)'} ({shown}): {_reason(error)}. Check that the "
        f"server runs and accepts connections there and that the user, password and database "
        f"name are right, or set {VARIABLE} to another server, e.g. {POSTGRES_EXAMPLE}."
    )


def _suggestion(parsed: URL) -> str:
    """The URL with the driver the gateway uses for its backend, or the examples."""
    driver = ASYNC_DRIVERS.get(parsed.get_backend_name())
    if driver is None or driver == parsed.drivername:
        return f"e.g. {SQLITE_EXAMPLE} or {POSTGRES_EXAMPLE}"
    fixed = redacted(parsed.set(drivername=driver).render_as_string(hide_password=False))
    return f"the same URL with the driver {driver.split('+')[1]}: {fixed}"


def _reason(error: BaseException) -> str:
    """The error's own message, first line only (SQLAlchemy appends a link), or its type."""
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        error = error.orig
    text = str(error).strip().splitlines()
    return text[0].rstrip(".") if text else type(error).__name__
