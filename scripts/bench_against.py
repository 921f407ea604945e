"""Run a benchmark on an older commit and on this tree, alternately, on the same machine.

The figures in an issue were measured on the machine as it was that day; on a shared virtual
machine the same code can run half as fast a week later (CPU steal, a slower host). What a
change achieved is then the ratio to the old code measured now, in the same hour:

    python scripts/bench_against.py 21da8bc audit --runs 3 -- --big 1000000
    python scripts/bench_against.py 21da8bc service --runs 3

Arguments after `--` go to both benchmarks.
The old commit is checked out with `git worktree` into a new temporary directory (removed
afterwards); both trees run with this environment's interpreter, the old tree first in each
pair. Each run's figures are read from the benchmark's JSON (old and new layouts alike) with
the machine's CPU steal over that run. Prints ONE JSON line: every run, and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.testing.machine import CpuTimes, machine_load  # noqa: E402

Figures = dict[str, float | None]


def _audit_figures(out: dict[str, object]) -> Figures:
    # new layout: headline + "detail"; old layout: the parts at the top level
    parts = out.get("detail", out)
    assert isinstance(parts, dict)

    def get(part: str, key: str) -> float | None:
        value = (parts.get(part) or {}).get(key)
        return None if value is None else float(value)

    return {
        "appends_per_s_sqlite": get("sqlite_append", "events_per_s"),
        "append_p99_ms_sqlite": get("sqlite_append", "latency_p99_ms"),
        "appends_per_s_pg": get("postgres_append", "events_per_s"),
        "append_p99_ms_pg": get("postgres_append", "latency_p99_ms"),
        "verify_seq_per_s_sqlite": get("sqlite_big", "verify_events_per_s"),
        "verify_par_per_s_sqlite": get("sqlite_big", "verify_parallel_events_per_s"),
        "verify_seq_per_s_pg": get("postgres_big", "verify_events_per_s"),
        "verify_par_per_s_pg": get("postgres_big", "verify_parallel_events_per_s"),
    }


def _service_figures(out: dict[str, object]) -> Figures:
    service, direct = out["service"], out["direct_to_emulator"]
    assert isinstance(service, dict)
    assert isinstance(direct, dict)
    ratio = out.get("overhead_ratio_time_per_request", out.get("ratio"))
    return {
        "reads_per_s": float(service["requests_per_s"]),
        "p50_ms": float(service["p50_ms"]),
        "p99_ms": float(service["p99_ms"]),
        "direct_reads_per_s": float(direct["requests_per_s"]),
        "ratio": None if ratio is None else float(ratio),  # type: ignore[arg-type]
    }


BENCHES: dict[str, tuple[str, Callable[[dict[str, object]], Figures]]] = {
    "audit": ("scripts/bench_audit.py", _audit_figures),
    "service": ("scripts/bench_service.py", _service_figures),
}


def _run(tree: Path, script: str, args: list[str]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, script, *args],
        check=False,
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{script} failed in {tree} (exit {done.returncode}):\n{done.stderr}")
    # the JSON is the last thing printed; the old bench_audit indents it over several lines
    text = done.stdout.strip()
    start = text.rfind("\n{") + 1 if not text.startswith("{") else 0
    parsed = json.loads(text[start:])
    assert isinstance(parsed, dict)
    return parsed


def _medians(runs: list[Figures]) -> Figures:
    keys = runs[0].keys() if runs else []
    medians: Figures = {}
    for key in keys:
        values = [run[key] for run in runs if run.get(key) is not None]
        medians[key] = statistics.median(values) if values else None  # type: ignore[type-var]
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the older commit (any git revision)")
    parser.add_argument("bench", choices=sorted(BENCHES))
    parser.add_argument("--runs", type=int, default=3, help="pairs of runs (default 3)")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    bench_args = argv[split + 1 :]  # after --: passed to both benchmarks
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{args.rev}^{{commit}}"],
        check=False,
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        parser.error(f"{args.rev!r} is not a commit of {ROOT}")
    commit = found.stdout.strip()
    script, figures_of = BENCHES[args.bench]
    with tempfile.TemporaryDirectory(prefix="bench-against-") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(old), commit],
            check=True,
        )
        try:
            if not (old / script).exists():
                raise SystemExit(f"{script} does not exist at {args.rev}")
            runs: dict[str, list[Figures]] = {"old": [], "new": []}
            steal: dict[str, list[object]] = {"old": [], "new": []}
            for _ in range(args.runs):
                for name, tree in (("old", old), ("new", ROOT)):
                    since = CpuTimes.now()
                    runs[name].append(figures_of(_run(tree, script, bench_args)))
                    steal[name].append(machine_load(since).get("cpu_steal_percent"))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False
            )
    print(
        json.dumps(
            {
                "bench": args.bench,
                "old": commit,
                "new": "working tree",
                "runs": runs,
                "cpu_steal_percent": steal,
                "median_old": _medians(runs["old"]),
                "median_new": _medians(runs["new"]),
            }
        )
    )


if __name__ == "__main__":
    main()
