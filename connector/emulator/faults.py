"""Seeded fault injection: 5xx answers, latency, dropped connections, post-commit failures.

Decisions come from one `random.Random(seed)`, so a given request sequence meets the same faults
on every run, which lets retry and exactly-once tests be deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    NONE = "none"
    ERROR = "error"  # answer 500 or 503 without doing the work
    DROP = "drop"  # close the connection without any response
    AFTER_COMMIT_ERROR = "after_commit_error"  # do the work (e.g. send), then answer 5xx
    AFTER_COMMIT_DROP = "after_commit_drop"  # do the work, then drop the connection


SEND_METHODS = frozenset({"messages.send", "drafts.send"})


@dataclass
class FaultConfig:
    seed: int | str = 0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 503)
    latency_ms: float = 0.0  # added to every Gmail call
    latency_jitter_ms: float = 0.0
    drop_rate: float = 0.0
    after_commit_rate: float = 0.0  # for sends: commit, then fail
    after_commit_drop: bool = False  # the post-commit failure drops instead of answering 5xx
    methods: frozenset[str] | None = None  # limit faults to these methods (e.g. "messages.send")

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate", "after_commit_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.latency_ms < 0 or self.latency_jitter_ms < 0:
            raise ValueError("latency must be non-negative")
        for status in self.error_statuses:
            if status not in (500, 503):
                raise ValueError(f"error status must be 500 or 503, got {status}")


@dataclass
class FaultDecision:
    kind: FaultKind = FaultKind.NONE
    status: int = 500
    delay: float = 0.0


@dataclass
class FaultInjector:
    config: FaultConfig | None = None
    _rng: random.Random = field(default_factory=random.Random)
    injected: int = 0

    def __post_init__(self) -> None:
        self.set_config(self.config)

    def set_config(self, config: FaultConfig | None) -> None:
        self.config = config
        # Not security relevant: reproducible fault schedules are the point.
        self._rng = random.Random(str(config.seed) if config else 0)  # noqa: S311

    def decide(self, method: str) -> FaultDecision:
        config = self.config
        if config is None or (config.methods is not None and method not in config.methods):
            return FaultDecision()
        rng = self._rng
        # Always draw the same number of values per call so decisions stay aligned by index.
        roll_drop, roll_error, roll_after, roll_status, roll_delay = (
            rng.random() for _ in range(5)
        )
        delay = (config.latency_ms + config.latency_jitter_ms * roll_delay) / 1000.0
        status = config.error_statuses[int(roll_status * len(config.error_statuses))]
        kind = FaultKind.NONE
        if roll_drop < config.drop_rate:
            kind = FaultKind.DROP
        elif roll_error < config.error_rate:
            kind = FaultKind.ERROR
        elif method in SEND_METHODS and roll_after < config.after_commit_rate:
            kind = (
                FaultKind.AFTER_COMMIT_DROP
                if config.after_commit_drop
                else (FaultKind.AFTER_COMMIT_ERROR)
            )
        if kind is not FaultKind.NONE:
            self.injected += 1
        return FaultDecision(kind, status, delay)
