"""Drainer configuration: a TOML file, ``DRAINER__<SECTION>__<KEY>`` overrides, validation.

Precedence, highest first: environment variables, the config file, the defaults.
The file may be Hyperswitch's own drainer config, unchanged: its sections and keys are
read under the same names, Hyperswitch keys the drainer has no use for are ignored, and
every section the drainer does not know is ignored with one warning that lists them all.

Everything is checked when the settings are built. :func:`load_settings` turns every
problem into a :class:`SettingsError` with one line per problem, naming the key in
dotted form (``drainer.num_partitions``) and, where it can tell, where the value came from.

The modules: :mod:`~drainer.settings.defaults` (every default and bound),
:mod:`~drainer.settings.sections` (``[drainer]``, ``[server]``, ``[telemetry]`` and
:class:`Settings`), :mod:`~drainer.settings.connections` (``[master_database]``,
``[redis]``), :mod:`~drainer.settings.tenants`, :mod:`~drainer.settings.tables`,
:mod:`~drainer.settings.sources` (files, environment, :func:`load_settings`),
:mod:`~drainer.settings.hyperswitch_keys` (what is ignored or refused) and
:mod:`~drainer.settings.errors` (the wording of every problem).

See ``docs/configuration.md`` for the reference of every key.
"""

from drainer.settings.connections import DatabaseSettings, RedisSettings
from drainer.settings.context import default_consumer_name
from drainer.settings.defaults import (
    DEFAULT_ADAPTIVE_CONCURRENCY,
    DEFAULT_CLAIM_MIN_IDLE_MS,
    DEFAULT_CONSUMER_GROUP,
    DEFAULT_CONSUMER_SWEEP_IDLE_MS,
    DEFAULT_CONSUMER_SWEEP_INTERVAL_MS,
    DEFAULT_DB_CONNECTION_TIMEOUT_S,
    DEFAULT_DB_HOST,
    DEFAULT_DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS,
    DEFAULT_DB_LOCK_TIMEOUT_MS,
    DEFAULT_DB_NAME,
    DEFAULT_DB_POOL_SIZE,
    DEFAULT_DB_PORT,
    DEFAULT_DB_STATEMENT_TIMEOUT_MS,
    DEFAULT_DB_USERNAME,
    DEFAULT_DEAD_LETTER_SCAN_MAX,
    DEFAULT_HONOUR_HYPERSWITCH_LOCK,
    DEFAULT_HYPERSWITCH_METRICS,
    DEFAULT_IDLE_POLL_MAX_MS,
    DEFAULT_LOG_FORMAT,
    DEFAULT_LOG_LEVEL,
    DEFAULT_LOOP_INTERVAL_MS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_CONCURRENT_PARTITIONS,
    DEFAULT_MAX_READ_COUNT,
    DEFAULT_NUM_PARTITIONS,
    DEFAULT_ON_DEAD_LETTER,
    DEFAULT_REDIS_HOST,
    DEFAULT_REDIS_POOL_SIZE,
    DEFAULT_REDIS_PORT,
    DEFAULT_RETRY_BACKOFF_BASE_MS,
    DEFAULT_RETRY_BACKOFF_MAX_MS,
    DEFAULT_SERVER_HOST,
    DEFAULT_SERVER_PORT,
    DEFAULT_SERVICE_NAME,
    DEFAULT_SHUTDOWN_INTERVAL_MS,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    DEFAULT_SLOW_BATCH_MS,
    DEFAULT_STREAM_NAME,
    DEFAULT_TENANT_ID,
    DEFAULT_TENANT_REDIS_KEY_PREFIX,
    DEFAULT_TENANT_SCHEMA,
    DEFAULT_WAKE_IDLE_PARTITIONS,
    DEFAULT_WORKERS,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    MAX_DB_TIMEOUT_MS,
    MAX_DEAD_LETTER_SCAN_MAX,
    MAX_MAX_READ_COUNT,
    MAX_NUM_PARTITIONS,
    MAX_WORKERS,
    MIN_DB_SESSION_TIMEOUT_MS,
    POD_NAME_ENV,
)

# private, and re-exported only for `drainer config show` (drainer.config_show)
from drainer.settings.errors import _SECRET_KEYS as _SECRET_KEYS
from drainer.settings.errors import SUGGEST_CUTOFF, SettingsError
from drainer.settings.sections import DrainerSettings, ServerSettings, Settings, TelemetrySettings
from drainer.settings.sources import (
    CONFIG_DIR_VAR,
    DEFAULT_CONFIG_DIR,
    DEFAULT_RUN_ENV,
    RUN_ENV_FILES,
    RUN_ENV_VAR,
    hyperswitch_config_path,
    load_settings,
)

# private, and re-exported only for `drainer config show` (drainer.config_show)
from drainer.settings.sources import _read_config_file as _read_config_file
from drainer.settings.tables import TablesSettings
from drainer.settings.tenants import MultitenancySettings, Tenant, TenantSettings

__all__ = [
    "CONFIG_DIR_VAR",
    "DEFAULT_ADAPTIVE_CONCURRENCY",
    "DEFAULT_CLAIM_MIN_IDLE_MS",
    "DEFAULT_CONFIG_DIR",
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
    "DEFAULT_RUN_ENV",
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
    "RUN_ENV_FILES",
    "RUN_ENV_VAR",
    "SUGGEST_CUTOFF",
    "DatabaseSettings",
    "DrainerSettings",
    "MultitenancySettings",
    "RedisSettings",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "TablesSettings",
    "TelemetrySettings",
    "Tenant",
    "TenantSettings",
    "default_consumer_name",
    "hyperswitch_config_path",
    "load_settings",
]
