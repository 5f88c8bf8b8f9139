"""drainer: drains database operations from partitioned Redis Streams into PostgreSQL.

The public library API, used as Hyperswitch's Rust drainer's own API is used::

    import drainer

    settings = drainer.load_settings("drainer.toml")
    stores = {t.id: await drainer.Store.create(settings, t) for t in settings.tenants()}
    await drainer.start_drainer(stores, settings)

``drainer.open_drainer(settings)`` builds what ``drainer run`` builds (telemetry,
observed stores, the drainer); ``drainer.run_drainer(settings)`` is ``drainer run``
itself. ``drainer.Producer`` appends operations to the streams as an application does.

The names load on first use: importing ``drainer.db`` or ``drainer.settings``
alone does not pull in the service (FastAPI, uvicorn, the consumer loop).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drainer.consumers.producer import Producer, delete_op, insert_op, update_op
    from drainer.consumers.streams import StreamLayout
    from drainer.lifecycle import Drainer, open_stores
    from drainer.main import open_drainer, run_drainer, start_drainer
    from drainer.settings import Settings, SettingsError, Tenant, load_settings
    from drainer.store import Store

#: Each public name and the module that defines it.
_EXPORTS = {
    "Drainer": "drainer.lifecycle",
    "open_stores": "drainer.lifecycle",
    "open_drainer": "drainer.main",
    "run_drainer": "drainer.main",
    "start_drainer": "drainer.main",
    "Settings": "drainer.settings",
    "SettingsError": "drainer.settings",
    "Tenant": "drainer.settings",
    "load_settings": "drainer.settings",
    "Store": "drainer.store",
    "Producer": "drainer.consumers.producer",
    "insert_op": "drainer.consumers.producer",
    "update_op": "drainer.consumers.producer",
    "delete_op": "drainer.consumers.producer",
    "StreamLayout": "drainer.consumers.streams",
}

__all__ = [
    "Drainer",
    "Producer",
    "Settings",
    "SettingsError",
    "Store",
    "StreamLayout",
    "Tenant",
    "delete_op",
    "insert_op",
    "load_settings",
    "open_drainer",
    "open_stores",
    "run_drainer",
    "start_drainer",
    "update_op",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'drainer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
