"""Drainer configuration: a TOML file, ``DRAINER__<SECTION>__<KEY>`` overrides, validation.

Precedence, highest first: environment variables, the config file, the defaults below.
The file may be Hyperswitch's own drainer config, unchanged: its sections and keys are
read under the same names, Hyperswitch keys the drainer has no use for are ignored, and
every section the drainer does not know is ignored with one warning that lists them all.

Everything is checked when the settings are built. :func:`load_settings` turns every
problem into a :class:`SettingsError` with one line per problem, naming the key in
dotted form (``drainer.num_partitions``) and, where it can tell, where the value came from.

See ``docs/configuration.md`` for the reference of every key.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import socket
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import quote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as _PydanticSettingsError

from drainer.db.dialects import BUILT_IN as BUILT_IN_DIALECTS
from drainer.db.dialects import dialect_from_config
from drainer.db.models import DEFAULT_DIALECTS

__all__ = [
    "DEFAULT_CLAIM_MIN_IDLE_MS",
    "DEFAULT_CONSUMER_GROUP",
    "DEFAULT_DB_CONNECTION_TIMEOUT_S",
    "DEFAULT_DB_HOST",
    "DEFAULT_DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS",
    "DEFAULT_DB_LOCK_TIMEOUT_MS",
    "DEFAULT_DB_NAME",
    "DEFAULT_DB_POOL_SIZE",
    "DEFAULT_DB_PORT",
    "DEFAULT_DB_STATEMENT_TIMEOUT_MS",
    "DEFAULT_DB_USERNAME",
    "DEFAULT_IDLE_POLL_MAX_MS",
    "DEFAULT_LOG_FORMAT",
    "DEFAULT_LOG_LEVEL",
    "DEFAULT_LOOP_INTERVAL_MS",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CONCURRENT_PARTITIONS",
    "DEFAULT_MAX_READ_COUNT",
    "DEFAULT_NUM_PARTITIONS",
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
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "MAX_MAX_READ_COUNT",
    "MAX_NUM_PARTITIONS",
    "POD_NAME_ENV",
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
    "load_settings",
]

logger = logging.getLogger("drainer.settings")

# --------------------------------------------------------------------------- defaults

ENV_PREFIX = "DRAINER__"
"""Prefix of environment overrides: ``DRAINER__<SECTION>__<KEY>``."""
ENV_NESTED_DELIMITER = "__"
"""Separator between the levels of an environment override's name."""
POD_NAME_ENV = "POD_NAME"
"""Environment variable whose value, when set, replaces the host name in the consumer name."""

# [drainer]
DEFAULT_STREAM_NAME = "DRAINER_STREAM"
DEFAULT_NUM_PARTITIONS = 64
MAX_NUM_PARTITIONS = 16384
DEFAULT_MAX_READ_COUNT = 500
MAX_MAX_READ_COUNT = 10_000
DEFAULT_LOOP_INTERVAL_MS = 100
DEFAULT_SHUTDOWN_INTERVAL_MS = 1000
DEFAULT_CONSUMER_GROUP = "drainer"
DEFAULT_CLAIM_MIN_IDLE_MS = 30_000
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_DEAD_LETTER_SCAN_MAX = 5_000
MAX_DEAD_LETTER_SCAN_MAX = 100_000
DEFAULT_ON_DEAD_LETTER: Literal["continue", "park_entity"] = "continue"
DEFAULT_MAX_CONCURRENT_PARTITIONS = 8
DEFAULT_SHUTDOWN_TIMEOUT_S = 30.0
DEFAULT_IDLE_POLL_MAX_MS = 1000
DEFAULT_SLOW_BATCH_MS = 2000
DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024
DEFAULT_CONSUMER_SWEEP_IDLE_MS = 3_600_000
DEFAULT_CONSUMER_SWEEP_INTERVAL_MS = 300_000
DEFAULT_RETRY_BACKOFF_BASE_MS = 100
DEFAULT_RETRY_BACKOFF_MAX_MS = 30_000
DEFAULT_HONOUR_HYPERSWITCH_LOCK = True

# [master_database]
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

# [redis]
DEFAULT_REDIS_HOST = "127.0.0.1"
DEFAULT_REDIS_PORT = 6379
DEFAULT_REDIS_POOL_SIZE = 20

