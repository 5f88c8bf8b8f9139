"""Liveness, readiness and counters of the consumer loop, per tenant."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class TenantHealth:
    """What one tenant's partition workers last saw of Redis and the database."""

    redis_ok: bool = True
    db_ok: bool = True
    last_error: str | None = None
    last_loop_at: float = field(default_factory=time.monotonic)
    counters: Counter[str] = field(default_factory=Counter)

    def beat(self) -> None:
        """Record that a worker loop went round."""
        self.last_loop_at = time.monotonic()

    def loop_age_s(self) -> float:
        """Seconds since any worker loop of this tenant went round."""
        return time.monotonic() - self.last_loop_at
