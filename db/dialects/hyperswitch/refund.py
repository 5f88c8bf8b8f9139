"""``RefundUpdate`` (5 variants), from ``crates/diesel_models/src/refund.rs``
(``enum RefundUpdate`` and ``impl From<RefundUpdate> for RefundUpdateInternal``, v1)."""

from __future__ import annotations

from drainer.db.dialects.tagged import TaggedUnion, Variant

REFUND_UPDATE = TaggedUnion(
    "RefundUpdate",
    stamps=("modified_at",),
    variants=(
        Variant(
            "Update",
            "connector_refund_id!", "refund_status!", "sent_to_gateway!",
            "refund_error_message", "refund_arn!", "updated_by!", "processor_refund_data",
        ),
        Variant("MetadataAndReasonUpdate", "metadata", "reason>refund_reason", "updated_by!"),
        Variant(
            "StatusUpdate",
            "connector_refund_id", "sent_to_gateway!", "refund_status!", "updated_by!",
            "processor_refund_data",
        ),
        Variant(
            "ErrorUpdate",
            "refund_status", "refund_error_message", "refund_error_code", "updated_by!",
            "connector_refund_id", "processor_refund_data", "unified_code", "unified_message",
            "issuer_error_code", "issuer_error_message",
        ),
        Variant(
            "ManualUpdate",
            "refund_status", "refund_error_message", "refund_error_code", "updated_by!",
        ),
    ),
)  # fmt: skip