# [server]
DEFAULT_SERVER_HOST = "127.0.0.1"
DEFAULT_SERVER_PORT = 8080

# [multitenancy] — the single tenant drained when no [multitenancy.tenants] are configured
DEFAULT_TENANT_ID = "public"
DEFAULT_TENANT_SCHEMA = "public"
DEFAULT_TENANT_REDIS_KEY_PREFIX = ""

# [telemetry]
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_LOG_FORMAT: Literal["text", "json"] = "text"
DEFAULT_SERVICE_NAME = "drainer"
DEFAULT_HYPERSWITCH_METRICS = False

_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+asyncpg"})
_SQLALCHEMY_SCHEME = "postgresql+asyncpg"
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_POSTGRES_MAX_IDENTIFIER_LENGTH = 63
#: How close a misspelt key must be to a real one to be suggested (difflib ratio).
SUGGEST_CUTOFF = 0.75

_DOTTED_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_DIALECT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_SECRET_KEYS = frozenset({"password", "admin_token", "operator_token", "url"})
#: An API bearer token: visible ASCII, no spaces.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_MAX_SHOWN_INPUT_CHARS = 80


# --------------------------------------------------------------------------- errors


class SettingsError(Exception):
    """The configuration cannot be used.

    ``str(error)`` has one line per problem, each naming the key in dotted form and what
    is wrong with it; :attr:`problems` holds the same lines as a tuple.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (
            (problems,) if isinstance(problems, str) else tuple(problems)
        )
        super().__init__("\n".join(self.problems))


class _Problems(ValueError):
    """Raised by cross-field validators: each problem names a key relative to the model."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{key}: {message}" for key, message in self.problems))


def _raise_if(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise _Problems(problems)


# --------------------------------------------------------------------------- load context


@dataclass(frozen=True)
class _LoadContext:
    """What :func:`load_settings` hands to the settings sources for one build."""

    env: Mapping[str, str]
    file_data: Mapping[str, Any]
    config_path: Path | None


_LOAD_CONTEXT: ContextVar[_LoadContext | None] = ContextVar("drainer_settings_load", default=None)


def _environ() -> Mapping[str, str]:
    context = _LOAD_CONTEXT.get()
    return os.environ if context is None else context.env


def default_consumer_name() -> str:
    """The default consumer name: ``<POD_NAME or host name>-<pid>``, unique per process."""
    host = _environ().get(POD_NAME_ENV) or socket.gethostname()
    return f"{host}-{os.getpid()}"


# --------------------------------------------------------------------------- value parsing


def _split_list(value: Any) -> Any:
    """Accept a list, a JSON array string, or a comma-separated string (environment form)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not a valid JSON array ({exc.msg})") from None
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_mapping(value: Any) -> Any:
    """Accept a table, or a JSON object string (environment form)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not a valid JSON object ({exc.msg})") from None
    if not isinstance(decoded, dict):
        raise ValueError("must be a JSON object")
    return decoded


def _empty_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, SecretStr) and not value.get_secret_value().strip():
        return None
    return value


def _check_identifier(value: str) -> str | None:
    """Why ``value`` is not a usable identifier, or None when it is."""
    if not _IDENTIFIER.fullmatch(value):
        return "must contain only letters, digits and underscores and not start with a digit"
    if len(value) > _POSTGRES_MAX_IDENTIFIER_LENGTH:
        return f"must be at most {_POSTGRES_MAX_IDENTIFIER_LENGTH} characters long"
    return None


def _check_redis_node(value: str) -> str:
    """A Redis Cluster node is ``host:port`` or a ``redis://`` / ``rediss://`` URL."""
    text = value.strip()
    candidate = text if "://" in text else f"redis://{text}"
    parts = urlsplit(candidate)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("must be host:port or a redis:// or rediss:// URL")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("must be host:port with a numeric port") from None
    if not parts.hostname or port is None:
        raise ValueError("must be host:port (a host and a port)")
    return text


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


# --------------------------------------------------------------------------- sections


