"""``drainer check``: connect to every tenant's servers and say what would be drained.

Read-only: it pings Redis and reads stream lengths (``XLEN`` creates nothing), checks the
tenant's schema and reflects (or loads) its models as ``drainer run`` would, and creates
no stream, group, consumer or table. Every problem is one line naming the tenant and the
server, in the words ``drainer run`` uses at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from drainer.consumers.group import RedisClient
from drainer.consumers.streams import StreamLayout, prefixed
from drainer.db.models import ModelRegistry
from drainer.lifecycle import _failed_target, _short
from drainer.settings import Settings, Tenant
from drainer.store import CLOSE_TIMEOUT_S, load_registry, make_engine, make_redis

#: How long each server gets to answer one step of the check (seconds).
CHECK_TIMEOUT_S = 5.0

T = TypeVar("T")


@dataclass
class TenantReport:
    """What one tenant would drain, and what is wrong with it."""

    id: str
    schema: str
    prefix: str
    streams_pattern: str
    partitions: int
    tables: int | None = None
    bindings: list[str] = field(default_factory=list)
    backlog: int | None = None
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report, one line per fact."""
        out = [
            f"tenant {self.id}",
            f"  schema:       {self.schema}",
            f"  redis prefix: {self.prefix or '(none)'}",
            f"  streams:      {self.streams_pattern} ({self.partitions} partitions)",
        ]
        if self.tables is not None:
            out.append(f"  tables:       {self.tables} mapped")
        if self.bindings:
            out.append("  dialect rules:")
            out += [f"    {binding}" for binding in self.bindings]
        if self.backlog is not None:
            out.append(f"  backlog:      {self.backlog} entries")
        return out


def bindings(registry: ModelRegistry) -> list[str]:
    """The tables a dialect's rules bound to: ``table: Shape (kind), keys a, b``."""
    found = []
    for name, model in sorted(registry.tables.items()):
        if model.union is not None:
            shape = f"{model.union.enum} (tagged)"
        elif model.flat_update is not None:
            shape = f"{model.flat_update.name} (flat)"
        elif model.flat_insert is not None:
            shape = f"{model.flat_insert.name} (flat insert)"
        elif model.insert_null_is_default:
            shape = "insert null is DEFAULT"
        else:
            continue
        found.append(f"{name}: {shape}, keys {', '.join(model.key_columns)}")
    return found


async def _timed(step: Awaitable[T]) -> T:
    return await asyncio.wait_for(step, CHECK_TIMEOUT_S)


async def _check_redis(
    settings: Settings, redis: RedisClient, layout: StreamLayout, report: TenantReport
) -> None:
    try:
        await _timed(redis.ping())
        lengths = await _timed(
            asyncio.gather(*(redis.xlen(stream) for stream in layout.all_streams()))
        )
        report.backlog = sum(int(length) for length in lengths)
    except (OSError, TimeoutError, RedisError) as exc:
        failed = exc if isinstance(exc, RedisError) else RedisError(str(exc) or "timed out")
        report.problems.append(
            f"tenant {report.id}: {_failed_target(settings, failed)}: {_short(exc) or 'timed out'}"
        )


async def _check_database(settings: Settings, config: Tenant, report: TenantReport) -> None:
    engine = make_engine(settings, config.schema)
    target = _failed_target(settings, ValueError())
    try:
        async with engine.connect() as conn:
            found = await _timed(
                conn.scalar(
                    text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": config.schema}
                )
            )
        if not found:
            report.problems.append(
                f"tenant {config.id}: {target}: schema {config.schema!r} does not exist"
            )
            return
        registry = await _timed(load_registry(settings, engine))
        report.tables = len(registry.tables)
        report.bindings = bindings(registry)
        if not registry.tables:
            report.problems.append(
                f"tenant {config.id}: {target}: schema {config.schema!r} has no table the "
                "drainer can map (reflection maps tables with a primary key)"
            )
    except TimeoutError:
        report.problems.append(f"tenant {config.id}: {target}: timed out")
    except (OSError, DBAPIError, SQLAlchemyError) as exc:
        report.problems.append(f"tenant {config.id}: {target}: {_short(exc)}")
    except (ValueError, ImportError) as exc:  # bad [tables] keys, a models module
        report.problems.append(f"tenant {config.id}: {exc}")
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(engine.dispose(), CLOSE_TIMEOUT_S)


async def check(settings: Settings) -> list[TenantReport]:
    """Check every tenant; the reports say what would be drained and what is wrong."""
    drainer = settings.drainer
    redis = make_redis(settings.redis)
    reports = []
    try:
        for config in settings.tenants():
            layout = StreamLayout(
                drainer.stream_name, drainer.num_partitions, config.redis_key_prefix
            )
            pattern = prefixed(config.redis_key_prefix, f"{{shard_N}}_{drainer.stream_name}")
            report = TenantReport(
                config.id,
                config.schema,
                config.redis_key_prefix,
                f"{pattern}, N = 0..{drainer.num_partitions - 1}",
                drainer.num_partitions,
            )
            await _check_redis(settings, redis, layout, report)
            await _check_database(settings, config, report)
            reports.append(report)
    finally:
        with contextlib.suppress(TimeoutError, RedisError, OSError):
            await asyncio.wait_for(redis.aclose(), CLOSE_TIMEOUT_S)
    return reports
