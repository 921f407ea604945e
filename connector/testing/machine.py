"""How busy the machine was while a benchmark ran, beside its figures.

On a shared virtual machine the hypervisor can take a large share of the CPU from this guest
("steal": seen here at 100 % for whole seconds), and other processes take the rest; either
moves a throughput figure by 2-3x between identical runs. A benchmark prints both with its
figures so that a reader can tell a slow run from a slow machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """The machine's CPU time counters (all cores, clock ticks) at one moment."""

    total: int
    steal: int

    @classmethod
    def now(cls) -> CpuTimes | None:
        """None where there is no /proc/stat (not Linux)."""
        try:
            first = _PROC_STAT.read_text().split("\n", 1)[0].split()
        except OSError:
            return None
        # cpu user nice system idle iowait irq softirq steal guest guest_nice
        ticks = [int(value) for value in first[1:9]]
        return cls(sum(ticks), ticks[7] if len(ticks) > 7 else 0)


def machine_load(since: CpuTimes | None) -> dict[str, object]:
    """The 1-minute load average, and the share of CPU time stolen since `since`."""
    figures: dict[str, object] = {"load_avg_1m": round(os.getloadavg()[0], 2)}
    now = CpuTimes.now()
    if since is not None and now is not None and now.total > since.total:
        share = (now.steal - since.steal) / (now.total - since.total)
        figures["cpu_steal_percent"] = round(100 * share, 1)
    return figures
