"""drainer's application layer: settings, stores, lifecycle, CLI and telemetry.

The library API mirrors how Hyperswitch's Rust drainer is used::

    settings = load_settings("drainer.toml")
    stores = {t.id: await Store.create(settings, t) for t in settings.tenants()}
    await start_drainer(stores, settings)
"""

from app.lifecycle import Drainer, open_stores, run_drainer, start_drainer
from app.settings import Settings, SettingsError, TenantConfig, load_settings
from app.store import Store

__all__ = [
    "Drainer",
    "Settings",
    "SettingsError",
    "Store",
    "TenantConfig",
    "load_settings",
    "open_stores",
    "run_drainer",
    "start_drainer",
]
