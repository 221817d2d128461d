"""Pacing (gateway.graph.pacing): one request's steps leave the event loop to others between
slices, and its batch loads still gather a whole level into one call. Slices of zero seconds make
every step wait for a slice of its own, so the order of events is deterministic."""

from __future__ import annotations

import asyncio

import pytest

from gateway.graph.pacing import PacedLoader, Pacer


@pytest.mark.asyncio
async def test_other_work_runs_between_the_slices_of_a_long_request() -> None:
    pacer = Pacer(slice_seconds=0)
    events: list[str] = []

    async def step(number: int) -> None:
        await pacer.turn()
        events.append(f"step {number}")

    async def other_request() -> None:
        for _ in range(3):
            events.append("other")
            await asyncio.sleep(0)

    await asyncio.gather(*(step(n) for n in range(6)), other_request())
    steps = [e for e in events if e.startswith("step")]
    assert steps == [f"step {n}" for n in range(6)]  # first come, first served
    first, last = events.index("step 0"), events.index("step 5")
    assert "other" in events[first:last], events  # not all six in one pass of the loop


@pytest.mark.asyncio
async def test_within_a_slice_a_turn_does_not_suspend() -> None:
    pacer = Pacer(slice_seconds=3600)
    events: list[str] = []

    async def step(number: int) -> None:
        await pacer.turn()
        events.append(f"step {number}")

    async def other() -> None:
        events.append("other")

    await asyncio.gather(step(0), step(1), other())
    assert events == ["step 0", "step 1", "other"]


@pytest.mark.asyncio
async def test_a_loader_batches_the_keys_of_every_slice_into_one_call() -> None:
    pacer = Pacer(slice_seconds=0)
    calls: list[list[int]] = []

    async def load(keys: list[int]) -> list[int]:
        calls.append(keys)
        return [key * 10 for key in keys]

    loader: PacedLoader[int, int] = PacedLoader(load, pacer)

    async def parent(key: int) -> int:
        await pacer.turn()  # each parent is completed in a slice of its own
        return await loader.load(key)

    values = await asyncio.gather(*(parent(k) for k in range(5)), parent(2))
    assert values == [0, 10, 20, 30, 40, 20]
    assert calls == [[0, 1, 2, 3, 4]]  # one call, each key once


@pytest.mark.asyncio
async def test_a_failed_batch_fails_each_of_its_callers() -> None:
    async def load(keys: list[int]) -> list[int]:
        raise LookupError("the database is gone")

    loader: PacedLoader[int, int] = PacedLoader(load, Pacer())
    results = await asyncio.gather(loader.load(1), loader.load(2), return_exceptions=True)
    assert [type(r) for r in results] == [LookupError, LookupError]


@pytest.mark.asyncio
async def test_a_batch_of_the_wrong_length_fails_its_callers_instead_of_hanging() -> None:
    async def load(keys: list[int]) -> list[int]:
        return keys[:1]

    loader: PacedLoader[int, int] = PacedLoader(load, Pacer())
    results = await asyncio.gather(loader.load(1), loader.load(2), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
