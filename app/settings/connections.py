"""``[master_database]`` and ``[redis]``: where the operations are read from and applied to."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from drainer.settings.defaults import (
    DEFAULT_DB_CONNECTION_TIMEOUT_S,
    DEFAULT_DB_HOST,
    DEFAULT_DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS,
    DEFAULT_DB_LOCK_TIMEOUT_MS,
    DEFAULT_DB_NAME,
    DEFAULT_DB_POOL_SIZE,
    DEFAULT_DB_PORT,
    DEFAULT_DB_STATEMENT_TIMEOUT_MS,
    DEFAULT_DB_USERNAME,
    DEFAULT_REDIS_HOST,
    DEFAULT_REDIS_POOL_SIZE,
    DEFAULT_REDIS_PORT,
    MAX_DB_TIMEOUT_MS,
    MIN_DB_SESSION_TIMEOUT_MS,
)
from drainer.settings.errors import _raise_if
from drainer.settings.values import _empty_to_none, _host_for_url, _Section, _split_list

_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+asyncpg"})
_SQLALCHEMY_SCHEME = "postgresql+asyncpg"
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


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


def _with_scheme(value: SecretStr | None, schemes: frozenset[str], wanted: str) -> SecretStr | None:
    """``value`` if unset or a URL with one of ``schemes``, else a ValueError naming them."""
    if value is None:
        return None
    scheme, sep, _ = value.get_secret_value().partition("://")
    if not sep or scheme.lower() not in schemes:
        raise ValueError(f"must start with {wanted}")
    return value


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
        return _with_scheme(
            value, _POSTGRES_SCHEMES, "postgres://, postgresql:// or postgresql+asyncpg://"
        )

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
        return _with_scheme(value, _REDIS_SCHEMES, "redis://, rediss:// or unix://")

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
