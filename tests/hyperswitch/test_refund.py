"""Every ``RefundUpdate`` variant, applied as Hyperswitch's drainer applies it.

Fixtures follow ``crates/diesel_models/src/refund.rs`` (juspay/hyperswitch af406737,
v1): ``RefundNew`` for the insert, ``Refund`` for ``orig``, ``enum RefundUpdate`` for
``update_data``, and ``impl From<RefundUpdate> for RefundUpdateInternal`` for the
expected changeset; ``src/query/refund.rs`` finds the row by ``refund_id`` and
``merchant_id``. Serde: ``ConnectorTransactionId`` is ``{"TxnId": ...}``, ``MinorUnit``
a number, enums ``snake_case`` strings, ``PrimitiveDateTime`` ISO 8601.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.support.hyperswitch import HyperswitchDrain, assert_only_changed, timestamp, utcnow

CREATED = dt.datetime(2026, 6, 1, 10, 0, 0, 123000)


def refund_new(n: int) -> dict[str, Any]:
    """``RefundNew`` (v1), every field, ``None`` as null."""
    return {
        "refund_id": f"ref_{n}",
        "payment_id": f"pay_{n}",
        "merchant_id": "merchant_1",
        "internal_reference_id": f"refint_{n}",
        "external_reference_id": None,
        "connector_transaction_id": {"TxnId": f"txn_{n}"},
        "connector": "stripe",
        "connector_refund_id": None,
        "refund_type": "instant_refund",
        "total_amount": 6540,
        "currency": "USD",
        "refund_amount": 1000,
        "refund_status": "pending",
        "sent_to_gateway": False,
        "metadata": None,
        "refund_arn": None,
        "created_at": timestamp(CREATED),
        "modified_at": timestamp(CREATED),
        "description": "Customer returned product",
        "attempt_id": f"pay_{n}_1",
        "refund_reason": None,
        "profile_id": "pro_1",
        "updated_by": "redis_kv",
        "merchant_connector_id": "mca_1",
        "charges": None,
        "organization_id": "org_1",
        "split_refunds": None,
        "processor_refund_data": None,
        "processor_transaction_data": None,
    }


def refund_row(n: int) -> dict[str, Any]:
    """``Refund`` (v1): the row as Hyperswitch read it (``orig``)."""
    new = refund_new(n)
    return {
        "internal_reference_id": new["internal_reference_id"],
        "refund_id": new["refund_id"],
        "payment_id": new["payment_id"],
        "merchant_id": new["merchant_id"],
        "connector_transaction_id": new["connector_transaction_id"],
        "connector": new["connector"],
        "connector_refund_id": None,
        "external_reference_id": None,
        "refund_type": new["refund_type"],
        "total_amount": new["total_amount"],
        "currency": new["currency"],
        "refund_amount": new["refund_amount"],
        "refund_status": new["refund_status"],
        "sent_to_gateway": False,
        "refund_error_message": None,
        "metadata": None,
        "refund_arn": None,
        "created_at": new["created_at"],
        "modified_at": new["modified_at"],
        "description": new["description"],
        "attempt_id": new["attempt_id"],
        "refund_reason": None,
        "refund_error_code": None,
        "profile_id": new["profile_id"],
        "updated_by": new["updated_by"],
        "merchant_connector_id": new["merchant_connector_id"],
        "charges": None,
        "organization_id": new["organization_id"],
        "connector_refund_data": None,
        "connector_transaction_data": None,
        "split_refunds": None,
        "unified_code": None,
        "unified_message": None,
        "processor_refund_data": None,
        "processor_transaction_data": None,
        "issuer_error_code": None,
        "issuer_error_message": None,
    }


#: variant -> (update_data as serde writes it, the columns the From impl sets)
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "Update": (
        {
            "Update": {
                "connector_refund_id": {"TxnId": "re_1"},
                "refund_status": "success",
                "sent_to_gateway": True,
                "refund_error_message": None,
                "refund_arn": "arn_1",
                "updated_by": "redis_kv",
                "processor_refund_data": "prd_1",
            }
        },
        {
            "connector_refund_id": "re_1",
            "refund_status": "success",
            "sent_to_gateway": True,
            "refund_arn": "arn_1",
            "updated_by": "redis_kv",
            "processor_refund_data": "prd_1",
        },
    ),
    "MetadataAndReasonUpdate": (
        {
            "MetadataAndReasonUpdate": {
                "metadata": {"order": "o_1"},
                "reason": "duplicate",
                "updated_by": "kv_router",
            }
        },
        {"metadata": {"order": "o_1"}, "refund_reason": "duplicate", "updated_by": "kv_router"},
    ),
    "StatusUpdate": (
        {
            "StatusUpdate": {
                "connector_refund_id": None,
                "sent_to_gateway": True,
                "refund_status": "failure",
                "updated_by": "redis_kv",
                "processor_refund_data": None,
            }
        },
        {"sent_to_gateway": True, "refund_status": "failure", "updated_by": "redis_kv"},
    ),
    "ErrorUpdate": (
        {
            "ErrorUpdate": {
                "refund_status": "failure",
                "refund_error_message": "card expired",
                "refund_error_code": "E01",
                "updated_by": "redis_kv",
                "connector_refund_id": {"TxnId": "re_9"},
                "processor_refund_data": None,
                "unified_code": "UE_1",
                "unified_message": "Card expired",
                "issuer_error_code": None,
                "issuer_error_message": "expired",
            }
        },
        {
            "refund_status": "failure",
            "refund_error_message": "card expired",
            "refund_error_code": "E01",
            "updated_by": "redis_kv",
            "connector_refund_id": "re_9",
            "unified_code": "UE_1",
            "unified_message": "Card expired",
            "issuer_error_message": "expired",
        },
    ),
    "ManualUpdate": (
        {
            "ManualUpdate": {
                "refund_status": "manual_review",
                "refund_error_message": None,
                "refund_error_code": None,
                "updated_by": "ops",
            }
        },
        {"refund_status": "manual_review", "updated_by": "ops"},
    ),
}


async def test_every_refund_update_variant(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    names = list(VARIANTS)
    for n, _name in enumerate(names):
        hs.insert(f"mid_merchant_1_pid_pay_{n}", "refund", refund_new(n))
    await hs.drain()
    before = {n: await hs.row("refund", refund_id=f"ref_{n}") for n in range(len(names))}
    started = utcnow()
    for n, name in enumerate(names):
        hs.update(f"mid_merchant_1_pid_pay_{n}", "refund_update", refund_row(n), VARIANTS[name][0])
    await hs.drain()
    ended = utcnow()
    assert await hs.dead_reasons() == []
    assert await hs.streams_empty()
    for n, name in enumerate(names):
        after = await hs.row("refund", refund_id=f"ref_{n}")
        assert_only_changed(
            before[n], after, VARIANTS[name][1], stamps=("modified_at",), window=(started, ended)
        )


async def test_insert_null_is_the_column_default(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    """diesel writes DEFAULT for ``None``: ``updated_by`` and ``organization_id`` have
    defaults in the schema, so a null there stores the default, not NULL or an error."""
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    row = {**refund_new(7), "updated_by": None, "organization_id": None}
    hs.insert("mid_merchant_1_pid_pay_7", "refund", row)
    await hs.drain()
    assert await hs.dead_reasons() == []
    stored = await hs.row("refund", refund_id="ref_7")
    assert stored["updated_by"] == "postgres_only"
    assert stored["organization_id"] == "default_org"
    assert stored["sent_to_gateway"] is False
    assert stored["connector_transaction_id"] == "txn_7"


async def test_bad_variants_and_shapes_are_dead_lettered_with_a_reason(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    hs.insert("mid_merchant_1_pid_pay_1", "refund", refund_new(1))
    bad = {
        "unknown variant": {"FooUpdate": {"updated_by": "x"}},
        "missing required": {"ManualUpdate": {"refund_status": None}},
        "unknown field": {"ManualUpdate": {"updated_by": "x", "colour": "red"}},
        "bad enum value": {"ManualUpdate": {"refund_status": "teleported", "updated_by": "x"}},
    }
    for update_data in bad.values():
        hs.update("mid_merchant_1_pid_pay_1", "refund_update", refund_row(1), update_data)
    await hs.drain()
    reasons = await hs.dead_reasons()
    assert reasons == [
        "refund: unknown RefundUpdate variant 'FooUpdate'",
        "refund: RefundUpdate::ManualUpdate: missing field 'updated_by'",
        "refund: RefundUpdate::ManualUpdate: unknown field 'colour'",
        reasons[3],
    ]
    assert reasons[3].startswith("refund.refund_status: 'teleported' is not a value of enum")
    assert await hs.streams_empty()
