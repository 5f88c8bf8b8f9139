"""How partition workers read, claim, retry and back off: the options and their defaults.

The defaults are defined here once; the settings (``[drainer]``) use these constants.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_READ_COUNT = 500
DEFAULT_LOOP_INTERVAL_MS = 100
DEFAULT_IDLE_POLL_MAX_MS = 1000
DEFAULT_CLAIM_MIN_IDLE_MS = 30_000
DEFAULT_SLOW_BATCH_MS = 2_000
DEFAULT_RETRY_BACKOFF_BASE_MS = 100
DEFAULT_RETRY_BACKOFF_MAX_MS = 30_000
DEFAULT_MAX_CONCURRENT_PARTITIONS = 8
DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024
DEFAULT_CONSUMER_SWEEP_IDLE_MS = 3_600_000
DEFAULT_CONSUMER_SWEEP_INTERVAL_MS = 300_000
DEFAULT_HONOUR_HYPERSWITCH_LOCK = True
DEFAULT_WAKE_IDLE_PARTITIONS = True
DEFAULT_ADAPTIVE_CONCURRENCY = True


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """How partition workers read, claim, retry and back off."""

    group: str
    consumer: str
    max_read_count: int = DEFAULT_MAX_READ_COUNT
    loop_interval_ms: int = DEFAULT_LOOP_INTERVAL_MS
    idle_poll_max_ms: int = DEFAULT_IDLE_POLL_MAX_MS
    claim_min_idle_ms: int = DEFAULT_CLAIM_MIN_IDLE_MS
    slow_batch_ms: int = DEFAULT_SLOW_BATCH_MS
    retry_backoff_base_ms: int = DEFAULT_RETRY_BACKOFF_BASE_MS
    retry_backoff_max_ms: int = DEFAULT_RETRY_BACKOFF_MAX_MS
    max_concurrent_partitions: int = DEFAULT_MAX_CONCURRENT_PARTITIONS
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    consumer_sweep_idle_ms: int = DEFAULT_CONSUMER_SWEEP_IDLE_MS
    consumer_sweep_interval_ms: int = DEFAULT_CONSUMER_SWEEP_INTERVAL_MS
    honour_hyperswitch_lock: bool = DEFAULT_HONOUR_HYPERSWITCH_LOCK
    #: Idle partitions woken by a blocking XREAD when an entry comes (consumers.waker).
    wake_idle_partitions: bool = DEFAULT_WAKE_IDLE_PARTITIONS
    #: The limit of partitions worked at once follows the throughput (consumers.limiter).
    adaptive_concurrency: bool = DEFAULT_ADAPTIVE_CONCURRENCY
