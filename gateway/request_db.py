"""One request's reads: its connection, snapshot and deadline, and statements run on the driver.

`RequestDB` is what the Graph API's resolvers, compiled plans and token lookup read through.
On SQLite each pooled connection carries a `Deadline` its progress handler reads and a count
of its calls into aiosqlite's thread (`DriverCalls`), both set when the connection is opened
(`gateway.db`), and `Prepared` statements run on the sqlite3 connection directly: on the event
loop's own thread while they are short, else several per call into aiosqlite's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import await_, greenlet_spawn

from gateway.errors import RequestTimeout

# SQLite asks whether to go on every this many virtual-machine steps (7-10 ms of a compiled
# answer's work, measured): a statement stops within about that of the deadline, and the checks
# (each takes the GIL from the event loop's thread) cost nothing measurable.
SQLITE_PROGRESS_STEPS = 100_000

INLINE_SECONDS = 0.002
"""How long statements may run on the event loop's own thread (`RequestDB.read`) before SQLite
stops them and they run again in aiosqlite's thread. A call into that thread costs the
process about as much as a small answer's statement on a machine with more than one core (two
thread switches across cores, the GIL handed over and back, an event-loop wake-up): measured on
two cores at ten concurrent requests, a flat page cost 28% less CPU per request this way and a
nested one 29% less (on one core, where the switches are cheap, about the same). Each
statement that runs longer than this wastes at most this much, and those after it skip the
try for a while (`INLINE_RETRY`)."""
INLINE_REQUEST_SECONDS = 0.004
"""How long all the reads of one request may run on the event loop's thread, together (a batch
of operations reads once per operation): then they go to aiosqlite's thread."""
INLINE_SQL_MOST = 32 * 1024
"""The longest SQL (characters, all of a read's statements) run on the event loop's thread.
SQLite's progress handler cannot stop the preparing of a statement, which takes about 70
microseconds per KiB of SQL (measured on a 175 KiB one): a read runs there only once its
statements are prepared on the connection (`DriverCalls.prepared`), and, in case they were
dropped from its cache since, only when they are this short."""
PREPARED_MOST = 100
"""How many statements a connection is taken to keep prepared: fewer than the 128 of
sqlite3's cache (`cached_statements`), which other statements share."""
INLINE_CHECK_STEPS = 1000
"""How often (virtual-machine steps, 50-100 microseconds) a statement run on the event loop's
thread looks at the clock."""
INLINE_RETRY = 16
"""A statement stopped on the event loop's thread runs in aiosqlite's thread the next this many
times, then is tried there again (its cost may depend on its values, or the data may shrink)."""
_overran: dict[str, int] = {}
"""The statements (SQL text) stopped on the event loop's thread, with how many more times they
go straight to aiosqlite's thread."""
_OVERRAN_MOST = 512


class Deadline:
    """When the statements of one pooled SQLite connection must stop (time.monotonic), if ever.

    Each connection gets one, with a progress handler that reads it, when it is opened; a
    request sets and clears `at` in Python, so bounding a request costs no call into the
    driver's thread.
    """

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at: float | None = None

    def passed(self) -> int:
        """Called in the driver's thread; non-zero interrupts the running statement."""
        at = self.at
        return int(at is not None and time.monotonic() >= at)


DEADLINE = "gateway.deadline"  # the key of a connection's Deadline in its pool record's info
CALLS = "gateway.calls"  # the key of a connection's DriverCalls in its pool record's info


