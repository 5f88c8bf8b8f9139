"""Store: one tenant's Redis streams, database engine, models and executor, wired."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from drainer.consumers.dead_letter import DeadLetterStream
from drainer.consumers.group import RedisClient
from drainer.consumers.observe import NO_OBSERVER, DrainObserver
from drainer.consumers.partition import Pipeline
from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from drainer.db.dialects import Dialect, dialect_from_config
from drainer.db.executor import Executor, Outcome, execute_one
from drainer.db.fence import create_watermark_table
from drainer.db.models import ModelRegistry
from drainer.db.operations import Operation, json_default
from drainer.db.parking import create_parked_table
from drainer.settings import (
    DEFAULT_REDIS_HOST,
    DEFAULT_REDIS_PORT,
    DatabaseSettings,
    RedisSettings,
    Settings,
    Tenant,
)

log = logging.getLogger("drainer.store")

#: Makes the observer of a tenant's workers from its id and its models (telemetry).
ObserverFactory = Callable[[str, ModelRegistry], DrainObserver]

REDIS_SOCKET_TIMEOUT_S = 10.0
REDIS_CONNECT_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 5.0
#: ``application_name`` of the drainer's database sessions (``pg_stat_activity``).
APPLICATION_NAME = "drainer"
#: Every statement planned for its own parameters (see :func:`session_settings`).
PLAN_CACHE_MODE = "force_custom_plan"


def _json_dumps(value: Any) -> str:
    # json_default writes an exactly read number (a Decimal) as its own digits
    return orjson.dumps(value, default=json_default).decode()


def make_redis(settings: RedisSettings) -> RedisClient:
    """A Redis client (or Redis Cluster client) for the drainer's streams."""
    common: dict[str, Any] = {
        "decode_responses": True,
        # bytes that are not UTF-8 survive the round trip to a dead letter
        "encoding_errors": "surrogateescape",
        "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
    }
    if settings.cluster_enabled:
        # every node is a startup node, so the client starts while any one answers
        nodes = []
        for url in settings.cluster_node_urls():
            parts = urlsplit(url)
            nodes.append(
                ClusterNode(parts.hostname or DEFAULT_REDIS_HOST, parts.port or DEFAULT_REDIS_PORT)
            )
        first = urlsplit(settings.cluster_node_urls()[0])
        return RedisCluster(
            startup_nodes=nodes,
            username=unquote(first.username) if first.username else None,
            password=unquote(first.password) if first.password else None,
            ssl=first.scheme == "rediss",
            max_connections=settings.pool_size,
            **common,
        )
    # Blocking: with more partitions than connections (64 and 20 by default) a worker
    # waits for a free connection instead of failing with "Too many connections".
    pool = BlockingConnectionPool.from_url(
        settings.redis_url(),
        max_connections=settings.pool_size,
        timeout=REDIS_SOCKET_TIMEOUT_S,
        **common,
    )
    return Redis.from_pool(pool)


def session_settings(db: DatabaseSettings, schema: str) -> dict[str, str]:
    """The PostgreSQL settings every drainer connection starts with.

    The timeouts make PostgreSQL itself end what a frozen or partitioned replica left
    open: its statement, its wait for a lock, its idle transaction (and so its locks,
    among them partition watermark rows another replica needs). Plans are made per
    execution, for the table as it is now.
    """
    return {
        "search_path": schema,
        "application_name": APPLICATION_NAME,
        "statement_timeout": f"{db.statement_timeout_ms}ms",
        "lock_timeout": f"{db.lock_timeout_ms}ms",
        "idle_in_transaction_session_timeout": f"{db.idle_in_transaction_session_timeout_ms}ms",
        # A prepared statement's generic plan is chosen once, often while a table is
        # still small, and kept as it grows: the grouped UPDATE ... FROM unnest then
        # scanned the whole table (a 200k mix at a third of its speed, as slow as the
        # per-entry baseline). A custom plan per execution costs a few tens of µs of
        # planning per statement, not per row (long insert runs go by COPY).
        "plan_cache_mode": PLAN_CACHE_MODE,
    }