class _Section(BaseModel):
    """Base of every section: immutable, unknown keys ignored (they are reported on load)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


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


class DatabaseSettings(_Section):
    """``[master_database]``: the PostgreSQL database the operations are applied to.

    ``url``, when set, wins over the separate parts.
    """

    host: str = Field(DEFAULT_DB_HOST, min_length=1)
    port: int = Field(DEFAULT_DB_PORT, ge=1, le=65535)
    username: str = Field(DEFAULT_DB_USERNAME, min_length=1)
    password: SecretStr = Field(SecretStr(""))
    dbname: str = Field(DEFAULT_DB_NAME, min_length=1)
    pool_size: int = Field(DEFAULT_DB_POOL_SIZE, ge=1)
    connection_timeout: float = Field(
        DEFAULT_DB_CONNECTION_TIMEOUT_S,
        gt=0,
        allow_inf_nan=False,
        description="Seconds (Hyperswitch's name) to wait for a connection.",
    )
    url: SecretStr | None = Field(
        None,
        description="postgres://, postgresql:// or postgresql+asyncpg:// URL; wins over parts.",
    )
    statement_timeout_ms: int = Field(
        DEFAULT_DB_STATEMENT_TIMEOUT_MS,
        ge=MIN_DB_SESSION_TIMEOUT_MS,
        le=MAX_DB_TIMEOUT_MS,
        description="PostgreSQL cancels a drainer statement running longer (statement_timeout).",
    )
    lock_timeout_ms: int = Field(
        DEFAULT_DB_LOCK_TIMEOUT_MS,
        ge=1,
        le=MAX_DB_TIMEOUT_MS,
        description="PostgreSQL cancels a drainer statement waiting longer for a lock.",
    )
    idle_in_transaction_session_timeout_ms: int = Field(
        DEFAULT_DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS,
        ge=MIN_DB_SESSION_TIMEOUT_MS,
        le=MAX_DB_TIMEOUT_MS,
        description="PostgreSQL ends a drainer session idle this long inside a transaction "
        "(a frozen replica's), releasing its locks.",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _blank_url_is_unset(cls, value: Any) -> Any:
        return _empty_to_none(value)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        scheme, sep, _ = value.get_secret_value().partition("://")
        if not sep or scheme.lower() not in _POSTGRES_SCHEMES:
            raise ValueError("must start with postgres://, postgresql:// or postgresql+asyncpg://")
        return value

    def sqlalchemy_url(self) -> str:
        """The ``postgresql+asyncpg://`` URL for SQLAlchemy, password included (do not log it).

        From ``url`` when set (its scheme rewritten, the rest kept as written); otherwise
        built from the parts, with user name, password and database name percent-encoded.
        """
        if self.url is not None:
            _, _, rest = self.url.get_secret_value().partition("://")
            return f"{_SQLALCHEMY_SCHEME}://{rest}"
        auth = quote(self.username, safe="")
        password = self.password.get_secret_value()
        if password:
            auth = f"{auth}:{quote(password, safe='')}"
        host = _host_for_url(self.host)
        return f"{_SQLALCHEMY_SCHEME}://{auth}@{host}:{self.port}/{quote(self.dbname, safe='')}"


class RedisSettings(_Section):
    """``[redis]``: the Redis server or cluster holding the streams.

    ``url``, when set, wins over ``host``/``port``/credentials. With ``cluster_enabled``
    the nodes in ``cluster_urls`` are the cluster's startup nodes.
    """

    host: str = Field(DEFAULT_REDIS_HOST, min_length=1)
    port: int = Field(DEFAULT_REDIS_PORT, ge=1, le=65535)
    username: str | None = Field(None, description="ACL user name (requires password).")
    password: SecretStr | None = Field(None, description="AUTH password.")
    tls_enabled: bool = Field(False, description="Connect with TLS (rediss://).")
    tls_ca_certificate_path: str | None = Field(
        None, description="PEM file of the CA that signed the server certificate."
    )
    url: SecretStr | None = Field(None, description="redis://, rediss:// or unix:// URL.")
    cluster_enabled: bool = False
    cluster_urls: Annotated[list[Annotated[str, AfterValidator(_check_redis_node)]], NoDecode] = (
        Field(default_factory=list, description="Cluster nodes, host:port or redis:// URLs.")
    )
    pool_size: int = Field(DEFAULT_REDIS_POOL_SIZE, ge=1)

    @field_validator("url", "password", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        return _empty_to_none(value)

    @field_validator("cluster_urls", mode="before")
    @classmethod
    def _parse_cluster_urls(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        scheme, sep, _ = value.get_secret_value().partition("://")
        if not sep or scheme.lower() not in _REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> RedisSettings:
        problems: list[tuple[str, str]] = []
        if self.cluster_enabled and not self.cluster_urls:
            problems.append(
                (
                    "cluster_urls",
                    "must list at least one node (host:port) when redis.cluster_enabled is true",
                )
            )
        if self.username is not None and not self.username.strip():
            problems.append(("username", "must not be empty when set"))
        if self.username and self.password is None:
            problems.append(("password", "is required when redis.username is set"))
        if self.tls_ca_certificate_path is not None and not self.tls_enabled:
            problems.append(
                ("tls_ca_certificate_path", "only applies when redis.tls_enabled is true")
            )
        _raise_if(problems)
        return self

    def _auth(self) -> str:
        if self.password is None:
            return ""
        user = quote(self.username or "", safe="")
        return f"{user}:{quote(self.password.get_secret_value(), safe='')}@"

    def cluster_node_urls(self) -> list[str]:
        """``cluster_urls`` as full URLs; ``host:port`` items get the scheme and credentials."""
        scheme = "rediss" if self.tls_enabled else "redis"
        return [
            node if "://" in node else f"{scheme}://{self._auth()}{node}"
            for node in self.cluster_urls
        ]

    def redis_url(self) -> str:
        """The URL to connect with, credentials included (do not log it).

        ``url`` when set; else, with ``cluster_enabled``, the first cluster node (a cluster
        client discovers the rest); else built from ``host``, ``port``, credentials and
        ``tls_enabled``.
        """
        if self.url is not None:
            return self.url.get_secret_value()
        if self.cluster_enabled:
            return self.cluster_node_urls()[0]
        scheme = "rediss" if self.tls_enabled else "redis"
        return f"{scheme}://{self._auth()}{_host_for_url(self.host)}:{self.port}"


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


class TenantSettings(_Section):
    """One ``[multitenancy.tenants.<id>]`` table.

    ``schema`` is read into ``schema_name`` (``schema`` is a ``BaseModel`` attribute).
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    schema_name: str = Field(alias="schema", description="PostgreSQL schema of this tenant.")
    redis_key_prefix: str = Field(
        DEFAULT_TENANT_REDIS_KEY_PREFIX,
        description="Prefix of this tenant's Redis keys, joined to the key with ':'.",
    )

    @field_validator("schema_name")
    @classmethod
    def _check_schema(cls, value: str) -> str:
        problem = _check_identifier(value)
        if problem:
            raise ValueError(problem)
        return value