class DriverCalls:
    """How many calls one aiosqlite connection was given for its thread, and how many it has
    finished: when they are equal nothing runs there, and a statement may run on the sqlite3
    connection from the event loop's thread instead (`RequestDB.read`). Counts every call,
    whoever makes it (SQLAlchemy, a cancelled request's call still running), since `counted`
    wraps the connection's one way into its thread. Each count has one writer (the event loop's
    thread, the driver's), so neither needs a lock; `busy_now` is written by the thread that may
    use the connection at that moment (the event loop's only while `idle`)."""

    __slots__ = ("busy_ms", "busy_now", "finished", "given", "prepared")

    def __init__(self, busy_ms: int) -> None:
        self.busy_ms = busy_ms
        """The connection's busy timeout (ms), as it was opened with (`_run_inline`)."""
        self.busy_now = busy_ms
        """Its busy timeout now: 0 after a read on the event loop's thread, until the
        connection is used in any other way (`wait_for_locks`)."""
        self.given = 0
        self.finished = 0
        self.prepared: OrderedDict[str, None] = OrderedDict()
        """The SQL of the statements `read` ran on the connection lately (at most
        PREPARED_MOST, the latest last): sqlite3 keeps them prepared."""

    def idle(self) -> bool:
        """Whether the driver's thread has finished every call it was given."""
        return self.given == self.finished

    def no_waiting(self, connection: sqlite3.Connection) -> None:
        """Give `connection` no busy timeout, for a read on the event loop's thread, where
        waiting for a lock would stop the whole event loop; it keeps none until it is used in
        any other way (`wait_for_locks`), so that the reads of request after request on the
        event loop's thread cost no statement for it (two cost some 15 microseconds a request
        under load, as much as a small answer's own statement)."""
        if self.busy_now != 0:
            connection.execute("PRAGMA busy_timeout = 0")
            self.busy_now = 0

    def wait_for_locks(self, connection: sqlite3.Connection) -> None:
        """Give `connection` its own busy timeout again (`busy_ms`), before any use but a read
        on the event loop's thread: by the driver's thread, by SQLAlchemy, by whoever takes it
        from the pool next (`gateway.db`). Only from the thread that may use it now."""
        if self.busy_now != self.busy_ms:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_ms)}")
            self.busy_now = self.busy_ms

    def ready(self, statements: Sequence[tuple[str, Any]]) -> bool:
        """Whether `statements` may run on the event loop's thread: prepared on the connection
        already (as far as is known) and short."""
        prepared = self.prepared
        if sum(len(sql) for sql, _ in statements) > INLINE_SQL_MOST:
            return False
        for sql, _ in statements:
            if sql not in prepared:
                return False
            prepared.move_to_end(sql)
        return True

    def ran(self, statements: Sequence[tuple[str, Any]]) -> None:
        """Note that `statements` ran on the connection (and are prepared there now)."""
        prepared = self.prepared
        for sql, _ in statements:
            prepared[sql] = None
            prepared.move_to_end(sql)
        while len(prepared) > PREPARED_MOST:
            prepared.popitem(last=False)

    @classmethod
    def counted(cls, driver: Any, busy_ms: int) -> DriverCalls:
        """Count the calls of aiosqlite connection `driver` (opened with a busy timeout of
        `busy_ms`) from now on."""
        calls = cls(busy_ms)

        async def counting(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            def call() -> Any:
                try:
                    return function(*args, **kwargs)
                finally:
                    calls.finished += 1

            if driver._running and driver._connection:  # else it raises, queueing nothing
                calls.given += 1
            # aiosqlite queues every call for its thread here (looked up at each call, so that a
            # test can watch them), and at once: from there on the thread makes the call,
            # whatever happens to this coroutine.
            return await type(driver)._execute(driver, call)

        driver._execute = counting
        return calls


async def _bound_by(conn: AsyncConnection, deadline: float) -> None:
    """Make the database itself stop `conn`'s statements at `deadline` (time.monotonic)."""
    if conn.dialect.name == "sqlite":
        conn.info[DEADLINE].at = deadline
    elif conn.dialect.name == "postgresql":
        # Per statement, for this transaction only; the view's timeout bounds their sum.
        milliseconds = max(1, math.ceil((deadline - time.monotonic()) * 1000))
        await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")


def _unbound(conn: AsyncConnection) -> None:
    """Remove the deadline before the connection goes back to the pool, so that it never stops
    another request's statements."""
    if conn.dialect.name == "sqlite" and not conn.invalidated:
        conn.info[DEADLINE].at = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A read statement compiled once for one dialect, to be run on the driver itself.

    Compiling a statement of SQLAlchemy's, and converting its parameters and results, costs
    more Python per request than running a small query: a statement run on every request is
    compiled once into its SQL text, its parameters in order (fixed values, or `slots` filled
    per run) and its result columns' converters.
    """

    sql: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]
    binds: Mapping[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...]
    _template: tuple[Any, ...] = field(init=False, repr=False, compare=False)
    """The parameters with the fixed values in place (None in the slots)."""
    _slots: tuple[tuple[str, Callable[[Any], Any] | None, tuple[int, ...]], ...] = field(
        init=False, repr=False, compare=False
    )
    """Each slot's name, converter and positions (a slot may recur: its value is converted
    once)."""

    def __post_init__(self) -> None:
        fixed, binds = self.fixed, self.binds
        template = [fixed.get(name) for name in self.names]
        positions: dict[str, list[int]] = {}
        for i, name in enumerate(self.names):
            if name not in fixed:
                positions.setdefault(name, []).append(i)
        slots = tuple((name, binds.get(name), tuple(at)) for name, at in positions.items())
        object.__setattr__(self, "_template", tuple(template))
        object.__setattr__(self, "_slots", slots)

    @classmethod
    def of(
        cls,
        statement: sa.Select[Any] | sa.CompoundSelect[Any],
        dialect: Dialect,
        slots: Sequence[str] = (),
    ) -> Prepared:
        """`statement` compiled for `dialect`; the bound parameters named in `slots` get their
        values when it runs."""
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        binds: dict[str, Callable[[Any], Any]] = {
            name: processor
            for name, processor in compiled._bind_processors.items()
            if callable(processor)  # a sequence of them serves tuple types, used nowhere here
        }
        params = compiled.construct_params(params=dict.fromkeys(slots))
        fixed = {
            name: binds[name](value) if name in binds else value
            for name, value in params.items()
            if name not in slots
        }
        results = tuple(
            column.type._cached_result_processor(dialect, None)
            for column in statement.selected_columns
        )
        return cls(compiled.string, tuple(compiled.positiontup or ()), fixed, binds, results)

    def parameters(self, values: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        """The positional parameters of one run, with `values` in the slots."""
        out = list(self._template)
        for name, bind, at in self._slots:
            value = values[name] if values is not None else None
            if bind is not None:
                value = bind(value)
            for i in at:
                out[i] = value
        return tuple(out)

    def convert(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """`rows` as SQLAlchemy would have returned them (dates parsed, and so on)."""
        processors = [(i, p) for i, p in enumerate(self.results) if p is not None]
        if not processors:
            return rows
        converted = []
        for row in rows:
            values = list(row)
            for i, processor in processors:
                values[i] = processor(values[i])
            converted.append(tuple(values))
        return converted


def _run_in_driver(
    connection: sqlite3.Connection,
    calls: DriverCalls,
    begin: bool,
    statements: list[tuple[str, tuple[Any, ...]]],
    end: bool,
) -> list[list[tuple[Any, ...]]]:
    """Runs in aiosqlite's thread: `_run_statements`, waiting for a lock up to the
    connection's busy timeout."""
    calls.wait_for_locks(connection)
    return _run_statements(connection, begin, statements, end, [])


