"""`Grouped`: concurrent single-key calls become batches, answers go to the right callers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from connector.grouped import Grouped


class Table:
    """A fake batch read: records each batch's keys, answers key -> key * 10 (not 0)."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate

    async def run(self, keys: Sequence[int]) -> Mapping[int, int]:
        self.batches.append(list(keys))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        return {k: k * 10 for k in keys if k != 0}


async def _first_batch_running() -> tuple[Table, Grouped[int, int], asyncio.Future[int]]:
    """A group whose first batch (key 1) is running, held until `table.gate` is set."""
    table = Table(asyncio.Event())
    grouped = Grouped(table.run, missing=-1)
    first = asyncio.ensure_future(grouped(1))
    await asyncio.sleep(0.01)
    return table, grouped, first


async def test_calls_of_one_turn_go_as_one_batch_and_each_gets_its_own_answer() -> None:
    table = Table()
    grouped = Grouped(table.run, missing=-1)
    answers = await asyncio.gather(*(grouped(k) for k in [3, 1, 2, 0]))
    assert answers == [30, 10, 20, -1]  # 0 unanswered: the missing value
    assert table.batches == [[3, 1, 2, 0]]


async def test_calls_made_while_a_batch_runs_form_the_next_batch() -> None:
    table, grouped, first = await _first_batch_running()
    assert table.batches == [[1]]  # an idle group does not wait for more callers
    later = [asyncio.ensure_future(grouped(k)) for k in (2, 3, 4)]
    await asyncio.sleep(0.01)
    assert table.batches == [[1]]  # they wait for the running batch...
    assert table.gate is not None
    table.gate.set()
    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30, 40]
    assert table.batches == [[1], [2, 3, 4]]  # ...then go together
    assert grouped.batches == 2


async def test_one_key_asked_twice_is_read_once_and_both_callers_answered() -> None:
    table = Table()
    grouped = Grouped(table.run, missing=-1)
    assert await asyncio.gather(grouped(5), grouped(5), grouped(6)) == [50, 50, 60]
    assert table.batches == [[5, 6]]


async def test_batches_are_capped_and_no_call_is_left_behind() -> None:
    table = Table()
    grouped = Grouped(table.run, missing=-1, max_batch=3)
    answers = await asyncio.gather(*(grouped(k) for k in range(1, 9)))
    assert answers == [k * 10 for k in range(1, 9)]
    assert [len(b) for b in table.batches] == [3, 3, 2]


async def test_a_failed_batch_raises_to_its_callers_and_the_next_batch_runs() -> None:
    calls: list[list[int]] = []

    async def flaky(keys: Sequence[int]) -> Mapping[int, int]:
        calls.append(list(keys))
        if len(calls) == 1:
            raise ConnectionError("database away")
        return {k: k for k in keys}

    grouped = Grouped(flaky, missing=-1)
    results = await asyncio.gather(grouped(1), grouped(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await grouped(3) == 3  # the group is not stuck after a failure


async def test_a_cancelled_caller_leaves_the_others_answered() -> None:
    gate = asyncio.Event()
    table = Table(gate)
    grouped = Grouped(table.run, missing=-1)
    keep, drop = asyncio.ensure_future(grouped(1)), asyncio.ensure_future(grouped(2))
    await asyncio.sleep(0.01)
    drop.cancel()
    gate.set()
    assert await keep == 10
    with pytest.raises(asyncio.CancelledError):
        await drop


async def test_a_caller_cancelled_before_its_batch_is_not_asked_for() -> None:
    table, grouped, first = await _first_batch_running()
    gone, kept = asyncio.ensure_future(grouped(2)), asyncio.ensure_future(grouped(3))
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.sleep(0)
    assert table.gate is not None
    table.gate.set()
    assert (await first, await kept) == (10, 30)
    assert table.batches == [[1], [3]]


def test_a_batch_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Grouped(Table().run, missing=-1, max_batch=0)


async def test_stopping_the_group_mid_batch_leaves_no_caller_hanging() -> None:
    _table, grouped, running = await _first_batch_running()  # its gate is never set
    queued = asyncio.ensure_future(grouped(2))
    await asyncio.sleep(0)
    assert grouped._task is not None
    grouped._task.cancel()  # as the loop's shutdown does
    for caller in (running, queued):
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(caller, timeout=1)


def test_a_group_outlives_the_event_loop_it_first_ran_on() -> None:
    """A store built once and used from several loops (a CLI's runs, a test's) keeps answering
    even when a loop closed with the group's task unfinished."""
    gate = asyncio.Event()
    table = Table(gate)
    grouped = Grouped(table.run, missing=-1)

    async def abandoned() -> None:
        asyncio.ensure_future(grouped(1))
        await asyncio.sleep(0.01)  # the batch is running when this loop closes

    asyncio.run(abandoned())
    table.gate = None
    assert asyncio.run(grouped(2)) == 20


async def test_a_batch_runs_in_no_callers_context() -> None:
    """The batches serve every caller: the first caller's context variables (a request id
    bound for its logs, a quota class) must not follow them."""
    import contextvars

    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
    seen: list[str] = []

    async def run(keys: Sequence[int]) -> Mapping[int, int]:
        seen.append(request_id.get())
        return {k: k for k in keys}

    grouped = Grouped(run, missing=-1)
    request_id.set("req-of-the-first-caller")
    assert await grouped(1) == 1
    assert seen == [""]
