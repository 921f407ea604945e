"""The due scan's window, pure: full at start, every `full_every` and after a scan that hit
its limit; otherwise above the newest seq of the last scan less the lookback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector.delivery.scan import ScanWindow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_first_scan_is_full_then_scans_read_above_the_floor() -> None:
    w = ScanWindow(lookback=100, full_every=timedelta(seconds=60))
    assert w.after(T0) is None
    w.scanned(T0, None, newest=1_000, hit_limit=False)
    assert w.after(T0 + timedelta(seconds=1)) == 900
    w.scanned(T0 + timedelta(seconds=1), 900, newest=1_050, hit_limit=False)
    assert w.after(T0 + timedelta(seconds=2)) == 950
    assert w.after(T0 + timedelta(seconds=60)) is None  # the periodic full scan


def test_a_scan_that_hit_its_limit_is_followed_by_a_full_one() -> None:
    w = ScanWindow(lookback=100)
    w.scanned(T0, None, newest=1_000, hit_limit=False)
    w.scanned(T0, 900, newest=1_000, hit_limit=True)
    assert w.after(T0 + timedelta(seconds=1)) is None


def test_the_floor_never_goes_below_zero() -> None:
    w = ScanWindow(lookback=100)
    w.scanned(T0, None, newest=5, hit_limit=False)
    assert w.after(T0) == 0
