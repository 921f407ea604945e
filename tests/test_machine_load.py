"""The machine figures the benchmarks print beside their own (connector.testing.machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.testing import machine
from connector.testing.machine import CpuTimes, machine_load


def _stat(path: Path, user: int, idle: int, steal: int) -> None:
    path.write_text(f"cpu  {user} 0 0 {idle} 0 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")


def test_the_stolen_share_is_of_the_time_between_two_readings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stat = tmp_path / "stat"
    monkeypatch.setattr(machine, "_PROC_STAT", stat)
    _stat(stat, user=100, idle=100, steal=0)
    since = CpuTimes.now()
    _stat(stat, user=150, idle=120, steal=30)  # 100 ticks later, 30 of them stolen
    figures = machine_load(since)
    assert figures["cpu_steal_percent"] == 30.0
    assert isinstance(figures["load_avg_1m"], float)


def test_no_proc_stat_gives_the_load_average_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machine, "_PROC_STAT", tmp_path / "absent")
    assert CpuTimes.now() is None
    assert set(machine_load(None)) == {"load_avg_1m"}
