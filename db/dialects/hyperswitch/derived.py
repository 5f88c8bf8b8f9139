"""Columns Hyperswitch's conversions compute, as :class:`Derivation` rules.

Each follows the code named in its docstring (juspay/hyperswitch af406737,
``crates/diesel_models/src/``, v1 features).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drainer.db.dialects.hyperswitch.values import form_id_and_data
from drainer.db.dialects.tagged import Derivation


def _txn_id(fields: Mapping[str, Any], _orig: Mapping[str, Any], changes: dict[str, Any]) -> None:
    """``connector_transaction_id.map(ConnectorTransactionId::form_id_and_data)``:
    the id (hashed when over 128 characters) and, when hashed, the original in
    ``processor_transaction_data``; ``None`` for either leaves its column alone."""
    src = fields.get("connector_transaction_id")
    if src is None:
        return
    if not isinstance(src, str):
        raise ValueError(f"connector_transaction_id must be a string, got {src!r:.60}")
    txn_id, data = form_id_and_data(src)
    changes["connector_transaction_id"] = txn_id
    if data is not None:
        changes["processor_transaction_data"] = data


CONNECTOR_TXN_ID = Derivation(
    "connector_transaction_id",
    _txn_id,
    consumes=("connector_transaction_id",),
    writes=("connector_transaction_id", "processor_transaction_data"),
)

#: Terms of ``net_amount`` besides ``amount`` (each ``update.or(orig).unwrap_or(0)``).
NET_AMOUNT_TERMS = ("surcharge_amount", "tax_amount", "shipping_cost", "order_tax_amount")


def _minor_unit(value: Any, column: str) -> int:
    if type(value) is not int:
        raise ValueError(f"{column} must be an integer (MinorUnit), got {value!r:.60}")
    return value


def _net_amount(
    _fields: Mapping[str, Any], orig: Mapping[str, Any], changes: dict[str, Any]
) -> None:
    """``PaymentAttemptUpdateInternal::populate_derived_fields``: ``net_amount``."""
    amount = changes.get("amount")
    if amount is None:
        amount = orig.get("amount")
    total = _minor_unit(amount, "amount")
    for column in NET_AMOUNT_TERMS:
        value = changes.get(column)
        if value is None:
            value = orig.get(column)
        if value is not None:
            total += _minor_unit(value, column)
    changes["net_amount"] = total


def _card_network(
    _fields: Mapping[str, Any], _orig: Mapping[str, Any], changes: dict[str, Any]
) -> None:
    """``populate_derived_fields``: ``card_network`` from
    ``payment_method_data.card.card_network`` when it is a string, else left alone."""
    changes.pop("card_network", None)
    data = changes.get("payment_method_data")
    card = data.get("card") if isinstance(data, dict) else None
    network = card.get("card_network") if isinstance(card, dict) else None
    if isinstance(network, str):
        changes["card_network"] = network


NET_AMOUNT = Derivation("net_amount", _net_amount, writes=("net_amount",))
CARD_NETWORK = Derivation("card_network", _card_network, writes=("card_network",))
