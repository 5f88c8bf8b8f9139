"""Hyperswitch's dialect: everything drainer knows of Hyperswitch's router's entries.

Reference: juspay/hyperswitch at af406737, v1 features. ``crates/diesel_models/
src/kv.rs`` gives the tags (serde ``snake_case`` of the ``Insertable`` and
``Updateable`` variants), ``src/query/*.rs`` the columns each update finds its
row by, the ``*New`` structs' ``Insertable`` derive that a ``None`` is written as
DEFAULT, and each update enum's ``From`` impl its changeset (one module each);
the tables whose ``*New`` / ``*UpdateInternal`` are written as they are have
their structs in ``flat.py``.
docs/hyperswitch.md lists every tag and variant and how it is applied.
"""

from __future__ import annotations

from drainer.db.dialects.dialect import Dialect
from drainer.db.dialects.hyperswitch.flat import FLAT_INSERTS, FLAT_UPDATES
from drainer.db.dialects.hyperswitch.payment_attempt import PAYMENT_ATTEMPT_UPDATE
from drainer.db.dialects.hyperswitch.payment_intent import PAYMENT_INTENT_UPDATE
from drainer.db.dialects.hyperswitch.payout_attempt import PAYOUT_ATTEMPT_UPDATE
from drainer.db.dialects.hyperswitch.payouts import PAYOUTS_UPDATE
from drainer.db.dialects.hyperswitch.refund import REFUND_UPDATE
from drainer.db.dialects.hyperswitch.values import CONNECTOR_TRANSACTION_ID, ENCRYPTION

#: Tags (kv.rs, ``rename_all = "snake_case"``) that are not their table's name.
ALIASES = {
    "reverse_look_up": "reverse_lookup",
    "customer": "customers",
    "payment_method": "payment_methods",
}

#: The WHERE clause of each table's update (``src/query/<table>.rs``, v1).
KEYS: dict[str, tuple[str, ...]] = {
    "payment_intent": ("payment_id", "merchant_id"),
    "payment_attempt": ("attempt_id", "merchant_id"),
    "refund": ("refund_id", "merchant_id"),
    "payouts": ("payout_id", "merchant_id"),
    "payout_attempt": ("payout_attempt_id", "merchant_id"),
    "customers": ("customer_id", "merchant_id"),
    "address": ("address_id",),
    "payment_methods": ("payment_method_id",),
    "mandate": ("merchant_id", "mandate_id"),
}

#: Tables of kv.rs's ``Insertable``: diesel writes DEFAULT for a ``None`` field.
INSERTED_TABLES = frozenset(
    {
        "payment_intent",
        "payment_attempt",
        "refund",
        "address",
        "payouts",
        "payout_attempt",
        "customers",
        "reverse_lookup",
        "payment_methods",
        "mandate",
    }
)

DIALECT = Dialect(
    name="hyperswitch",
    aliases=ALIASES,
    keys=KEYS,
    insert_null_is_default=INSERTED_TABLES,
    updates={
        "payment_intent": PAYMENT_INTENT_UPDATE,
        "payment_attempt": PAYMENT_ATTEMPT_UPDATE,
        "refund": REFUND_UPDATE,
        "payouts": PAYOUTS_UPDATE,
        "payout_attempt": PAYOUT_ATTEMPT_UPDATE,
    },
    value_shapes=(ENCRYPTION, CONNECTOR_TRANSACTION_ID),
    flat_inserts=FLAT_INSERTS,
    flat_updates=FLAT_UPDATES,
)

__all__ = ["ALIASES", "DIALECT", "INSERTED_TABLES", "KEYS"]
