"""The verifier's witnessed checkpoints and its verdicts, pinned on plain rows.

Base case: the intact 12-row chain of test_verify_pinned with checkpoints at 4, 8 and 12 both in
the database and in the witness (clean, signed up to 12). Each case changes one thing: a
checkpoint gone from the database, a witness line forged, the database's copy replaced, the
tail cut, the chain rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from audit.records import Checkpoint, Row
from audit.signing import sign_checkpoint
from audit.verify import Authenticity, ChainVerifier, Damage, Problem, Trust, VerifyReport
from tests.audit.test_verify_pinned import CPS, KEY, KEYS, ROWS, UNKNOWN, _relinked_from

D = Damage
RESIGNED_8 = sign_checkpoint(KEY, 8, ROWS[7][9], datetime(2030, 1, 1, tzinfo=UTC))
BAD_8 = Checkpoint(8, CPS[1].head_hash, CPS[1].time, CPS[1].key_id, "00" * 64)


def verify(
    rows: Sequence[Row], in_db: Sequence[Checkpoint], witnessed: Sequence[Checkpoint]
) -> VerifyReport:
    verifier = ChainVerifier(in_db, KEYS, None, witnessed)
    verifier.feed(rows)
    return verifier.finish()


def test_witnessed_intact_chain_is_clean() -> None:
    """All three checkpoints in both places: no problem, three witnessed, signed up to 12."""
    report = verify(ROWS, CPS, CPS)
    assert report.problems == []
    assert (report.witnessed, report.checkpoints, report.signed_seq) == (3, 3, 12)


# name -> (rows, checkpoints in the database, witnessed checkpoints, exact problems)
CASES: dict[str, tuple[list[Row], list[Checkpoint], list[Checkpoint], list[Problem]]] = {
    "deleted from the database": (ROWS, [CPS[0], CPS[2]], CPS, [Problem(
        8, D.CHECKPOINT_DELETED, "the checkpoint at seq 8 is in the witness but not in the "
        "database")]),
    "all deleted from the database": (ROWS, [], CPS, [
        Problem(s, D.CHECKPOINT_DELETED,
                f"the checkpoint at seq {s} is in the witness but not in the database")
        for s in (4, 8, 12)]),
    "database copy replaced": (ROWS, [CPS[0], RESIGNED_8, CPS[2]], CPS, [
        Problem(8, D.FORGED_CHECKPOINT, "checkpoint at seq 8 differs from its witnessed copy")]),
    "witness line forged": (ROWS, CPS, [CPS[0], BAD_8, CPS[2]], [
        Problem(8, D.FORGED_CHECKPOINT, "witnessed checkpoint at seq 8 has an invalid signature")]),
    "witness line by unknown key": (ROWS, CPS, [CPS[0], UNKNOWN, CPS[2]], [Problem(
        8, D.FORGED_CHECKPOINT,
        f"witnessed checkpoint at seq 8 is signed by unknown key {UNKNOWN.key_id}")]),
    "forged witness line, database copy gone": (ROWS, [CPS[0], CPS[2]], [CPS[0], BAD_8, CPS[2]],
        [Problem(8, D.FORGED_CHECKPOINT,
                 "witnessed checkpoint at seq 8 has an invalid signature")]),
    "tail cut with the database's checkpoints": (ROWS[:9], CPS[:2], CPS, [Problem(
        10, D.TRUNCATED, "the witness holds a checkpoint at seq 12 but the log ends at 9")]),
    "tail cut, both copies kept": (ROWS[:9], CPS, CPS, [Problem(
        10, D.TRUNCATED, "a signed checkpoint covers seq 12 but the log ends at 9")]),
    "rewritten, database checkpoints gone": (_relinked_from(6), CPS[:1], CPS, [Problem(
        5, D.ALTERED, "chain rewritten between seq 5 and 8: head at 8 does not match its "
        "witnessed checkpoint")]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_one_witness_damage_is_named_exactly(name: str) -> None:
    """Each single change gives exactly this problem list (kind, seq, detail)."""
    rows, in_db, witnessed, problems = CASES[name]
    report = verify(rows, in_db, witnessed)
    assert report.problems == problems
    assert report.witnessed == len(witnessed)


def test_the_witness_is_used_even_when_the_database_has_nothing() -> None:
    """Witnessed checkpoints alone check the chain: a rewrite is caught, a clean chain signed."""
    report = verify(_relinked_from(1), [], CPS)
    assert report.problems == [Problem(
        1, D.ALTERED,
        "chain rewritten between seq 1 and 4: head at 4 does not match its witnessed checkpoint",
    )]  # fmt: skip


def test_a_forged_witness_line_does_not_replace_a_good_database_copy() -> None:
    """The database's valid checkpoint still checks the chain when the witness copy is forged."""
    report = verify(_relinked_from(6), CPS, [CPS[0], BAD_8, CPS[2]])
    assert [(p.seq, p.damage) for p in report.problems] == [
        (8, D.FORGED_CHECKPOINT), (5, D.ALTERED),
    ]  # fmt: skip
    assert report.problems[1].detail.endswith("does not match its signed checkpoint")


def test_witness_lines_in_any_order_are_checked_by_seq() -> None:
    """Witnessed checkpoints given in reverse order give the same, seq-ordered problems."""
    report = verify(ROWS, [], list(reversed(CPS)))
    assert [p.seq for p in report.problems] == [4, 8, 12]


@pytest.mark.parametrize(
    ("rows", "in_db", "signed"),
    [(ROWS, CPS, 12), (ROWS[:9], CPS, 8), (ROWS, [], 0), (_relinked_from(6), CPS, 4),
     (ROWS[:3], CPS, 0)],
)  # fmt: skip
def test_signed_seq_is_the_last_checkpoint_that_matched(
    rows: list[Row], in_db: list[Checkpoint], signed: int
) -> None:
    """signed_seq is the highest checkpoint the chain reached and matched, else 0."""
    assert verify(rows, in_db, []).signed_seq == signed


@pytest.mark.parametrize(
    ("rows", "in_db", "trust", "verdict"),
    [
        (ROWS, CPS, Trust.PINNED, Authenticity.AUTHENTIC),
        (ROWS, CPS, Trust.DATABASE, Authenticity.CONSISTENT_ONLY),
        (ROWS, [], Trust.PINNED, Authenticity.CONSISTENT_ONLY),
        (ROWS[:3], CPS[:0], Trust.PINNED, Authenticity.CONSISTENT_ONLY),
        ([], [], Trust.PINNED, Authenticity.AUTHENTIC),
        ([], [], Trust.DATABASE, Authenticity.CONSISTENT_ONLY),
        (ROWS[:9], CPS, Trust.PINNED, Authenticity.DAMAGED),
        (ROWS[:9], CPS, Trust.DATABASE, Authenticity.DAMAGED),
    ],
)
def test_authenticity(
    rows: list[Row], in_db: list[Checkpoint], trust: Trust, verdict: Authenticity
) -> None:
    """Damaged if any problem; authentic only with pinned keys that signed some of the events
    (or an empty log); otherwise consistent only."""
    report = verify(rows, in_db, [])
    report.trust = trust
    assert report.authenticity is verdict


def test_default_trust_is_the_database() -> None:
    """A fresh report trusts nothing beyond the database, and counts nothing witnessed."""
    report = VerifyReport()
    assert (report.trust, report.witnessed, report.signed_seq) == (Trust.DATABASE, 0, 0)