class MultitenancySettings(_Section):
    """``[multitenancy]``: Hyperswitch's tenants, each with a schema and a Redis key prefix."""

    enabled: bool = False
    tenants: Annotated[dict[str, TenantSettings], NoDecode] = Field(default_factory=dict)

    @field_validator("tenants", mode="before")
    @classmethod
    def _parse_tenants(cls, value: Any) -> Any:
        return _parse_mapping(value)

    @field_validator("tenants")
    @classmethod
    def _check_tenant_ids(cls, value: dict[str, TenantSettings]) -> dict[str, TenantSettings]:
        # The error's location already ends in "tenants": keys are relative to it.
        _raise_if(
            [
                (tenant_id, f"tenant id {problem} (got {tenant_id!r})")
                for tenant_id in value
                if (problem := _check_identifier(tenant_id))
            ]
        )
        return value

    @model_validator(mode="after")
    def _check_tenants(self) -> MultitenancySettings:
        # Every listed tenant is drained, enabled or not (as Hyperswitch's Rust drainer
        # does), so the uniqueness checks apply whenever tenants are listed.
        problems: list[tuple[str, str]] = []
        if self.enabled and not self.tenants:
            problems.append(
                (
                    "tenants",
                    "must define at least one tenant ([multitenancy.tenants.<id>]) "
                    "when multitenancy.enabled is true",
                )
            )
        schemas: dict[str, str] = {}
        prefixes: dict[str, str] = {}
        for tenant_id, tenant in self.tenants.items():
            if (owner := schemas.setdefault(tenant.schema_name, tenant_id)) != tenant_id:
                problems.append(
                    (
                        f"tenants.{tenant_id}.schema",
                        f"schema {tenant.schema_name!r} is already used by tenant {owner!r}",
                    )
                )
            prefix = tenant.redis_key_prefix
            if (owner := prefixes.setdefault(prefix, tenant_id)) != tenant_id:
                problems.append(
                    (
                        f"tenants.{tenant_id}.redis_key_prefix",
                        f"prefix {prefix!r} is already used by tenant {owner!r}",
                    )
                )
        _raise_if(problems)
        return self