def _run_statements(
    connection: sqlite3.Connection,
    begin: bool,
    statements: list[tuple[str, tuple[Any, ...]]],
    end: bool,
    out: list[list[tuple[Any, ...]]],
    stop: Callable[[], int] | None = None,
) -> list[list[tuple[Any, ...]]]:
    """Open the read transaction if asked, then run every statement (its rows appended to
    `out`, returned), then end the transaction if asked; `stop`, when it says so before a
    statement, raises _Stopped instead."""
    if begin:
        connection.execute("BEGIN")
    for sql, params in statements:
        if stop is not None and stop():
            raise _Stopped
        out.append(connection.execute(sql, params).fetchall())
    if end and connection.in_transaction:
        connection.rollback()  # a read transaction: nothing to commit
    return out


class _Stopped(Exception):
    """The time of a read on the event loop's thread ran out between two statements."""


def _run_inline(
    connection: sqlite3.Connection,
    begin: bool,
    statements: list[tuple[str, tuple[Any, ...]]],
    end: bool,
    deadline: Deadline,
    seconds: float,
    calls: DriverCalls,
) -> list[list[tuple[Any, ...]]] | None:
    """`_run_in_driver` on the event loop's thread, while it takes less than `seconds`; None
    when it was stopped then (by SQLite's progress handler, or between statements) or could not
    read without waiting for a lock, a stopped statement noted in `_overran` and no rows kept:
    the caller runs them all again in the driver's thread. Only while that thread runs nothing
    of the connection's."""
    for sql, _ in statements:
        left = _overran.get(sql)
        if left is not None:
            if left <= 1:
                del _overran[sql]
            else:
                _overran[sql] = left - 1
            return None
    stop_at = time.monotonic() + seconds

    def stop() -> int:
        return int(time.monotonic() >= stop_at)

    out: list[list[tuple[Any, ...]]] = []
    # A reader waits for a lock only in rare moments (a crashed writer's recovery, the last
    # connection closing): not here, where waiting would stop the whole event loop.
    calls.no_waiting(connection)
    connection.set_progress_handler(stop, INLINE_CHECK_STEPS)
    try:
        return _run_statements(connection, begin, statements, end, out, stop)
    except _Stopped:
        return None
    except sqlite3.OperationalError as error:
        code = error.sqlite_errorcode & 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_BUSY:
            return None  # the driver's thread waits for the lock (up to the busy timeout)
        if code != sqlite3.SQLITE_INTERRUPT:
            raise
        if len(out) < len(statements):
            if len(_overran) >= _OVERRAN_MOST:
                _overran.clear()
            _overran[statements[len(out)][0]] = INLINE_RETRY
        return None
    finally:
        connection.set_progress_handler(deadline.passed, SQLITE_PROGRESS_STEPS)


