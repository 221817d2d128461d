"""Keeps one large request from holding the event loop: its work runs in slices of a few
milliseconds, and between slices every other request (and `/healthz`) gets its turn.

A large page resolves in tens of thousands of small steps: a resolver starts, a batch of rows
arrives, and every object waiting for it is completed at once. asyncio runs all the steps that
are ready in one pass of its loop, so without pacing one request's 200,000 rows were one pass of
several seconds, and `/healthz` and every other token waited for it.

`Pacer.turn()` is awaited before a resolver starts and before the value it produced is completed.
Within the current slice it returns at once (no suspension); once the slice is used up, the
callers queue (first come, first served) and the next slice starts in a later pass of the loop,
after whatever else was ready. Each waiting step is woken once, so pacing costs O(steps).

Batched loading must not fall apart into one statement per slice: a `PacedLoader` collects the
keys of a whole level and runs its batch only when no step of the request waits for a turn
(Strawberry's DataLoader would run it one pass after the first key, i.e. after the first slice).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from graphql import GraphQLOutputType, GraphQLResolveInfo
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# Long enough that the extra passes of the loop cost nothing measurable, short enough that a
# request arriving meanwhile waits a few slices at most.
SLICE_SECONDS = 0.01

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Pacer:
    """Slices of one request's work (see the module docstring)."""

    def __init__(self, slice_seconds: float = SLICE_SECONDS) -> None:
        self.slice_seconds = slice_seconds
        self.started = time.perf_counter()
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.next_slice_scheduled = False
        self.idle_callbacks: list[Callable[[], None]] = []
        self.idle_check_scheduled = False

    def must_wait(self) -> bool:
        """Whether the next step must wait for a later slice (`await wait()`); checked without
        a coroutine, as it is for every asynchronous field."""
        return bool(self.waiting) or time.perf_counter() - self.started >= self.slice_seconds

    async def turn(self) -> None:
        """Return when this step may run: at once within the slice, else in a later slice."""
        if self.must_wait():
            await self.wait()

    async def wait(self) -> None:
        """Queue for a turn in a later slice."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.waiting.append(future)
        self._schedule_next_slice(loop)
        await future
        self._pass_on(loop)

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Call `callback` in a later pass of the loop, once no step waits for a turn."""
        self.idle_callbacks.append(callback)
        self._schedule_idle_check(asyncio.get_running_loop())

    def _schedule_idle_check(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.idle_callbacks and not self.idle_check_scheduled:
            self.idle_check_scheduled = True
            loop.call_soon(self._check_idle)

    def _check_idle(self) -> None:
        self.idle_check_scheduled = False
        if self.waiting or self.next_slice_scheduled:
            return  # `_pass_on` checks again once the queue has drained
        callbacks, self.idle_callbacks = self.idle_callbacks, []
        for callback in callbacks:
            callback()

    def _schedule_next_slice(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.next_slice_scheduled:
            self.next_slice_scheduled = True
            loop.call_soon(self._start_slice, loop)

    def _start_slice(self, loop: asyncio.AbstractEventLoop) -> None:
        self.next_slice_scheduled = False
        self.started = time.perf_counter()
        self._pass_on(loop, fresh=True)

    def _pass_on(self, loop: asyncio.AbstractEventLoop, *, fresh: bool = False) -> None:
        """Wake the next waiting step while the slice lasts (it runs after the current one),
        else leave the rest for the next slice; a fresh slice always takes one step."""
        while self.waiting and self.waiting[0].done():  # cancelled meanwhile
            self.waiting.popleft()
        if not self.waiting:
            self._schedule_idle_check(loop)
        elif fresh or time.perf_counter() - self.started < self.slice_seconds:
            self.waiting.popleft().set_result(None)
        else:
            self._schedule_next_slice(loop)


class PacedLoader(Generic[K, V]):
    """Loads values by key in batches, one `load_fn(keys)` call per level of the request
    (values in the order of the keys); each key is loaded once per request."""

    def __init__(self, load_fn: Callable[[list[K]], Awaitable[Sequence[V]]], pacer: Pacer) -> None:
        self.load_fn = load_fn
        self.pacer = pacer
        self.loaded: dict[K, asyncio.Future[V]] = {}
        self.batch: list[K] = []

    def load(self, key: K) -> Awaitable[V]:
        """The value for `key` (shared by every caller asking for it)."""
        found = self.loaded.get(key)
        if found is not None:
            return found
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self.loaded[key] = future
        if not self.batch:
            self.pacer.when_idle(self._dispatch)
        self.batch.append(key)
        return future

    def _dispatch(self) -> None:
        # The keys are taken when the task starts, a pass later: the steps that the last
        # turns started have issued their loads by then.
        task = asyncio.get_running_loop().create_task(self._run())
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)

    async def _run(self) -> None:
        keys, self.batch = self.batch, []
        futures = [self.loaded[key] for key in keys]
        try:
            values = list(await self.load_fn(keys))
            if len(values) != len(keys):
                raise RuntimeError(f"a batch load gave {len(values)} values for {len(keys)} keys")
        except Exception as error:  # every caller of the batch gets it
            for future in futures:
                if not future.done():
                    future.set_exception(error)
            return
        for future, value in zip(futures, values, strict=True):
            if not future.done():
                future.set_result(value)


# Running batch tasks, kept referenced until they finish (asyncio holds tasks weakly).
_TASKS: set[asyncio.Task[None]] = set()


class PacedExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, each asynchronous field paced by the request's `Pacer`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The request's pacer, which its loaders share (the Graph API's Context holds one).
        pacer = getattr(self.context_value, "pacer", None)
        self.pacer = pacer if isinstance(pacer, Pacer) else Pacer()

    async def complete_awaitable_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core 3.3's own (`Executor.complete_awaitable_value`), with a turn before the
        resolver starts and one before the value it produced is completed."""
        pacer = self.pacer
        if pacer.must_wait():
            await pacer.wait()
        try:
            resolved = await self.with_abort_signal(result)
            if pacer.must_wait():
                await pacer.wait()
            completed = self.complete_value(
                return_type, field_details_list, info, path, resolved, position_context
            )
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            completed = None
        return completed