class TablesSettings(_Section):
    """``[tables]``: how the ``table`` tags of operations map to ORM models."""

    aliases: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="Tag -> table name, e.g. customer = 'customers'."
    )
    keys: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=dict, description="Table -> key columns used to find rows."
    )
    reflect: bool = Field(True, description="Reflect the tables from the database.")
    models_module: str | None = Field(
        None, description="Dotted path of a module of SQLAlchemy declarative models."
    )
    null_sets_null: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Tables whose update null means SQL NULL."
    )
    dialects: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_DIALECTS),
        description="Producer dialects: built-in names or 'package.module:NAME'.",
    )
    tagged_updates: dict[str, Any] = Field(
        default_factory=dict,
        description="Table -> its tagged-union update_data (enum, stamps, variants).",
    )

    @field_validator("aliases", mode="before")
    @classmethod
    def _parse_aliases(cls, value: Any) -> Any:
        return _parse_mapping(value)

    @field_validator("keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        value = _parse_mapping(value)
        if isinstance(value, dict):
            return {table: _split_list(columns) for table, columns in value.items()}
        return value

    @field_validator("null_sets_null", "dialects", mode="before")
    @classmethod
    def _parse_table_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("dialects")
    @classmethod
    def _check_dialects(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in BUILT_IN_DIALECTS and not _DIALECT_PATH.fullmatch(name):
                known = ", ".join(sorted(BUILT_IN_DIALECTS))
                raise ValueError(
                    f"{name!r} is neither a built-in dialect ({known}) nor 'package.module:NAME'"
                )
        return value

    @field_validator("tagged_updates")
    @classmethod
    def _check_tagged_updates(cls, value: dict[str, Any]) -> dict[str, Any]:
        dialect_from_config(value)  # raises ValueError naming the bad key
        return value

    @field_validator("models_module", mode="before")
    @classmethod
    def _blank_module_is_unset(cls, value: Any) -> Any:
        return _empty_to_none(value)

    @field_validator("models_module")
    @classmethod
    def _check_module(cls, value: str | None) -> str | None:
        if value is not None and not _DOTTED_MODULE.fullmatch(value):
            raise ValueError("must be a dotted module path such as 'myapp.models'")
        return value

    @model_validator(mode="after")
    def _check_tables(self) -> TablesSettings:
        problems: list[tuple[str, str]] = []
        for tag, table in self.aliases.items():
            if not table.strip():
                problems.append((f"aliases.{tag}", "must name a table (got '')"))
        for table, columns in self.keys.items():
            if not columns:
                problems.append((f"keys.{table}", "must list at least one key column"))
            elif len(set(columns)) != len(columns):
                problems.append((f"keys.{table}", f"lists a column twice (got {columns})"))
        if not self.reflect and self.models_module is None:
            problems.append(
                (
                    "models_module",
                    "is required when tables.reflect is false: set tables.models_module to "
                    "the dotted path of your declarative models, or set tables.reflect = true",
                )
            )
        _raise_if(problems)
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


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant the drainer serves: its id, PostgreSQL schema and Redis key prefix."""

    id: str
    schema: str
    redis_key_prefix: str


# Hyperswitch keys inside our sections that the drainer has no use for: accepted silently.
_HYPERSWITCH_IGNORED_KEYS: dict[type[BaseModel], frozenset[str]] = {
    DatabaseSettings: frozenset({"queue_strategy", "min_idle", "max_lifetime"}),
    RedisSettings: frozenset(
        {
            "use_legacy_version",
            "reconnect_max_attempts",
            "reconnect_delay",
            "default_ttl",
            "default_hash_ttl",
            "stream_read_count",
            "auto_pipeline",
            "disable_auto_backpressure",
            "max_in_flight_commands",
            "default_command_timeout",
            "max_feed_count",
            "unresponsive_timeout",
            "unresponsive_check_interval",
            "broadcast_channel_capacity",
            "max_failure_threshold_seconds",
        }
    ),
    ServerSettings: frozenset({"workers", "request_body_limit", "shutdown_timeout", "base_url"}),
    MultitenancySettings: frozenset({"global_tenant"}),
    TenantSettings: frozenset(
        {"tenant_id", "name", "base_url", "accounts_schema", "clickhouse_database", "user"}
    ),
}


# --------------------------------------------------------------------------- sources


class _EnvironmentSource(EnvSettingsSource):
    """``DRAINER__…`` variables from the mapping given to :func:`load_settings`."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _environ()
        if self.case_sensitive:
            return dict(env)
        return {name.lower(): value for name, value in env.items()}

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except ValueError as exc:
            name = f"{ENV_PREFIX}{field_name.upper()}"
            raise SettingsError(
                f"{field_name}: {name} is not a valid JSON object ({exc}); "
                f"set single keys with {name}{ENV_NESTED_DELIMITER}<KEY> instead"
            ) from None


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The TOML config file, parsed by :func:`load_settings` (which reports its errors)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        context = _LOAD_CONTEXT.get()
        value = None if context is None else context.file_data.get(field_name)
        return value, field_name, False

    def __call__(self) -> dict[str, Any]:
        context = _LOAD_CONTEXT.get()
        if context is None:
            return {}
        return {
            name: context.file_data[name]
            for name in self.settings_cls.model_fields
            if name in context.file_data
        }


# --------------------------------------------------------------------------- settings


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


# --------------------------------------------------------------------------- loading

#: Variable naming Hyperswitch's environment (``crates/router_env/src/env.rs``).
RUN_ENV_VAR = "RUN_ENV"
#: Variable naming the directory of Hyperswitch's config files.
CONFIG_DIR_VAR = "CONFIG_DIR"
#: Hyperswitch's config directory when ``CONFIG_DIR`` is unset.
DEFAULT_CONFIG_DIR = "config"
#: The environment of a release build of Hyperswitch when ``RUN_ENV`` is unset or unknown.
DEFAULT_RUN_ENV = "production"
#: ``RUN_ENV`` values Hyperswitch parses (exact, lower case), and the file each one reads.
RUN_ENV_FILES: dict[str, str] = {
    "development": "development.toml",
    "integ": "development.toml",
    "sandbox": "sandbox.toml",
    "production": "production.toml",
}


def hyperswitch_config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The config file Hyperswitch's binary reads when given no ``-f``, if set up and present.

    Hyperswitch's rule (``router_env::Config::config_path``): ``<CONFIG_DIR>/<file>``, where
    ``CONFIG_DIR`` defaults to ``config`` (relative to the working directory, or to
    ``$CARGO_MANIFEST_DIR/../..`` when that is set) and the file is ``production.toml``,
    ``sandbox.toml`` or, for any other environment, ``development.toml``; ``RUN_ENV``
    unset or not one of its environments means ``production`` (a release build).

    None unless ``RUN_ENV`` or ``CONFIG_DIR`` is set and that file exists: without either
    variable the drainer reads no file, as before.
    """
    environ = os.environ if env is None else env
    if RUN_ENV_VAR not in environ and CONFIG_DIR_VAR not in environ:
        return None
    run_env = environ.get(RUN_ENV_VAR, DEFAULT_RUN_ENV)
    name = RUN_ENV_FILES.get(run_env, RUN_ENV_FILES[DEFAULT_RUN_ENV])
    manifest = environ.get("CARGO_MANIFEST_DIR")
    base = Path(manifest).parent.parent if manifest else Path(".")
    path = base / environ.get(CONFIG_DIR_VAR, DEFAULT_CONFIG_DIR) / name
    return path if path.is_file() else None


def load_settings(
    config_path: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """Read ``config_path`` (TOML), apply ``DRAINER__…`` overrides from ``env``, validate.

    Args:
        config_path: The config file; None for defaults and environment only.
        env: The environment to read overrides (and ``POD_NAME``) from; ``os.environ``
            when None.

    Raises:
        SettingsError: The file is missing or not valid TOML, or some values are invalid;
            the message has one line per problem.
    """
    environ: Mapping[str, str] = dict(os.environ if env is None else env)
    path = Path(config_path).expanduser() if config_path is not None else None
    file_data = _read_config_file(path) if path is not None else {}
    _report_ignored(file_data, environ, path)

    context = _LoadContext(env=environ, file_data=file_data, config_path=path)
    token = _LOAD_CONTEXT.set(context)
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(list(_describe_errors(exc, context))) from None
    except _PydanticSettingsError as exc:
        raise SettingsError(str(exc)) from None
    finally:
        _LOAD_CONTEXT.reset(token)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read configuration file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if where:
            message = message[: where.start()]
            raise SettingsError(
                f"{path}:{where.group(1)}:{where.group(2)}: invalid TOML: {message}"
            ) from None
        raise SettingsError(f"{path}: invalid TOML: {message}") from None


# ---- reporting ignored configuration


def _model_of(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _dict_value_type(annotation: Any) -> tuple[bool, Any]:
    if get_origin(annotation) is dict:
        args = get_args(annotation)
        return True, args[1] if len(args) == 2 else Any
    return False, None


def _lookup(model: type[BaseModel], key: str, *, fold_case: bool) -> FieldInfo | None:
    wanted = key.lower() if fold_case else key
    for name, field in model.model_fields.items():
        names = {name, field.alias} if field.alias else {name}
        if wanted in {n.lower() if fold_case else n for n in names}:
            return field
    return None


def _is_hyperswitch_key(model: type[BaseModel], key: str) -> bool:
    return key.lower() in _HYPERSWITCH_IGNORED_KEYS.get(model, frozenset())


def _walk_file(
    model: type[BaseModel], data: Mapping[str, Any], path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], bool, type[BaseModel]]]:
    """Yield (path, is_hyperswitch, model looked in) for every key the model does not read."""
    for key, value in data.items():
        here = (*path, key)
        field = _lookup(model, key, fold_case=False)
        if field is None:
            yield here, _is_hyperswitch_key(model, key), model
            continue
        sub = _model_of(field.annotation)
        is_dict, value_type = _dict_value_type(field.annotation)
        if sub is not None and isinstance(value, dict):
            yield from _walk_file(sub, value, here)
        elif is_dict and (item_model := _model_of(value_type)) and isinstance(value, dict):
            for item_key, item in value.items():
                if isinstance(item, dict):
                    yield from _walk_file(item_model, item, (*here, item_key))


def _classify_env(model: type[BaseModel], parts: Sequence[str]) -> str:
    """'ok', 'hyperswitch' or 'unknown' for the key path of one environment variable."""
    if not parts or not parts[0]:
        return "unknown"
    key, rest = parts[0], parts[1:]
    field = _lookup(model, key, fold_case=True)
    if field is None:
        return "hyperswitch" if _is_hyperswitch_key(model, key) else "unknown"
    if not rest:
        return "ok"
    sub = _model_of(field.annotation)
    if sub is not None:
        return _classify_env(sub, rest)
    is_dict, value_type = _dict_value_type(field.annotation)
    if is_dict and rest[0]:
        if len(rest) == 1:
            return "ok"
        item_model = _model_of(value_type)
        if item_model is not None:
            return _classify_env(item_model, rest[1:])
    return "unknown"


def _field_names(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _did_you_mean(key: str, model: type[BaseModel], *, upper: bool = False) -> str:
    names = _field_names(model)
    found = difflib.get_close_matches(key.lower(), names, n=1, cutoff=SUGGEST_CUTOFF)
    if not found:
        return ""
    return f" (did you mean {found[0].upper() if upper else found[0]}?)"


def _env_section_model(parts: Sequence[str]) -> tuple[type[BaseModel], int] | None:
    """The model (and depth) where an unknown variable's last key was looked up, when the
    variable names one of the drainer's own sections; None for other sections."""
    model: type[BaseModel] = Settings
    depth = 0
    while depth < len(parts) - 1:
        field = _lookup(model, parts[depth], fold_case=True)
        if field is None:
            break
        sub = _model_of(field.annotation)
        is_dict, value_type = _dict_value_type(field.annotation)
        if sub is not None:
            model, depth = sub, depth + 1
        elif is_dict and (item := _model_of(value_type)) is not None and depth + 2 < len(parts):
            model, depth = item, depth + 2
        else:
            break
    return (model, depth) if depth >= 1 else None


def _report_ignored(
    file_data: Mapping[str, Any], env: Mapping[str, str], path: Path | None
) -> None:
    """Refuse unknown keys in the drainer's own sections (with a suggestion); log ONE
    warning naming every other section, key and variable the drainer does not read."""
    sections: list[str] = []
    keys: list[str] = []
    variables: list[str] = []
    hyperswitch: list[str] = []
    problems: list[str] = []
    origin_of = f" in {path}" if path is not None else ""
    for key_path, is_hyperswitch, model in _walk_file(Settings, file_data, ()):
        dotted = ".".join(key_path)
        if is_hyperswitch:
            hyperswitch.append(dotted)
        elif len(key_path) >= 2 and model is not Settings:
            hint = _did_you_mean(key_path[-1], model)
            problems.append(f"{dotted}: unknown key{hint}{origin_of}")
        elif len(key_path) == 1 and isinstance(file_data[key_path[0]], dict):
            sections.append(dotted)
        else:
            keys.append(dotted)
    for name in sorted(env):
        if name.upper().startswith(ENV_PREFIX):
            parts = name[len(ENV_PREFIX) :].split(ENV_NESTED_DELIMITER)
            verdict = _classify_env(Settings, parts)
            if verdict == "unknown":
                own = _env_section_model(parts)
                if own is None:
                    variables.append(name)
                    continue
                model, depth = own
                hint = ""
                if len(parts) == depth + 1:
                    suggestion = _did_you_mean(parts[-1], model, upper=True)
                    if suggestion:
                        prefix = ENV_NESTED_DELIMITER.join(parts[:-1]).upper()
                        hint = suggestion.replace("mean ", f"mean {ENV_PREFIX}{prefix}__")
                problems.append(f"{name}: unknown setting{hint}")
            elif verdict == "hyperswitch":
                hyperswitch.append(name)
    if problems:
        raise SettingsError(problems)

    if hyperswitch:
        logger.debug(
            "ignoring Hyperswitch settings the drainer does not use: %s", ", ".join(hyperswitch)
        )
    found: list[str] = []
    if sections:
        found.append("sections " + ", ".join(f"[{name}]" for name in sorted(sections)))
    if keys:
        found.append("keys " + ", ".join(sorted(keys)))
    if variables:
        found.append("environment variables " + ", ".join(variables))
    if found:
        origin = f" in {path}" if path is not None and (sections or keys) else ""
        logger.warning(
            "ignoring configuration the drainer does not use%s: %s", origin, "; ".join(found)
        )


# ---- describing validation errors


def _dotted(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _humanise(message: str) -> str:
    message = message.removeprefix("Value error, ")
    message = re.sub(r"^(Input|String|List|Dictionary|Value|Tuple|Set) should ", "must ", message)
    if message == "Field required":
        return "is required"
    return message[:1].lower() + message[1:]


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_SHOWN_INPUT_CHARS:
        text = text[: _MAX_SHOWN_INPUT_CHARS - 3] + "..."
    return text


def _env_source(loc: Sequence[int | str], env: Mapping[str, str]) -> str | None:
    """The environment variable that supplied the value at ``loc`` (or a container of it)."""
    names = {name.upper(): name for name in env}
    parts = [str(part) for part in loc if isinstance(part, str)]
    for end in range(len(parts), 0, -1):
        candidate = ENV_PREFIX + ENV_NESTED_DELIMITER.join(parts[:end]).upper()
        if candidate in names:
            return names[candidate]
    return None


def _in_file(loc: Sequence[int | str], data: Any) -> bool:
    for part in loc:
        if isinstance(data, dict) and isinstance(part, str):
            found = part in data
        else:
            found = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not found:
            return False
        data = data[part]
    return True


def _source_suffix(loc: Sequence[int | str], context: _LoadContext) -> str:
    variable = _env_source(loc, context.env)
    if variable is not None:
        return f" from {variable}"
    if context.config_path is not None and _in_file(loc, context.file_data):
        return f" in {context.config_path}"
    return ""


def _describe_errors(exc: ValidationError, context: _LoadContext) -> Iterator[str]:
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _Problems):
            for relative, message in cause.problems:
                full = (*loc, *relative.split("."))
                yield f"{_dotted(full)}: {message}{_source_suffix(full, context)}"
            continue
        message = _humanise(error["msg"])
        secret = any(part in _SECRET_KEYS for part in loc if isinstance(part, str))
        shown = ""
        if error["type"] != "missing" and not secret:
            shown = f" (got {_shown(error['input'])})"
        yield f"{_dotted(loc)}: {message}{shown}{_source_suffix(loc, context)}"
