"""Backoff policy for retryable Gmail failures: capped exponential growth with full jitter.

Kept as a small value object rather than a retry library because the client's retry loop also
has to refresh tokens on 401, pause the user's quota budget on a rate limit, and resolve
unknown send outcomes by searching the mailbox: decisions a generic decorator cannot see.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_attempts` counts the first try; delays grow `base * multiplier**n` up to `cap`."""

    max_attempts: int = 5
    base_delay: float = 0.25
    multiplier: float = 2.0
    max_delay: float = 16.0
    # Retry-After can be long (mail-sending limits); beyond this we give up rather than stall.
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be non-negative and multiplier >= 1")

    def should_retry(self, attempt: int) -> bool:
        """`attempt` is the 1-based number of the attempt that just failed."""
        return attempt < self.max_attempts

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Full jitter (uniform in [0, ceiling]) spreads concurrent callers apart, which matters
        when many requests for one user hit the same limit at once. A server hint wins when
        it asks for longer than the jittered delay.
        """
        ceiling = min(self.max_delay, self.base_delay * self.multiplier ** (attempt - 1))
        jittered = self.rng.uniform(0.0, ceiling)
        if retry_after is not None:
            return max(jittered, min(retry_after, self.max_retry_after))
        return jittered


NO_RETRY = RetryPolicy(max_attempts=1)
