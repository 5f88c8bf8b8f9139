"""``PayoutsUpdate`` (5 variants), from ``crates/diesel_models/src/payouts.rs``
(``enum PayoutsUpdate`` and ``impl From<PayoutsUpdate> for PayoutsUpdateInternal``, v1).

Every variant ends in ``..Default::default()``, and ``impl Default for
PayoutsUpdateInternal`` sets ``last_modified_at: common_utils::date_time::now()``
(a non-``Option`` field, so it is always written): the union stamps it. Every other
default is ``None`` (not written). No field is ``Option<Option<T>>``, so a null
never sets SQL NULL; non-``Option`` variant fields wrapped in ``Some`` are required.
``src/query/payouts.rs`` (``Payouts::update``, which kv.rs calls) finds the row by
``payout_id`` and ``merchant_id``.
"""

from __future__ import annotations

from drainer.db.dialects.tagged import TaggedUnion, Variant

PAYOUTS_UPDATE = TaggedUnion(
    "PayoutsUpdate",
    stamps=("last_modified_at",),
    variants=(
        Variant(
            "Update",
            "amount!", "destination_currency!", "source_currency!", "description",
            "recurring!", "auto_fulfill!", "return_url", "entity_type!", "metadata",
            "profile_id", "status", "confirm", "payout_type", "address_id", "customer_id",
        ),
        Variant("PayoutMethodIdUpdate", "payout_method_id!"),
        Variant("RecurringUpdate", "recurring!"),
        Variant("AttemptCountUpdate", "attempt_count!"),
        Variant("StatusUpdate", "status!"),
    ),
)  # fmt: skip
