"""The settings' named constants: every default, every bound, the environment's names.

A default the consumer loop or the stream layout also uses is defined once, in that
lower layer (:mod:`drainer.consumers.options`, :mod:`drainer.consumers.streams`), and
only re-exported here, so a key's default and the loop's default cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

from drainer.consumers.options import (
    DEFAULT_ADAPTIVE_CONCURRENCY,
    DEFAULT_CLAIM_MIN_IDLE_MS,
    DEFAULT_CONSUMER_SWEEP_IDLE_MS,
    DEFAULT_CONSUMER_SWEEP_INTERVAL_MS,
    DEFAULT_HONOUR_HYPERSWITCH_LOCK,
    DEFAULT_IDLE_POLL_MAX_MS,
    DEFAULT_LOOP_INTERVAL_MS,
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_CONCURRENT_PARTITIONS,
    DEFAULT_MAX_READ_COUNT,
    DEFAULT_RETRY_BACKOFF_BASE_MS,
    DEFAULT_RETRY_BACKOFF_MAX_MS,
    DEFAULT_SLOW_BATCH_MS,
    DEFAULT_WAKE_IDLE_PARTITIONS,
)
from drainer.consumers.streams import DEFAULT_NUM_PARTITIONS, DEFAULT_STREAM_NAME

__all__ = [
    "DEFAULT_ADAPTIVE_CONCURRENCY",
    "DEFAULT_CLAIM_MIN_IDLE_MS",
    "DEFAULT_CONSUMER_GROUP",
    "DEFAULT_CONSUMER_SWEEP_IDLE_MS",
    "DEFAULT_CONSUMER_SWEEP_INTERVAL_MS",
    "DEFAULT_DB_CONNECTION_TIMEOUT_S",
    "DEFAULT_DB_HOST",
    "DEFAULT_DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS",
    "DEFAULT_DB_LOCK_TIMEOUT_MS",
    "DEFAULT_DB_NAME",
    "DEFAULT_DB_POOL_SIZE",
    "DEFAULT_DB_PORT",
    "DEFAULT_DB_STATEMENT_TIMEOUT_MS",
    "DEFAULT_DB_USERNAME",
    "DEFAULT_DEAD_LETTER_SCAN_MAX",
    "DEFAULT_HONOUR_HYPERSWITCH_LOCK",
    "DEFAULT_HYPERSWITCH_METRICS",
    "DEFAULT_IDLE_POLL_MAX_MS",
    "DEFAULT_LOG_FORMAT",
    "DEFAULT_LOG_LEVEL",
    "DEFAULT_LOOP_INTERVAL_MS",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_MAX_CONCURRENT_PARTITIONS",
    "DEFAULT_MAX_READ_COUNT",
    "DEFAULT_NUM_PARTITIONS",
    "DEFAULT_ON_DEAD_LETTER",
    "DEFAULT_REDIS_HOST",
    "DEFAULT_REDIS_POOL_SIZE",
    "DEFAULT_REDIS_PORT",
    "DEFAULT_RETRY_BACKOFF_BASE_MS",
    "DEFAULT_RETRY_BACKOFF_MAX_MS",
    "DEFAULT_SERVER_HOST",
    "DEFAULT_SERVER_PORT",
    "DEFAULT_SERVICE_NAME",
    "DEFAULT_SHUTDOWN_INTERVAL_MS",
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "DEFAULT_SLOW_BATCH_MS",
    "DEFAULT_STREAM_NAME",
    "DEFAULT_TENANT_ID",
    "DEFAULT_TENANT_REDIS_KEY_PREFIX",
    "DEFAULT_TENANT_SCHEMA",
    "DEFAULT_WAKE_IDLE_PARTITIONS",
    "DEFAULT_WORKERS",
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "MAX_DB_TIMEOUT_MS",
    "MAX_DEAD_LETTER_SCAN_MAX",
    "MAX_MAX_READ_COUNT",
    "MAX_NUM_PARTITIONS",
    "MAX_WORKERS",
    "MIN_DB_SESSION_TIMEOUT_MS",
    "POD_NAME_ENV",
]

# ---- the environment

ENV_PREFIX = "DRAINER__"
"""Prefix of environment overrides: ``DRAINER__<SECTION>__<KEY>``."""
ENV_NESTED_DELIMITER = "__"
"""Separator between the levels of an environment override's name."""
POD_NAME_ENV = "POD_NAME"
"""Environment variable whose value, when set, replaces the host name in the consumer name."""

# ---- [drainer] (the consumer loop's and the stream layout's defaults are imported above)

MAX_NUM_PARTITIONS = 16384
MAX_MAX_READ_COUNT = 10_000
DEFAULT_SHUTDOWN_INTERVAL_MS = 1000
DEFAULT_CONSUMER_GROUP = "drainer"
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_ON_DEAD_LETTER: Literal["continue", "park_entity"] = "continue"
DEFAULT_SHUTDOWN_TIMEOUT_S = 30.0
DEFAULT_WORKERS = 1
#: Most consumer processes ``drainer run`` starts: each holds its own pools (database
#: ``pool_size``, Redis ``pool_size``), so beyond a host's cores more only cost connections.
MAX_WORKERS = 64

# ---- [master_database]

DEFAULT_DB_HOST = "127.0.0.1"
DEFAULT_DB_PORT = 5432
DEFAULT_DB_USERNAME = "postgres"
DEFAULT_DB_NAME = "postgres"
DEFAULT_DB_POOL_SIZE = 10
DEFAULT_DB_CONNECTION_TIMEOUT_S = 10.0
# Session timeouts PostgreSQL enforces on every drainer connection, so that a frozen
# replica's open transaction ends and its locks are released (docs/operations.md).
DEFAULT_DB_STATEMENT_TIMEOUT_MS = 30_000
DEFAULT_DB_LOCK_TIMEOUT_MS = 10_000
DEFAULT_DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS = 30_000
#: Shortest statement / idle-in-transaction timeout accepted: below it a loaded event
#: loop's pauses between a batch's statements would end healthy transactions.
MIN_DB_SESSION_TIMEOUT_MS = 1000
#: PostgreSQL's largest timeout value (INT_MAX milliseconds).
MAX_DB_TIMEOUT_MS = 2_147_483_647

# ---- [redis]

DEFAULT_REDIS_HOST = "127.0.0.1"
DEFAULT_REDIS_PORT = 6379
DEFAULT_REDIS_POOL_SIZE = 20

# ---- [server]

DEFAULT_SERVER_HOST = "127.0.0.1"
DEFAULT_SERVER_PORT = 8080
DEFAULT_DEAD_LETTER_SCAN_MAX = 5_000
MAX_DEAD_LETTER_SCAN_MAX = 100_000

# ---- [multitenancy]: the single tenant drained when no [multitenancy.tenants] are listed

DEFAULT_TENANT_ID = "public"
DEFAULT_TENANT_SCHEMA = "public"
DEFAULT_TENANT_REDIS_KEY_PREFIX = ""

# ---- [telemetry]

DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_LOG_FORMAT: Literal["text", "json"] = "text"
DEFAULT_SERVICE_NAME = "drainer"
DEFAULT_HYPERSWITCH_METRICS = False
