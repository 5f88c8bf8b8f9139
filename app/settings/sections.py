"""The sections the drainer reads, and :class:`Settings`, the whole configuration.

``[drainer]``, ``[server]`` and ``[telemetry]`` are here; ``[master_database]`` and
``[redis]`` are in :mod:`drainer.settings.connections`, ``[multitenancy]`` in
:mod:`drainer.settings.tenants`, ``[tables]`` in :mod:`drainer.settings.tables`.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from drainer.consumers.options import ConsumerOptions
from drainer.settings.connections import DatabaseSettings, RedisSettings
from drainer.settings.context import _ConfigFileSource, _EnvironmentSource, default_consumer_name
from drainer.settings.defaults import (
    DEFAULT_ADAPTIVE_CONCURRENCY,
    DEFAULT_CLAIM_MIN_IDLE_MS,
    DEFAULT_CONSUMER_GROUP,
    DEFAULT_CONSUMER_SWEEP_IDLE_MS,
    DEFAULT_CONSUMER_SWEEP_INTERVAL_MS,
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
    MAX_DEAD_LETTER_SCAN_MAX,
    MAX_MAX_READ_COUNT,
    MAX_NUM_PARTITIONS,
    MAX_WORKERS,
)
from drainer.settings.errors import SettingsError, _raise_if
from drainer.settings.tables import TablesSettings
from drainer.settings.tenants import MultitenancySettings, Tenant
from drainer.settings.values import _empty_to_none, _Section

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
#: An API bearer token: visible ASCII, no spaces.
_TOKEN = re.compile(r"[\x21-\x7e]+")


class DrainerSettings(_Section):
    """``[drainer]``: the streams and how they are consumed.

    The first five keys are Hyperswitch's (same names, same units); the rest are ours.
    """

    stream_name: str = Field(
        DEFAULT_STREAM_NAME,
        min_length=1,
        description="Partition N's stream key is `[<redis_key_prefix>:]{shard_N}_<stream_name>`.",
    )
    num_partitions: int = Field(
        DEFAULT_NUM_PARTITIONS,
        ge=1,
        le=MAX_NUM_PARTITIONS,
        description="Number of partition streams; must match the producers.",
    )
    max_read_count: int = Field(
        DEFAULT_MAX_READ_COUNT,
        ge=1,
        le=MAX_MAX_READ_COUNT,
        description="Most entries read from one partition per batch.",
    )
    loop_interval: int = Field(
        DEFAULT_LOOP_INTERVAL_MS,
        ge=1,
        description="Milliseconds (Hyperswitch's name): first poll interval of an empty partition.",
    )
    shutdown_interval: int = Field(
        DEFAULT_SHUTDOWN_INTERVAL_MS,
        ge=1,
        description="Milliseconds (Hyperswitch's name): how often shutdown progress is checked.",
    )
    consumer_group: str = Field(
        DEFAULT_CONSUMER_GROUP, min_length=1, description="Consumer group on every partition."
    )
    consumer_name: str = Field(
        default_factory=default_consumer_name,
        min_length=1,
        description="Consumer name, unique per process; default `<POD_NAME or host>-<pid>`.",
    )
    claim_min_idle_ms: int = Field(
        DEFAULT_CLAIM_MIN_IDLE_MS,
        ge=1,
        description="Entries pending this long on another consumer are claimed.",
    )
    max_attempts: int = Field(
        DEFAULT_MAX_ATTEMPTS,
        ge=1,
        description="Deliveries of an update/delete matching no row before it is dead-lettered.",
    )
    on_dead_letter: Literal["continue", "park_entity"] = Field(
        DEFAULT_ON_DEAD_LETTER,
        description="continue: an entity's later entries still apply; park_entity: they are "
        "dead-lettered as parked behind its dead letter until it is requeued or discarded.",
    )
    max_concurrent_partitions: int = Field(
        DEFAULT_MAX_CONCURRENT_PARTITIONS,
        ge=1,
        description="Partitions worked at the same time by this process.",
    )
    shutdown_timeout_s: float = Field(
        DEFAULT_SHUTDOWN_TIMEOUT_S,
        gt=0,
        allow_inf_nan=False,
        description="Seconds allowed for finishing in-flight batches on SIGTERM/SIGINT/SIGHUP.",
    )
    idle_poll_max_ms: int = Field(
        DEFAULT_IDLE_POLL_MAX_MS,
        ge=1,
        description="Idle partitions back off from loop_interval up to this many milliseconds.",
    )
    slow_batch_ms: int = Field(
        DEFAULT_SLOW_BATCH_MS, ge=1, description="A batch slower than this halves the read count."
    )
    retry_backoff_base_ms: int = Field(
        DEFAULT_RETRY_BACKOFF_BASE_MS,
        ge=1,
        description="First backoff after a transient error (exponential, jittered).",
    )
    retry_backoff_max_ms: int = Field(
        DEFAULT_RETRY_BACKOFF_MAX_MS, ge=1, description="Longest backoff after transient errors."
    )
    max_batch_bytes: int = Field(
        DEFAULT_MAX_BATCH_BYTES,
        ge=0,
        description="Most bytes of entry data read from one partition per batch "
        "(an entry larger than this is read alone); 0 turns the budget off.",
    )
    consumer_sweep_idle_ms: int = Field(
        DEFAULT_CONSUMER_SWEEP_IDLE_MS,
        ge=1,
        description="Consumers idle this long and holding no entries are removed from the groups.",
    )
    consumer_sweep_interval_ms: int = Field(
        DEFAULT_CONSUMER_SWEEP_INTERVAL_MS,
        ge=1,
        description="Each partition's group is swept of stale consumers about this often.",
    )
    honour_hyperswitch_lock: bool = Field(
        DEFAULT_HONOUR_HYPERSWITCH_LOCK,
        description="Leave a partition alone while Hyperswitch's Rust drainer holds its "
        "`<stream key>_in_use` lock (cutover); false once no Rust drainer runs.",
    )
    wake_idle_partitions: bool = Field(
        DEFAULT_WAKE_IDLE_PARTITIONS,
        description="Partitions empty twice running are woken by a blocking XREAD when an "
        "entry comes, instead of waiting out their poll (not on Redis Cluster).",
    )
    adaptive_concurrency: bool = Field(
        DEFAULT_ADAPTIVE_CONCURRENCY,
        description="The number of partitions worked at once climbs the measured "
        "throughput between 2 and max_concurrent_partitions; false: always the maximum.",
    )
    workers: int = Field(
        DEFAULT_WORKERS,
        ge=1,
        le=MAX_WORKERS,
        description="Consumer processes `drainer run` starts on this host, consumers "
        "`<consumer_name>-w1`..`-wN` behind one operator API (`--workers` overrides it); "
        "on Kubernetes keep 1 and scale pods.",
    )

    @model_validator(mode="before")
    @classmethod
    def _idle_poll_follows_loop_interval(cls, data: Any) -> Any:
        """Unset ``idle_poll_max_ms`` is at least ``loop_interval``.

        A Hyperswitch file with a long ``loop_interval`` then loads unchanged.
        """
        if isinstance(data, dict) and "idle_poll_max_ms" not in data:
            try:
                loop_interval_ms = int(data.get("loop_interval", DEFAULT_LOOP_INTERVAL_MS))
            except (TypeError, ValueError):
                return data  # reported by the field's own validation
            if loop_interval_ms > DEFAULT_IDLE_POLL_MAX_MS:
                return {**data, "idle_poll_max_ms": loop_interval_ms}
        return data

    @model_validator(mode="after")
    def _check_ranges(self) -> DrainerSettings:
        problems: list[tuple[str, str]] = []
        if self.idle_poll_max_ms < self.loop_interval:
            problems.append(
                (
                    "idle_poll_max_ms",
                    f"must be greater than or equal to drainer.loop_interval "
                    f"({self.loop_interval}) (got {self.idle_poll_max_ms})",
                )
            )
        if self.retry_backoff_max_ms < self.retry_backoff_base_ms:
            problems.append(
                (
                    "retry_backoff_max_ms",
                    f"must be greater than or equal to drainer.retry_backoff_base_ms "
                    f"({self.retry_backoff_base_ms}) (got {self.retry_backoff_max_ms})",
                )
            )
        _raise_if(problems)
        return self

    def consumer_options(self) -> ConsumerOptions:
        """The consumer loop's options from these settings."""
        return ConsumerOptions(
            group=self.consumer_group,
            consumer=self.consumer_name,
            max_read_count=self.max_read_count,
            loop_interval_ms=self.loop_interval,
            idle_poll_max_ms=self.idle_poll_max_ms,
            claim_min_idle_ms=self.claim_min_idle_ms,
            slow_batch_ms=self.slow_batch_ms,
            retry_backoff_base_ms=self.retry_backoff_base_ms,
            retry_backoff_max_ms=self.retry_backoff_max_ms,
            max_concurrent_partitions=self.max_concurrent_partitions,
            max_batch_bytes=self.max_batch_bytes,
            consumer_sweep_idle_ms=self.consumer_sweep_idle_ms,
            consumer_sweep_interval_ms=self.consumer_sweep_interval_ms,
            honour_hyperswitch_lock=self.honour_hyperswitch_lock,
            wake_idle_partitions=self.wake_idle_partitions,
            adaptive_concurrency=self.adaptive_concurrency,
        )


