"""``PaymentAttemptUpdate``: placeholder until its variants are written."""

from __future__ import annotations

from db.dialects.hyperswitch.derived import CARD_NETWORK, CONNECTOR_TXN_ID, NET_AMOUNT
from db.dialects.tagged import TaggedUnion

PAYMENT_ATTEMPT_UPDATE = TaggedUnion(
    "PaymentAttemptUpdate",
    stamps=("modified_at",),
    derive_always=("net_amount", "card_network"),
    derivations={d.name: d for d in (CONNECTOR_TXN_ID, NET_AMOUNT, CARD_NETWORK)},
    variants=(),
)