async def _outlast(call: Awaitable[Any]) -> None:
    """Wait until `call` has ended, however it ends, even when this task is cancelled again
    meanwhile (the caller raises its own cancellation afterwards)."""
    waiter = asyncio.ensure_future(call)
    while not waiter.done():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(waiter)
    if not waiter.cancelled():
        waiter.exception()  # retrieved: an error of a call made only to wait is no news


def _nothing() -> None:
    """A call into the driver's thread that does nothing: it returns once every call queued
    before it has ended."""


async def _wait_for_locks(pooled: PoolProxiedConnection) -> None:
    """`DriverCalls.wait_for_locks` for SQLite connection `pooled` (from the event loop's
    thread when nothing runs in the driver's)."""
    calls: DriverCalls = pooled.info[CALLS]
    if calls.busy_now == calls.busy_ms:
        return
    driver: Any = pooled.driver_connection
    if calls.idle():
        calls.wait_for_locks(driver._conn)
    else:
        await driver._execute(calls.wait_for_locks, driver._conn)


class _Checkout(threading.local):
    reading = False
    """True while `_checkout_pooled` takes a connection from the pool without a greenlet, in
    this thread: for a read, which may run on the event loop's thread, where the connection has
    no busy timeout (`DriverCalls.no_waiting`), and needs none given back
    (`waits_for_locks_when_taken`). Per thread: a checkout in another thread (another event
    loop's, another engine's) at that moment is not one."""


_checkout = _Checkout()


def waits_for_locks_when_taken(connection_record: Any) -> None:
    """The pool's `checkout` listener on SQLite (`gateway.db`): a connection taken from the pool
    gets its busy timeout back (`DriverCalls.wait_for_locks`) unless it is taken for a read
    (`_checkout_pooled`); from the event loop's thread when nothing runs in the driver's, else
    (a connection taken through a greenlet) in the driver's thread."""
    calls: DriverCalls | None = connection_record.info.get(CALLS)
    if calls is None or calls.busy_now == calls.busy_ms or _checkout.reading:
        return
    driver: Any = connection_record.dbapi_connection.driver_connection
    if calls.idle():
        calls.wait_for_locks(driver._conn)
    else:
        await_(driver._execute(calls.wait_for_locks, driver._conn))