def make_engine(settings: Settings, schema: str) -> AsyncEngine:
    """An asyncpg engine whose connections resolve names in the tenant's schema.

    Each connection carries :func:`session_settings` (asyncpg ``server_settings``).
    """
    db = settings.master_database
    return create_async_engine(
        db.sqlalchemy_url(),
        pool_size=db.pool_size,
        max_overflow=0,
        # No pre-ping: with asyncpg it is BEGIN, ";" and ROLLBACK, three round trips
        # before every batch. A connection that died instead fails its batch, which
        # rolls back and is retried (a transient error), and SQLAlchemy then drops
        # every connection of the pool that predates the disconnect.
        pool_pre_ping=False,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={
            "timeout": db.connection_timeout,
            "server_settings": session_settings(db, schema),
        },
    )


class Store:
    """One tenant: where its operations come from and where they go."""

    def __init__(
        self,
        tenant: Tenant,
        settings: Settings,
        redis: RedisClient,
        engine: AsyncEngine,
        registry: ModelRegistry,
        *,
        observer: DrainObserver = NO_OBSERVER,
    ) -> None:
        self.tenant = tenant
        self.settings = settings
        self.redis = redis
        self.engine = engine
        self.registry = registry
        drainer = settings.drainer
        self.layout = StreamLayout(
            drainer.stream_name, drainer.num_partitions, tenant.redis_key_prefix
        )
        self.executor = Executor(
            engine,
            registry,
            max_attempts=drainer.max_attempts,
            park_entity=drainer.on_dead_letter == "park_entity",
            # a do-nothing observer: no clock is read per statement
            on_statement=None if observer is NO_OBSERVER else observer.statement,
        )
        self.dead_letters = DeadLetterStream(redis, self.layout.dead_letter_key)
        self.producer = Producer(redis, self.layout)
        self.pipeline = Pipeline(
            tenant.id, self.layout, self.executor, self.dead_letters, observer=observer
        )

    @property
    def id(self) -> str:
        return self.tenant.id

    @classmethod
    async def create(
        cls,
        settings: Settings,
        tenant: Tenant,
        *,
        redis: RedisClient | None = None,
        observe: ObserverFactory | None = None,
    ) -> Store:
        """Connect, make sure the schema and watermark table exist, load the models.

        ``observe(tenant_id, registry)`` gives the observer the tenant's workers report
        to (the application's telemetry); without it nothing is recorded per batch.
        """
        redis = redis if redis is not None else make_redis(settings.redis)
        engine = make_engine(settings, tenant.schema)
        try:
            async with engine.begin() as conn:
                found = await conn.scalar(
                    text("SELECT 1 FROM pg_namespace WHERE nspname = :s"),
                    {"s": tenant.schema},
                )
                if not found:
                    raise ValueError(
                        f"tenant {tenant.id!r}: schema {tenant.schema!r} does not exist "
                        "in the database"
                    )
                await create_watermark_table(conn)
                await create_parked_table(conn)
            registry = await load_registry(settings, engine)
            if not registry.tables:
                raise ValueError(
                    f"tenant {tenant.id!r}: schema {tenant.schema!r} has no table the drainer "
                    "can map (reflection maps tables with a primary key; give keys in "
                    "[tables.keys], or point the tenant at the right schema)"
                )
        except BaseException:
            await engine.dispose()
            raise
        log.info(
            "tenant %s: %d tables mapped in schema %s",
            tenant.id,
            len(registry.tables),
            tenant.schema,
        )
        observer = observe(tenant.id, registry) if observe is not None else NO_OBSERVER
        return cls(tenant, settings, redis, engine, registry, observer=observer)

    async def execute(self, operation: Operation) -> Outcome:
        """Apply one operation now, alone (like Hyperswitch's ``execute_query``)."""
        return await execute_one(self.executor, operation)

    async def close(self) -> None:
        """Release the database pool (the Redis client is shared and closed by its owner)."""
        try:
            # closing politely waits on the server; an unreachable one must not hold exit
            await asyncio.wait_for(self.engine.dispose(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("tenant %s: database pool did not close in %.0fs", self.id, CLOSE_TIMEOUT_S)


def _configured(tagged_updates: dict[str, Any]) -> list[Dialect]:
    return [dialect_from_config(tagged_updates)] if tagged_updates else []


async def load_registry(settings: Settings, engine: AsyncEngine) -> ModelRegistry:
    """The tenant's models: the user's declarative module, else reflection."""
    tables = settings.tables
    options: dict[str, Any] = {
        "aliases": tables.aliases,
        "keys": tables.keys,
        "null_sets_null": tables.null_sets_null,
        "dialects": [*tables.dialects, *_configured(tables.tagged_updates)],
    }
    if tables.models_module:
        return ModelRegistry.from_module(tables.models_module, **options)
    return await ModelRegistry.reflect(engine, **options)
