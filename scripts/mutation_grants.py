"""Mutants of the policy's grant table, which mutmut cannot make (it mutates no module-level value).

    python scripts/mutation_grants.py TEST_FILE...

For every grant of `connector.policy.rules.GRANTS`, one mutant per condition dropped, per
operation dropped and (for grants with several) per purpose dropped. Each mutant is installed in
a child process forked from this one (the table and its per-actor index replaced in memory; no
file is written) and the given tests run there; a mutant is killed when they fail. Prints one
JSON line like scripts/mutation.sh's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys

import pytest

from audit.vocab import ActorKind
from connector.policy import rules


def run_one(kind: str, grant: int, index: int, tests: list[str]) -> int:
    """Install one mutant of the table in this (forked) process and run the tests; exit code."""
    table = list(rules.GRANTS)
    g = table[grant]
    if kind == "condition":
        g = dataclasses.replace(g, conditions=g.conditions[:index] + g.conditions[index + 1 :])
    elif kind == "operation":
        g = dataclasses.replace(g, operations=g.operations - {sorted(g.operations)[index]})
    elif kind == "purpose":
        g = dataclasses.replace(g, purposes=g.purposes - {sorted(g.purposes)[index]})
    table[grant] = g
    rules.GRANTS = tuple(table)
    rules._BY_ACTOR = {k: tuple(x for x in rules.GRANTS if x.actor is k) for k in ActorKind}
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        return int(pytest.main(["-q", "-x", "-p", "no:cacheprovider", *tests]))


def forked(kind: str, grant: int, index: int, tests: list[str]) -> int | None:
    """run_one in a child forked from this process (imports paid once); None on timeout."""
    pid = os.fork()
    if pid == 0:
        signal.alarm(120)
        code = 1
        try:
            code = run_one(kind, grant, index, tests)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
        return None
    return os.waitstatus_to_exitcode(status)


def mutants() -> list[tuple[str, int, int, str]]:
    out: list[tuple[str, int, int, str]] = []
    for gi, grant in enumerate(rules.GRANTS):
        for ci, condition in enumerate(grant.conditions):
            out.append(("condition", gi, ci, f"{grant.name}: drop {type(condition).__name__}"))
        for oi, operation in enumerate(sorted(grant.operations)):
            out.append(("operation", gi, oi, f"{grant.name}: drop operation {operation}"))
        if len(grant.purposes) > 1:
            for pi, purpose in enumerate(sorted(grant.purposes)):
                out.append(("purpose", gi, pi, f"{grant.name}: drop purpose {purpose}"))
    return out


def main() -> None:
    tests = sys.argv[1:]
    survivors: list[str] = []
    timeouts = 0
    every = mutants()
    baseline = forked("none", 0, 0, tests)
    if baseline != 0:  # the tests must pass on the real table, or no kill means anything
        sys.exit(f"mutation_grants: the tests fail unmutated (pytest exit {baseline})")
    for kind, grant, index, what in every:
        code = forked(kind, grant, index, tests)
        if code is None:
            timeouts += 1
        elif code == 0:
            survivors.append(what)
        elif code != 1:  # 2-5: interrupted, internal error, usage error, no tests
            sys.exit(f"mutation_grants: pytest exit {code} on mutant {what!r}")
    generated = len(every)
    killed = generated - len(survivors) - timeouts
    print(json.dumps({
        "module": "policy_grants", "generated": generated, "killed": killed,
        "survived": len(survivors), "timeout": timeouts, "no_tests": 0, "equivalent": 0,
        "score": round(killed / generated, 4) if generated else 1.0,
        "raw_score": round(killed / generated, 4) if generated else 1.0,
        "survivors": [{"id": s, "line": ""} for s in survivors],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
