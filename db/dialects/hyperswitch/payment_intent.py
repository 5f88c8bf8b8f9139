"""``PaymentIntentUpdate``: placeholder until its variants are written."""

from __future__ import annotations

from db.dialects.tagged import TaggedUnion

PAYMENT_INTENT_UPDATE = TaggedUnion("PaymentIntentUpdate", stamps=("modified_at",), variants=())
