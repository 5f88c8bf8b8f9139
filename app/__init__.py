"""drainer's application layer: settings, stores, lifecycle, CLI and telemetry.

The library API mirrors how Hyperswitch's Rust drainer is used::

    settings = load_settings("drainer.toml")
    stores = {t.id: await Store.create(settings, t) for t in settings.tenants()}
    await start_drainer(stores, settings)
"""

from drainer.lifecycle import Drainer, open_stores, run_drainer, start_drainer
from drainer.settings import Settings, SettingsError, Tenant, load_settings
from drainer.store import Store

__all__ = [
    "Drainer",
    "Settings",
    "SettingsError",
    "Store",
    "Tenant",
    "load_settings",
    "open_stores",
    "run_drainer",
    "start_drainer",
]