async def _checkout_pooled(pool: sa.Pool) -> PoolProxiedConnection:
    """A connection from `pool`: one it holds is taken without a greenlet (a queue's get); one
    it must open, or open again (after an invalidation), through a greenlet, since that calls
    into the driver (SQLAlchemy says so with MissingGreenlet before it starts anything, and
    puts the entry back). A pool that pings each connection it hands out (PostgreSQL's) calls
    into the driver every time, and a ping that fails for want of a greenlet invalidates the
    connection: there always through a greenlet."""
    if isinstance(pool, sa.pool.QueuePool) and pool.checkedin() > 0 and not pool._pre_ping:
        # no await until it is False again: no other checkout of this thread meanwhile
        _checkout.reading = True
        try:
            return pool.connect()
        except sa.exc.MissingGreenlet:
            pass
        finally:
            _checkout.reading = False
    return await greenlet_spawn(pool.connect)


class RequestDB:
    """One request's database connection, opened lazily and used by one statement at a time.

    GraphQL resolvers run concurrently; an async connection runs one statement at a time, so
    statements wait for a lock. All of a request's reads share one connection and one read
    transaction: a consistent snapshot, so the levels of a response agree while an import
    commits.

    With a `timeout` (GATEWAY_REQUEST_TIMEOUT_SECONDS) the request has a deadline, counted from
    now: the database stops a statement that runs past it, and no statement starts after it;
    both raise RequestTimeout.

    On SQLite, `read` runs prepared statements on the driver itself, several in one call into
    aiosqlite's thread (each call is a thread hop and an event-loop wake-up, which cost more than
    a small query): the token lookup and a compiled answer take one call each. Any statement
    may still go through SQLAlchemy (`execute`, `connection`) on the same connection and the
    same transaction.

    A request that only `read`s never makes an AsyncConnection: it takes the pooled DBAPI
    connection itself (`_pooled`) and gives it back without a call into the driver's thread
    when its read transaction has ended; the AsyncConnection, its greenlets and its Connection
    cost more of the event loop's time than the statements of a small answer. `execute` and
    `connection` wrap the same pooled connection when they are first called.
    """

    def __init__(self, engine: AsyncEngine, timeout: float | None = None) -> None:
        self.engine = engine
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self._conn: AsyncConnection | None = None
        self._pooled: PoolProxiedConnection | None = None  # SQLite, before `_conn` (if ever)
        self._begun = False  # SQLite: the read transaction is open
        self._inline_left = INLINE_REQUEST_SECONDS  # SQLite: see `read`
        self._lock = asyncio.Lock()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (negative once past it); None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _check_deadline(self) -> None:
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            assert self.timeout is not None
            raise RequestTimeout(self.timeout)

    @property
    def on_driver(self) -> bool:
        """Whether `read` runs on the driver itself: SQLite, unless something watches the
        statements SQLAlchemy runs (`echo`, a cursor event listener: the statement-counting
        tests), which would not see these."""
        return self.engine.sync_engine.dialect.name == "sqlite" and self._unwatched

    @property
    def reads_alone(self) -> bool:
        """Whether `read_alone` runs its statement on the driver itself: SQLite's (`on_driver`),
        or asyncpg's connection on PostgreSQL, unless something watches the statements
        SQLAlchemy runs."""
        dialect = self.engine.sync_engine.dialect
        return (dialect.name == "sqlite" or dialect.driver == "asyncpg") and self._unwatched

    @property
    def _unwatched(self) -> bool:
        """Whether nothing watches the statements SQLAlchemy runs (`echo`, a cursor event
        listener), which would not see those run on the driver itself."""
        sync = self.engine.sync_engine
        return not (
            sync.echo or sync.dispatch.before_cursor_execute or sync.dispatch.after_cursor_execute
        )

    async def read_alone(
        self, statement: Prepared, values: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """The rows of one prepared statement (with the values of its slots) that reads one
        snapshot by itself, with no transaction around it; only while `reads_alone`.

        On SQLite, `read` without a read transaction. On PostgreSQL, asyncpg runs it on a pooled
        connection taken for it alone and given back at once: one statement (the pool's
        pre-ping aside), where a request through SQLAlchemy spends a BEGIN, a `SET LOCAL
        statement_timeout`, the statement and a ROLLBACK. The request's deadline bounds it
        (asyncpg cancels it on the server when it is reached: RequestTimeout); a database error
        is raised as asyncpg's."""
        if self.engine.sync_engine.dialect.name == "sqlite":
            return (await self.read([(statement, values)], begin=False))[0]
        parameters = statement.parameters(values)
        async with self._lock:
            self._check_deadline()
            if self._conn is not None:  # inside the request's transaction: its snapshot
                raw = await self._conn.get_raw_connection()
                return await self._fetch(raw.driver_connection, statement, parameters)
            pooled = await _checkout_pooled(self.engine.sync_engine.pool)
            try:
                return await self._fetch(pooled.driver_connection, statement, parameters)
            except asyncpg.PostgresError:
                raise  # the statement failed; the connection is as it was
            except BaseException:
                # cancelled, timed out or cut off: whatever state it left, not for the next
                # request (the pool opens a new connection in its place)
                await greenlet_spawn(pooled.invalidate)
                raise
            finally:
                await greenlet_spawn(pooled.close)  # no transaction was opened: no round trip

    async def _fetch(
        self, driver: Any, statement: Prepared, parameters: tuple[Any, ...]
    ) -> list[tuple[Any, ...]]:
        """`statement` on asyncpg's connection `driver`, bounded by the deadline."""
        remaining = self.remaining()
        try:
            records = await driver.fetch(statement.sql, *parameters, timeout=remaining)
        except TimeoutError:
            assert self.timeout is not None
            raise RequestTimeout(self.timeout) from None
        return statement.convert([tuple(record) for record in records])

    async def _checkout(self) -> AsyncConnection:
        """The request's connection, bound by its deadline; on SQLite the read transaction is
        not open yet (see `_begin`)."""
        if self._conn is None:
            if self._pooled is not None:
                # the connection `read` took: the same transaction goes on through SQLAlchemy
                await _wait_for_locks(self._pooled)  # still the request's, should this be cancelled
                pooled, self._pooled = self._pooled, None
                sync = await greenlet_spawn(sa.Connection, self.engine.sync_engine, pooled)
                self._conn = AsyncConnection(self.engine, sync)
                return self._conn  # bound by the deadline already (`_take_pooled`)
            conn = await self.engine.connect()
            if conn.dialect.name == "postgresql":
                # READ COMMITTED (the default) takes a snapshot per statement; asyncpg sends
                # this as part of its BEGIN, so it costs no round trip.
                await conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            self._conn = conn
            if self.deadline is not None:
                await _bound_by(conn, self.deadline)
        return self._conn

    async def _open(self) -> AsyncConnection:
        """The request's connection with its read transaction open."""
        conn = await self._checkout()
        if conn.dialect.name == "sqlite" and not self._begun:
            # The driver opens no transaction for a SELECT, so each would read the latest commit.
            await conn.exec_driver_sql("BEGIN")
            self._begun = True
        return conn

    async def execute(self, statement: sa.Executable) -> sa.CursorResult[Any]:
        """Run `statement` on this request's connection."""
        async with self._lock:
            self._check_deadline()
            conn = await self._open()
            try:
                return await conn.execute(statement)
            except sa.exc.DBAPIError:
                self._check_deadline()  # stopped by the deadline: say that, not the driver's words
                raise

    async def read(
        self,
        statements: Sequence[tuple[Prepared, Mapping[str, Any] | None]],
        *,
        end: bool = False,
        begin: bool = True,
    ) -> list[list[tuple[Any, ...]]]:
        """The rows of each prepared statement (with the values of its slots): on the event
        loop's thread while they are short (`INLINE_SECONDS`, `INLINE_REQUEST_SECONDS` for all
        of the request's, `INLINE_SQL_MOST`) and prepared on the connection already (the first
        run prepares them there), else in one call into the driver's thread; only while
        `on_driver`. A database error is raised as the
        driver's (`sqlite3.Error`), or RequestTimeout when the deadline stopped it.

        With `end`, the read transaction ends once every statement has run, for a request that
        reads nothing more: returning its connection to the pool then costs no call (`db`).
        Without `begin`, no read transaction is opened when none is: a single statement reads
        one snapshot by itself."""
        async with self._lock:
            self._check_deadline()
            if self._conn is not None:
                raw = await self._conn.get_raw_connection()
            else:
                raw = await self._take_pooled()
            driver: Any = raw.driver_connection  # the aiosqlite connection
            connection: sqlite3.Connection = driver._conn
            runs = [(p.sql, p.parameters(values)) for p, values in statements]
            calls: DriverCalls = raw.info[CALLS]
            try:
                rows = None
                if self._inline_left > 0 and calls.idle() and calls.ready(runs):
                    started = time.monotonic()
                    try:
                        rows = _run_inline(
                            connection,
                            begin and not self._begun,
                            runs,
                            end,
                            raw.info[DEADLINE],
                            min(INLINE_SECONDS, self._inline_left),
                            calls,
                        )
                    finally:
                        if self._conn is not None:
                            # the request goes on through SQLAlchemy on this connection
                            calls.wait_for_locks(connection)
                    self._inline_left -= time.monotonic() - started
                    self._begun = connection.in_transaction
                if rows is None:
                    self._check_deadline()
                    rows = await driver._execute(
                        _run_in_driver, connection, calls, begin and not self._begun, runs, end
                    )
                    calls.ran(runs)
            except asyncio.CancelledError:
                # The driver's thread runs the call to its end (BEGIN, the statements) whatever
                # happens here: wait for a call queued behind it, so that `_begun` and `close`
                # see the transaction it leaves, not one it opens once the connection is back in
                # the pool (the next request's BEGIN would fail, a read without one would see
                # that old snapshot). Found by reviews, the second cancellation too.
                await _outlast(driver._execute(_nothing))
                raise
            except sqlite3.Error:
                self._check_deadline()
                raise
            finally:
                self._begun = connection.in_transaction
            return [p.convert(r) for (p, _), r in zip(statements, rows, strict=True)]

    async def _take_pooled(self) -> PoolProxiedConnection:
        """The request's pooled DBAPI connection (SQLite), bound by its deadline."""
        if self._pooled is None:
            self._pooled = await _checkout_pooled(self.engine.sync_engine.pool)
            if self.deadline is not None:
                self._pooled.info[DEADLINE].at = self.deadline
        return self._pooled

    async def connection(self) -> AsyncConnection:
        """The request's connection itself, for callers that run a few statements in a row
        before any concurrent resolver starts."""
        async with self._lock:
            return await self._open()

    async def close(self) -> None:
        """Return the connection to the pool (rolling back the read transaction)."""
        if self._pooled is not None:
            pooled, self._pooled = self._pooled, None
            self._begun = False
            pooled.info[DEADLINE].at = None
            pool = self.engine.sync_engine.pool
            driver: Any = pooled.driver_connection
            if (
                isinstance(pool, sa.pool.QueuePool)
                and pool.checkedin() < pool.size()
                and not driver._conn.in_transaction
            ):
                pooled.close()  # back to the pool's queue, no call into the driver
            else:
                # a rollback, or closing a connection the pool keeps no room for: driver calls
                await greenlet_spawn(pooled.close)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._begun = False
            try:
                if self.deadline is not None:
                    _unbound(conn)
            finally:
                await conn.close()
