"""What route handlers share: the drainer they serve, and its tenants by path parameter.

The API knows the running drainer only through :class:`Drainer`, the few things a
route reads of it; the engine (``drainer.lifecycle``) satisfies it and is wired to
the app by the composition root (``drainer.main``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Request, status

from drainer.consumers.inspect import valid_entry_id
from drainer.consumers.options import ConsumerOptions
from drainer.settings import Settings
from drainer.store import Store
from drainer.telemetry import Telemetry


class Drainer(Protocol):
    """What the operator API reads of the drainer it serves."""

    @property
    def settings(self) -> Settings:
        """The settings it runs with."""

    @property
    def stores(self) -> Mapping[str, Store]:
        """Its tenants' stores by tenant id."""

    @property
    def options(self) -> ConsumerOptions:
        """Its consumer group, consumer name and read options."""

    @property
    def telemetry(self) -> Telemetry:
        """Its metrics and traces."""

    @property
    def started_at(self) -> float:
        """When it started (Unix time)."""

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""


#: How many stream keys an "unknown stream" message shows as examples.
SHOWN_STREAMS = 2


def get_drainer(request: Request) -> Drainer:
    """The drainer this app serves."""
    drainer: Drainer = request.app.state.drainer
    return drainer


DrainerDep = Annotated[Drainer, Depends(get_drainer)]


def store_for_stream(drainer: Drainer, stream: str) -> tuple[Store, int]:
    """The tenant store and partition number of a partition stream key, else 404."""
    for store in drainer.stores.values():
        partition = store.layout.partition_of_stream(stream)
        if partition is not None:
            return store, partition
    examples = ", ".join(
        store.layout.stream_key(n)
        for store in list(drainer.stores.values())[:1]
        for n in range(min(SHOWN_STREAMS, store.layout.num_partitions))
    )
    raise HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"unknown stream {stream!r}: not a partition stream of any tenant "
        f"(they look like {examples}, ...; see GET /pending)",
    )


def store_for_tenant(drainer: Drainer, tenant: str) -> Store:
    """A tenant's store by id, else 404 naming the tenants there are."""
    store = drainer.stores.get(tenant)
    if store is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown tenant {tenant!r}; tenants: {', '.join(drainer.stores)}",
        )
    return store


def check_entry_id(entry_id: str, what: str = "entry id") -> str:
    """``entry_id`` if Redis would accept it as a complete id, else 422 saying why."""
    if not valid_entry_id(entry_id):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{what} {entry_id[:60]!r} is not a stream entry id: expected "
            "<milliseconds>-<sequence>, e.g. 1767261600000-0",
        )
    return entry_id