class ServerSettings(_Section):
    """``[server]``: the operator HTTP API (health, metrics, dead letters)."""

    host: str = Field(DEFAULT_SERVER_HOST, min_length=1)
    port: int = Field(DEFAULT_SERVER_PORT, ge=0, le=65535, description="0 picks a free port.")
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token for the API endpoints that change state (replay, requeue, "
        "discard); it also grants everything operator_token does. Unset: changes are "
        "allowed only when host is a loopback address.",
    )
    operator_token: SecretStr | None = Field(
        None,
        description="Read-only bearer token for the endpoints that show entry contents "
        "(dead letters, pending entries) and for /health/deep. With neither token set those "
        "are allowed only when host is a loopback address.",
    )
    enabled: bool = True
    dead_letter_scan_max: int = Field(
        DEFAULT_DEAD_LETTER_SCAN_MAX,
        ge=1,
        le=MAX_DEAD_LETTER_SCAN_MAX,
        description="Most dead letters one GET /dead-letters request reads (over every "
        "tenant) before it answers with what it found and a next_cursor.",
    )

    @field_validator("admin_token", "operator_token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: Any) -> Any:
        return _empty_to_none(value)

    @field_validator("admin_token", "operator_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        # sent as "Authorization: Bearer <token>": anything else could never match
        if value is not None and not _TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError(
                "must be printable ASCII without spaces (it is sent in an HTTP header)"
            )
        return value

    @model_validator(mode="after")
    def _check_tokens_differ(self) -> ServerSettings:
        admin, operator = self.admin_token, self.operator_token
        if admin and operator and admin.get_secret_value() == operator.get_secret_value():
            _raise_if([("operator_token", "must differ from server.admin_token")])
        return self


class TelemetrySettings(_Section):
    """``[telemetry]``: logs, traces and metrics (Hyperswitch's ``[log]`` is not read)."""

    log_level: str = Field(DEFAULT_LOG_LEVEL, description="CRITICAL, ERROR, WARNING, INFO, DEBUG.")
    log_format: Literal["text", "json"] = DEFAULT_LOG_FORMAT
    service_name: str = Field(DEFAULT_SERVICE_NAME, min_length=1)
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP collector URL.")
    traces_enabled: bool = True
    metrics_enabled: bool = True
    hyperswitch_metrics: bool = Field(
        DEFAULT_HYPERSWITCH_METRICS,
        description="Also export Hyperswitch's drainer metrics (meter DRAINER) over OTLP.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _normalise_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            level = value.strip().upper()
            level = "WARNING" if level == "WARN" else level
            if level not in _LOG_LEVELS:
                raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
            return level
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _normalise_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("otlp_endpoint", mode="before")
    @classmethod
    def _blank_endpoint_is_unset(cls, value: Any) -> Any:
        return _empty_to_none(value)

    @field_validator("otlp_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _check_hyperswitch_metrics(self) -> TelemetrySettings:
        if self.hyperswitch_metrics and self.otlp_endpoint is None:
            _raise_if(
                [("hyperswitch_metrics", "needs telemetry.otlp_endpoint (they are sent over OTLP)")]
            )
        return self


class Settings(BaseSettings):
    """The whole drainer configuration.

    Build it with :func:`load_settings`. ``Settings()`` alone gives the defaults with the
    process environment applied and no file.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
    )

    drainer: DrainerSettings = Field(default_factory=DrainerSettings)
    master_database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    multitenancy: MultitenancySettings = Field(default_factory=MultitenancySettings)
    tables: TablesSettings = Field(default_factory=TablesSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then ``DRAINER__…`` variables, then the file, then defaults."""
        return (init_settings, _EnvironmentSource(settings_cls), _ConfigFileSource(settings_cls))

    def tenants(self) -> list[Tenant]:
        """The tenants to drain, in configuration order.

        Every ``[multitenancy.tenants.<id>]``, whatever ``multitenancy.enabled`` says: the
        tenant set Hyperswitch's Rust drainer drains (its ``main.rs`` opens a store for each
        entry of ``multitenancy.tenants`` and never reads ``enabled``; ``global_tenant`` is
        not drained). With no tenants listed and multitenancy disabled: the one tenant
        ``public`` (schema ``public``, no Redis key prefix).
        """
        if not self.multitenancy.tenants:
            if not self.multitenancy.enabled:
                return [
                    Tenant(
                        DEFAULT_TENANT_ID, DEFAULT_TENANT_SCHEMA, DEFAULT_TENANT_REDIS_KEY_PREFIX
                    )
                ]
            raise SettingsError(
                "multitenancy.tenants: must define at least one tenant when "
                "multitenancy.enabled is true"
            )
        return [
            Tenant(tenant_id, tenant.schema_name, tenant.redis_key_prefix)
            for tenant_id, tenant in self.multitenancy.tenants.items()
        ]
