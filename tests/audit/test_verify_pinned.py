"""The verifier pinned on plain rows: one damage at a time, its exact kind, seq and detail.

Each case starts from an intact chain of 12 rows with signed checkpoints at 4, 8 and 12 (which
verifies clean), makes one change, and asserts the complete problem list. Every case is then
replayed in chunks of every size, since stores stream rows in pages and a bad row at a chunk's
end is classified by the first row of the next chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from audit.chain import Pending, link, row_of
from audit.hashing import GENESIS_HASH
from audit.records import Checkpoint, Row
from audit.signing import generate_key, key_id, sign_checkpoint
from audit.verify import ChainVerifier, Damage, Problem, VerifyReport
from tests.audit.helpers import make_event

N = 12
KEY = generate_key()
KID = key_id(KEY.public_key())
KEYS = {KID: KEY.public_key()}
ROWS: list[Row] = [
    row_of(item) for item in link(0, GENESIS_HASH, [Pending.of(make_event(i)) for i in range(N)])
]
CPS = [sign_checkpoint(KEY, seq, ROWS[seq - 1][9]) for seq in (4, 8, 12)]
D = Damage


def at(rows: Sequence[Row], seq: int, index: int, value: object) -> list[Row]:
    """The rows with field `index` of the row at `seq` replaced."""
    out = list(rows)
    out[seq - 1] = (*out[seq - 1][:index], value, *out[seq - 1][index + 1 :])  # type: ignore[assignment]
    return out


def renumbered(rows: Sequence[Row]) -> list[Row]:
    """The rows with seqs rewritten to 1..n, hashes untouched (closing a gap)."""
    return [(n, *row[1:]) for n, row in enumerate(rows, start=1)]  # type: ignore[misc]


def verify(
    rows: Sequence[Row],
    checkpoints: Sequence[Checkpoint] = CPS,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    verifier = ChainVerifier(checkpoints, KEYS, progress)
    size = chunk or max(len(rows), 1)
    for start in range(0, max(len(rows), 1), size):
        verifier.feed(rows[start : start + size])
    return verifier.finish()


def _relinked_from(seq: int) -> list[Row]:
    """A self-consistent chain that differs from ROWS from `seq` on (hashes recomputed)."""
    tail = link(seq - 1, ROWS[seq - 2][9] if seq > 1 else GENESIS_HASH,
                [Pending.of(make_event(i + 100)) for i in range(seq - 1, N)])  # fmt: skip
    return ROWS[: seq - 1] + [row_of(item) for item in tail]


OTHER_KEY = generate_key()
FORGED_SIG = sign_checkpoint(OTHER_KEY, 8, ROWS[7][9])
FORGED_SIG = Checkpoint(8, FORGED_SIG.head_hash, FORGED_SIG.time, KID, FORGED_SIG.signature)
UNKNOWN = sign_checkpoint(OTHER_KEY, 8, ROWS[7][9])
UNKNOWN_KID = UNKNOWN.key_id
MOVED_HEAD = Checkpoint(8, ROWS[6][9].hex(), CPS[1].time, KID, CPS[1].signature)
BEFORE6 = "the event before seq 6 in the chain is missing"
REWRITTEN = "head at {} does not match its signed checkpoint"

# A case: (rows, checkpoints, exact problems)
Case = tuple[list[Row], list[Checkpoint], list[Problem]]


def column_edited(index: int, value: object) -> Case:
    """The rows with index column `index` of seq 5 set to `value`, which its body does not say."""
    return (
        at(ROWS, 5, index, value),
        CPS,
        [Problem(5, D.ALTERED, "index columns of seq 5 differ from its body")],
    )


# name -> case
CASES: dict[str, Case] = {
    "body altered at 1": (at(ROWS, 1, 7, ROWS[0][7].replace('"m_0"', '"m_x"')), CPS,
                          [Problem(1, D.ALTERED, "event 1 does not match its hash")]),
    "body altered at 6": (at(ROWS, 6, 7, ROWS[5][7].replace('"m_5"', '"m_x"')), CPS,
                          [Problem(6, D.ALTERED, "event 6 does not match its hash")]),
    "last body altered": (at(ROWS, 12, 7, ROWS[11][7].replace('"m_11"', '"m_x"')), CPS,
                          [Problem(12, D.ALTERED, "event 12 does not match its hash")]),
    "hash altered at 6": (at(ROWS, 6, 9, bytes(32)), CPS,
                          [Problem(6, D.ALTERED, "event 6 does not match its hash")]),
    "prev altered at 6": (at(ROWS, 6, 8, bytes(32)), CPS,
                          [Problem(6, D.DELETED, BEFORE6)]),
    "last prev altered": (at(ROWS, 12, 8, bytes(32)), CPS, [
        Problem(12, D.DELETED, "the event before seq 12 in the chain is missing")]),
    "time column": column_edited(1, "2030-01-01T00:00:00.000000Z"),
    "account column": column_edited(2, "other"),
    "account column emptied": column_edited(2, None),
    "actor column": column_edited(3, "u9"),
    "action column": column_edited(4, "gmail.message.send"),
    "purpose column": column_edited(5, None),
    "decision column": column_edited(6, "deny"),
    "first deleted": (ROWS[1:], CPS, [Problem(1, D.DELETED, "events 1 are missing")]),
    "one deleted": (ROWS[:5] + ROWS[6:], CPS, [Problem(6, D.DELETED, "events 6 are missing")]),
    "two deleted": (ROWS[:5] + ROWS[7:], CPS, [Problem(6, D.DELETED, "events 6..7 are missing")]),
    "deleted, renumbered": (renumbered(ROWS[:5] + ROWS[6:]), CPS,
                            [Problem(6, D.DELETED, BEFORE6)]),
    "swapped 6 and 7": (renumbered([*ROWS[:5], ROWS[6], ROWS[5], *ROWS[7:]]), CPS,
                        [Problem(6, D.REORDERED, "event at seq 6 belongs after seq 7")]),
    "seq goes back": (ROWS[:5] + [ROWS[2]] + ROWS[5:], CPS,
                      [Problem(3, D.REORDERED, "seq 3 appears after 5")]),
    "seq repeated": (ROWS[:5] + [ROWS[4]] + ROWS[5:], CPS,
                     [Problem(5, D.REORDERED, "seq 5 appears after 5")]),
    "inserted at 6": (renumbered([*ROWS[:5], ROWS[2], *ROWS[5:]]), CPS,
                      [Problem(6, D.INSERTED, "event at seq 6 is not linked from the chain")]),
    "truncated after 9": (ROWS[:9], CPS, [
        Problem(10, D.TRUNCATED, "a signed checkpoint covers seq 12 but the log ends at 9")]),
    "all gone": ([], CPS, [
        Problem(1, D.TRUNCATED, "a signed checkpoint covers seq 12 but the log ends at 0")]),
    "signed by another key": ([*ROWS], [CPS[0], FORGED_SIG, CPS[2]], [
        Problem(8, D.FORGED_CHECKPOINT, "checkpoint at seq 8 has an invalid signature")]),
    "head moved": ([*ROWS], [CPS[0], MOVED_HEAD, CPS[2]], [
        Problem(8, D.FORGED_CHECKPOINT, "checkpoint at seq 8 has an invalid signature")]),
    "unknown key": ([*ROWS], [CPS[0], UNKNOWN, CPS[2]], [Problem(
        8, D.FORGED_CHECKPOINT, f"checkpoint at seq 8 is signed by unknown key {UNKNOWN_KID}")]),
    "forged checkpoint beyond the end": (ROWS[:9], [CPS[0], CPS[1], Checkpoint(
        12, CPS[2].head_hash, CPS[2].time, KID, "00" * 64)], [
        Problem(12, D.FORGED_CHECKPOINT, "checkpoint at seq 12 has an invalid signature")]),
    "rewritten from 1": (_relinked_from(1), CPS, [Problem(
        1, D.ALTERED, f"chain rewritten between seq 1 and 4: {REWRITTEN.format(4)}")]),
    "rewritten from 6": (_relinked_from(6), CPS, [Problem(
        5, D.ALTERED, f"chain rewritten between seq 5 and 8: {REWRITTEN.format(8)}")]),
    "rewritten last": (_relinked_from(12), CPS, [Problem(
        9, D.ALTERED, f"chain rewritten between seq 9 and 12: {REWRITTEN.format(12)}")]),
    "two damages": (at(ROWS[:6] + ROWS[7:], 3, 3, "u9"), CPS,
                    [Problem(3, D.ALTERED, "index columns of seq 3 differ from its body")]),
    "broken and truncated": (at(ROWS[:9], 2, 9, bytes(32)), CPS,
                             [Problem(2, D.ALTERED, "event 2 does not match its hash")]),
}  # fmt: skip
# After a break the report's head is the last good row.
GOOD_HEAD = {
    "rewritten from 6": 7, "rewritten last": 11, "rewritten from 1": 3, "seq goes back": 5,
    "seq repeated": 5,
}  # fmt: skip


def test_intact_chain_verifies_clean() -> None:
    """The base case: 12 intact rows and 3 valid checkpoints give no problem and the real head."""
    report = verify(ROWS)
    assert (report.ok, report.problems, report.first, report.notes) == (True, [], None, [])
    assert (report.events, report.head_seq, report.checkpoints) == (12, 12, 3)
    assert report.head_hash == ROWS[-1][9].hex()


def test_empty_log_without_checkpoints_is_clean() -> None:
    """No rows, no checkpoints: clean, head at seq 0 with the genesis hash."""
    report = verify([], [])
    assert (report.ok, report.events, report.head_seq) == (True, 0, 0)
    assert report.head_hash == GENESIS_HASH.hex() == "0" * 64


def test_checkpoint_exactly_at_the_head_is_not_truncation() -> None:
    """A checkpoint at the last row is fine; one row fewer is truncation."""
    assert verify(ROWS[:8], CPS[:2]).ok
    assert verify(ROWS[:7], CPS[:2]).problems == [
        Problem(8, D.TRUNCATED, "a signed checkpoint covers seq 8 but the log ends at 7")
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_one_damage_is_named_exactly(name: str) -> None:
    """Each single change gives exactly this problem list (kind, first bad seq, detail)."""
    rows, checkpoints, problems = CASES[name]
    report = verify(rows, checkpoints)
    assert report.problems == problems
    assert not report.ok


@pytest.mark.parametrize("name", list(CASES))
def test_report_head_stops_at_the_last_good_row(name: str) -> None:
    """After a break, events/head_seq/head_hash describe the chain up to the last good row."""
    rows, checkpoints, problems = CASES[name]
    report = verify(rows, checkpoints)
    chain_problems = [p for p in problems if p.damage is not D.FORGED_CHECKPOINT]
    if not chain_problems:
        good = len(rows)
    elif chain_problems[0].damage is D.TRUNCATED:
        good = chain_problems[0].seq - 1
    else:
        good = GOOD_HEAD.get(name, chain_problems[0].seq - 1)
    assert (report.events, report.head_seq) == (good, good)
    assert report.head_hash == (rows[good - 1][9].hex() if good else GENESIS_HASH.hex())


@pytest.mark.parametrize("chunk", range(1, N + 2))
def test_any_chunking_gives_the_same_report(chunk: int) -> None:
    """Feeding rows in chunks of any size reports what one feed reports, for every case."""
    for name, (rows, checkpoints, problems) in CASES.items():
        whole = verify(rows, checkpoints)
        parts = verify(rows, checkpoints, chunk=chunk)
        assert parts.problems == problems, (name, chunk)
        assert (parts.events, parts.head_hash) == (whole.events, whole.head_hash), (name, chunk)


def test_progress_reports_rows_verified_after_each_feed() -> None:
    """The progress callback gets the count of rows verified so far, after every feed."""
    seen: list[int] = []
    verify(ROWS, chunk=5, progress=seen.append)
    assert seen == [5, 10, 12]
    seen.clear()
    verify(at(ROWS, 7, 9, bytes(32)), chunk=5, progress=seen.append)
    assert seen == [5, 6, 6]


def test_checkpoint_problems_come_first_but_first_is_the_lowest_seq() -> None:
    """Forged checkpoints are found up front, sorted by seq; `first` is the earliest damage."""
    bad = Checkpoint(4, CPS[0].head_hash, CPS[0].time, KID, "00" * 64)
    report = verify(at(ROWS, 3, 9, bytes(32)), [CPS[2], UNKNOWN, bad])
    assert [(p.seq, p.damage) for p in report.problems] == [
        (4, D.FORGED_CHECKPOINT), (8, D.FORGED_CHECKPOINT), (3, D.ALTERED),
    ]  # fmt: skip
    assert report.first == Problem(3, D.ALTERED, "event 3 does not match its hash")
    assert report.checkpoints == 3


def test_checkpoints_given_in_any_order_are_checked_by_seq() -> None:
    """A valid checkpoint list in reverse order verifies like the sorted one."""
    assert verify(ROWS, list(reversed(CPS))).ok
    assert verify(_relinked_from(6), list(reversed(CPS))).problems == CASES["rewritten from 6"][2]


def test_without_keys_every_checkpoint_is_unknown() -> None:
    """With no public keys, each checkpoint is reported as signed by an unknown key."""
    report = ChainVerifier(CPS, None)
    report.feed(ROWS)
    problems = report.finish().problems
    assert [(p.seq, p.damage) for p in problems] == [(s, D.FORGED_CHECKPOINT) for s in (4, 8, 12)]


def test_feeding_after_a_break_changes_nothing() -> None:
    """Once broken, later rows (even good ones) are ignored."""
    verifier = ChainVerifier(CPS, KEYS)
    verifier.feed(ROWS[:3] + ROWS[4:6])
    verifier.feed(ROWS[6:])
    report = verifier.finish()
    assert report.problems == [Problem(4, D.DELETED, "events 4 are missing")]
    assert report.events == 3
