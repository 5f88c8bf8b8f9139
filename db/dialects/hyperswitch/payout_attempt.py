"""``PayoutAttemptUpdate`` (5 variants), from ``crates/diesel_models/src/payout_attempt.rs``
(``enum PayoutAttemptUpdate`` and ``impl From<PayoutAttemptUpdate> for
PayoutAttemptUpdateInternal``, v1).

Every variant ends in ``..Default::default()``, and ``impl Default for
PayoutAttemptUpdateInternal`` sets ``last_modified_at: common_utils::date_time::now()``
(non-``Option``, always written): the union stamps it. Every other default is
``None``; ``merchant_order_reference_id`` is an internal field no variant sets. No
field is ``Option<Option<T>>``, so a null never sets SQL NULL. kv.rs calls
``PayoutAttempt::update_with_attempt_id`` (``src/query/payout_attempt.rs``), which
finds the row by ``payout_attempt_id`` and ``merchant_id``.
"""

from __future__ import annotations

from drainer.db.dialects.tagged import TaggedUnion, Variant

PAYOUT_ATTEMPT_UPDATE = TaggedUnion(
    "PayoutAttemptUpdate",
    stamps=("last_modified_at",),
    variants=(
        Variant(
            "StatusUpdate",
            "connector_payout_id", "status!", "error_message", "error_code", "is_eligible",
            "unified_code", "unified_message", "payout_connector_metadata",
        ),
        Variant("PayoutTokenUpdate", "payout_token!"),
        Variant(
            "BusinessUpdate", "business_country", "business_label", "address_id", "customer_id"
        ),
        Variant("UpdateRouting", "connector!", "routing_info", "merchant_connector_id"),
        Variant("AdditionalPayoutMethodDataUpdate", "additional_payout_method_data"),
    ),
)  # fmt: skip
