"""One module's mutmut results as one JSON line (called by scripts/mutation.sh).

    python scripts/mutation_summary.py MODULE WORKDIR MUTMUT EQUIVALENT_FILE [PATTERN]

Reads `WORKDIR/results.txt` (the output of `mutmut results --all true`), and the equivalence
file, whose lines are `module | mutant id | mutated line | why`. A survivor counts as argued
equivalent only when both its id and its mutated line (from `mutmut show`, whitespace
normalised) match a line of the file, so a renumbering of mutants can never hide a new one.
PATTERN (fnmatch, default `*`) keeps only the mutants of the part of the file that is the module.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from pathlib import Path


def mutated_line(mutmut: str, work: str, mutant: str) -> str:
    """The mutant's changed line(s), whitespace-normalised, joined by ' / '."""
    shown = subprocess.run(
        [mutmut, "show", mutant], cwd=work, capture_output=True, text=True, check=False
    )
    added = [
        line[1:]
        for line in shown.stdout.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    return " / ".join(" ".join(line.split()) for line in added)


def argued(path: Path, module: str) -> dict[str, str]:
    """Mutant id -> mutated line, for this module's lines of the equivalence file."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text("utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) >= 4 and parts[0] == module:
            out[parts[1]] = " ".join(parts[2].split())
    return out


def main() -> None:
    module, work, mutmut, equivalent_file = sys.argv[1:5]
    pattern = sys.argv[5] if len(sys.argv) > 5 else "*"
    status: dict[str, str] = {}
    for line in Path(work, "results.txt").read_text("utf-8").splitlines():
        mutant, sep, state = line.strip().rpartition(": ")
        if sep and fnmatch.fnmatchcase(mutant, pattern):
            status[mutant] = state
    known = argued(Path(equivalent_file), module)
    survivors = sorted(m for m, s in status.items() if s == "survived")
    unargued: list[dict[str, str]] = []
    equivalent = 0
    for mutant in survivors:
        line = mutated_line(mutmut, work, mutant)
        if known.get(mutant) == line:
            equivalent += 1
        else:
            unargued.append({"id": mutant, "line": line})
    generated = len(status)
    killed = sum(1 for s in status.values() if s in ("killed", "caught by type check"))
    denominator = generated - equivalent
    summary = {
        "module": module,
        "generated": generated,
        "killed": killed,
        "survived": len(survivors),
        "timeout": sum(1 for s in status.values() if s == "timeout"),
        "no_tests": sum(1 for s in status.values() if s == "no tests"),
        "equivalent": equivalent,
        "score": round(killed / denominator, 4) if denominator else 1.0,
        "raw_score": round(killed / generated, 4) if generated else 1.0,
        "survivors": unargued,
    }
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
