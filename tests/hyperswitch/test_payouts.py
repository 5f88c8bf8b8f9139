"""Every ``PayoutsUpdate`` and ``PayoutAttemptUpdate`` variant, applied as Hyperswitch's
drainer applies it.

Fixtures follow ``crates/diesel_models/src/payouts.rs`` and ``src/payout_attempt.rs``
(juspay/hyperswitch af406737, v1): ``PayoutsNew`` / ``PayoutAttemptNew`` for the
inserts, ``Payouts`` / ``PayoutAttempt`` for ``orig``, the update enums for
``update_data``, and their ``From`` impls (plus ``impl Default`` of the Internal
structs, which stamps ``last_modified_at``) for the expected changesets.
``src/query/payouts.rs`` (``Payouts::update``) finds the row by ``payout_id`` and
``merchant_id``, ``src/query/payout_attempt.rs`` (``update_with_attempt_id``) by
``payout_attempt_id`` and ``merchant_id``; the schema has no foreign keys between
the two, but each attempt's parent payout is inserted first, as the router does.

Serde: ``MinorUnit`` a number, ``PayoutStatus`` / ``PayoutType`` /
``PayoutSendPriority`` ``snake_case``, ``PayoutEntityType`` ``PascalCase``,
``Currency`` / ``CountryAlpha2`` upper case, ``PrimitiveDateTime`` ISO 8601,
``UnifiedCode`` / ``UnifiedMessage`` and id types plain strings,
``AdditionalPayoutMethodData`` externally tagged (``{"Card": {...}}``; its ``Bank``
content is untagged). The schema (2026-06) has columns the structs at af406737 do
not: ``payouts.processor_merchant_id`` / ``created_by`` and
``payout_attempt.processor_merchant_id`` / ``created_by`` / ``source_bank_data_token``
/ ``additional_source_bank_data``; Hyperswitch never writes them, so they stay NULL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.support.hyperswitch import HyperswitchDrain, assert_only_changed, timestamp, utcnow

CREATED = dt.datetime(2026, 6, 1, 10, 0, 0, 123000)
STAMP = ("last_modified_at",)
#: columns of the 2026-06 schema that no struct at af406737 has
NEWER_PAYOUTS_COLUMNS = ("processor_merchant_id", "created_by")
NEWER_ATTEMPT_COLUMNS = (
    *NEWER_PAYOUTS_COLUMNS,
    "source_bank_data_token",
    "additional_source_bank_data",
)


def payout_gid(n: int) -> str:
    """``PartitionKey::MerchantIdPayoutId``: ``mid_{merchant_id}_po_{payout_id}``."""
    return f"mid_merchant_1_po_po_{n}"


def attempt_gid(n: int) -> str:
    """``PartitionKey::MerchantIdPayoutAttemptId``: ``mid_{merchant_id}_poa_{id}``."""
    return f"mid_merchant_1_poa_po_{n}_1"


def payouts_new(n: int) -> dict[str, Any]:
    """``PayoutsNew`` (v1), every field, ``None`` as null."""
    return {
        "payout_id": f"po_{n}",
        "merchant_id": "merchant_1",
        "customer_id": f"cus_{n}",
        "address_id": f"addr_{n}",
        "payout_type": "card",
        "payout_method_id": None,
        "amount": 2500,
        "destination_currency": "EUR",
        "source_currency": "USD",
        "description": "Marketplace seller payout",
        "recurring": False,
        "auto_fulfill": True,
        "return_url": "https://example.com/return",
        "entity_type": "Individual",
        "metadata": {"seller": f"s_{n}"},
        "created_at": timestamp(CREATED),
        "last_modified_at": timestamp(CREATED),
        "attempt_count": 1,
        "profile_id": "pro_1",
        "status": "requires_creation",
        "confirm": False,
        "payout_link_id": None,
        "client_secret": f"po_{n}_secret_abc",
        "priority": "instant",
        "organization_id": "org_1",
    }


def payouts_row(n: int) -> dict[str, Any]:
    """``Payouts`` (v1): the row as Hyperswitch read it (``orig``)."""
    new = payouts_new(n)
    return {
        "payout_id": new["payout_id"],
        "merchant_id": new["merchant_id"],
        "customer_id": new["customer_id"],
        "address_id": new["address_id"],
        "payout_type": new["payout_type"],
        "payout_method_id": None,
        "amount": new["amount"],
        "destination_currency": new["destination_currency"],
        "source_currency": new["source_currency"],
        "description": new["description"],
        "recurring": new["recurring"],
        "auto_fulfill": new["auto_fulfill"],
        "return_url": new["return_url"],
        "entity_type": new["entity_type"],
        "metadata": new["metadata"],
        "created_at": new["created_at"],
        "last_modified_at": new["last_modified_at"],
        "attempt_count": new["attempt_count"],
        "profile_id": new["profile_id"],
        "status": new["status"],
        "confirm": new["confirm"],
        "payout_link_id": None,
        "client_secret": new["client_secret"],
        "priority": new["priority"],
        "organization_id": new["organization_id"],
    }


def card_data() -> dict[str, Any]:
    """``AdditionalPayoutMethodData::Card(CardAdditionalData)``, every field."""
    return {
        "Card": {
            "card_issuer": "Example Bank",
            "card_network": "Visa",
            "card_type": "credit",
            "card_issuing_country": "US",
            "bank_code": None,
            "last4": "4242",
            "card_isin": "424242",
            "card_extended_bin": "42424242",
            "card_exp_month": "12",
            "card_exp_year": "2030",
            "card_holder_name": "John Doe",
        }
    }


def attempt_new(n: int) -> dict[str, Any]:
    """``PayoutAttemptNew`` (v1), every field, ``None`` as null."""
    return {
        "payout_attempt_id": f"po_{n}_1",
        "payout_id": f"po_{n}",
        "customer_id": f"cus_{n}",
        "merchant_id": "merchant_1",
        "address_id": f"addr_{n}",
        "connector": None,
        "connector_payout_id": None,
        "payout_token": None,
        "status": "requires_creation",
        "is_eligible": None,
        "error_message": None,
        "error_code": None,
        "business_country": "US",
        "business_label": "default",
        "created_at": timestamp(CREATED),
        "last_modified_at": timestamp(CREATED),
        "profile_id": "pro_1",
        "merchant_connector_id": None,
        "routing_info": None,
        "unified_code": None,
        "unified_message": None,
        "additional_payout_method_data": card_data(),
        "merchant_order_reference_id": f"order_{n}",
        "payout_connector_metadata": None,
    }


def attempt_row(n: int) -> dict[str, Any]:
    """``PayoutAttempt`` (v1): the row as Hyperswitch read it (``orig``)."""
    new = attempt_new(n)
    return {
        "payout_attempt_id": new["payout_attempt_id"],
        "payout_id": new["payout_id"],
        "customer_id": new["customer_id"],
        "merchant_id": new["merchant_id"],
        "address_id": new["address_id"],
        "connector": None,
        "connector_payout_id": None,
        "payout_token": None,
        "status": new["status"],
        "is_eligible": None,
        "error_message": None,
        "error_code": None,
        "business_country": new["business_country"],
        "business_label": new["business_label"],
        "created_at": new["created_at"],
        "last_modified_at": new["last_modified_at"],
        "profile_id": new["profile_id"],
        "merchant_connector_id": None,
        "routing_info": None,
        "unified_code": None,
        "unified_message": None,
        "additional_payout_method_data": new["additional_payout_method_data"],
        "merchant_order_reference_id": new["merchant_order_reference_id"],
        "payout_connector_metadata": None,
    }


#: variant -> (update_data as serde writes it, the columns the From impl sets)
PAYOUTS_VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "Update": (
        {
            "Update": {
                "amount": 4000,
                "destination_currency": "GBP",
                "source_currency": "EUR",
                "description": None,
                "recurring": True,
                "auto_fulfill": False,
                "return_url": "https://example.com/done",
                # ``rename = "lowercase"`` on Business: serde and strum both write this
                "entity_type": "lowercase",
                "metadata": {"seller": "s_new"},
                # Option fields copied as they are: null leaves the column
                "profile_id": None,
                "status": "requires_confirmation",
                "confirm": True,
                "payout_type": "bank",
                "address_id": None,
                "customer_id": "cus_new",
            }
        },
        {
            "amount": 4000,
            "destination_currency": "GBP",
            "source_currency": "EUR",
            "recurring": True,
            "auto_fulfill": False,
            "return_url": "https://example.com/done",
            "entity_type": "lowercase",
            "metadata": {"seller": "s_new"},
            "status": "requires_confirmation",
            "confirm": True,
            "payout_type": "bank",
            "customer_id": "cus_new",
        },
    ),
    "PayoutMethodIdUpdate": (
        {"PayoutMethodIdUpdate": {"payout_method_id": "pm_1"}},
        {"payout_method_id": "pm_1"},
    ),
    "RecurringUpdate": ({"RecurringUpdate": {"recurring": True}}, {"recurring": True}),
    "AttemptCountUpdate": ({"AttemptCountUpdate": {"attempt_count": 3}}, {"attempt_count": 3}),
    "StatusUpdate": ({"StatusUpdate": {"status": "success"}}, {"status": "success"}),
}

ACH = {
    "Bank": {
        "bank_account_number": "0001****3456",
        "bank_routing_number": "110***000",
        "bank_name": "Deutsche Bank",
        "bank_country_code": "US",
        "bank_city": "California",
    }
}

ATTEMPT_VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "StatusUpdate": (
        {
            "StatusUpdate": {
                "connector_payout_id": "cpo_1",
                "status": "failed",
                "error_message": "account closed",
                "error_code": "E42",
                "is_eligible": False,
                "unified_code": "UE_9000",
                "unified_message": None,
                "payout_connector_metadata": {"ref": "r_1"},
            }
        },
        {
            "connector_payout_id": "cpo_1",
            "status": "failed",
            "error_message": "account closed",
            "error_code": "E42",
            "is_eligible": False,
            "unified_code": "UE_9000",
            "payout_connector_metadata": {"ref": "r_1"},
        },
    ),
    "PayoutTokenUpdate": (
        {"PayoutTokenUpdate": {"payout_token": "tok_1"}},
        {"payout_token": "tok_1"},
    ),
    "BusinessUpdate": (
        {
            "BusinessUpdate": {
                "business_country": "DE",
                "business_label": None,
                "address_id": "addr_new",
                "customer_id": None,
            }
        },
        {"business_country": "DE", "address_id": "addr_new"},
    ),
    "UpdateRouting": (
        {
            "UpdateRouting": {
                "connector": "adyen",
                "routing_info": {"algorithm": "priority", "connectors": ["adyen", "wise"]},
                "merchant_connector_id": "mca_1",
            }
        },
        {
            "connector": "adyen",
            "routing_info": {"algorithm": "priority", "connectors": ["adyen", "wise"]},
            "merchant_connector_id": "mca_1",
        },
    ),
    "AdditionalPayoutMethodDataUpdate": (
        {"AdditionalPayoutMethodDataUpdate": {"additional_payout_method_data": ACH}},
        {"additional_payout_method_data": ACH},
    ),
}


async def test_every_payouts_update_variant(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    names = list(PAYOUTS_VARIANTS)
    for n in range(len(names)):
        hs.insert(payout_gid(n), "payouts", payouts_new(n))
    await hs.drain()
    before = {n: await hs.row("payouts", payout_id=f"po_{n}") for n in range(len(names))}
    started = utcnow()
    for n, name in enumerate(names):
        hs.update(payout_gid(n), "payouts_update", payouts_row(n), PAYOUTS_VARIANTS[name][0])
    await hs.drain()
    ended = utcnow()
    assert await hs.dead_reasons() == []
    assert await hs.streams_empty()
    for n, name in enumerate(names):
        after = await hs.row("payouts", payout_id=f"po_{n}")
        assert_only_changed(
            before[n], after, PAYOUTS_VARIANTS[name][1], stamps=STAMP, window=(started, ended)
        )


async def test_every_payout_attempt_update_variant(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    names = list(ATTEMPT_VARIANTS)
    for n in range(len(names)):
        hs.insert(payout_gid(n), "payouts", payouts_new(n))
    await hs.drain()
    for n in range(len(names)):
        hs.insert(attempt_gid(n), "payout_attempt", attempt_new(n))
    await hs.drain()
    rows = {
        n: await hs.row("payout_attempt", payout_attempt_id=f"po_{n}_1") for n in range(len(names))
    }
    payouts = {n: await hs.row("payouts", payout_id=f"po_{n}") for n in range(len(names))}
    started = utcnow()
    for n, name in enumerate(names):
        update = ATTEMPT_VARIANTS[name][0]
        hs.update(attempt_gid(n), "payout_attempt_update", attempt_row(n), update)
    await hs.drain()
    ended = utcnow()
    assert await hs.dead_reasons() == []
    assert await hs.streams_empty()
    for n, name in enumerate(names):
        after = await hs.row("payout_attempt", payout_attempt_id=f"po_{n}_1")
        assert_only_changed(
            rows[n], after, ATTEMPT_VARIANTS[name][1], stamps=STAMP, window=(started, ended)
        )
        # the parent payout is not touched by an attempt's update
        assert await hs.row("payouts", payout_id=f"po_{n}") == payouts[n]


async def test_inserts_store_every_field_and_null_is_the_column_default(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    """diesel writes DEFAULT for ``None``: ``payouts.metadata`` defaults to ``'{}'``,
    ``client_secret`` / ``unified_code`` / ``unified_message`` to NULL, and columns
    without a default (``organization_id``) are NULL."""
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    hs.insert(payout_gid(1), "payouts", payouts_new(1))
    nulls = {"metadata": None, "client_secret": None, "organization_id": None, "priority": None}
    hs.insert(payout_gid(2), "payouts", {**payouts_new(2), **nulls})
    hs.insert(attempt_gid(1), "payout_attempt", attempt_new(1))
    await hs.drain()
    assert await hs.dead_reasons() == []
    full = await hs.row("payouts", payout_id="po_1")
    assert full == {
        **payouts_new(1),
        "created_at": CREATED,
        "last_modified_at": CREATED,
        **dict.fromkeys(NEWER_PAYOUTS_COLUMNS),
    }
    defaulted = await hs.row("payouts", payout_id="po_2")
    assert defaulted["metadata"] == {}
    assert defaulted["client_secret"] is None
    assert defaulted["organization_id"] is None
    assert defaulted["priority"] is None
    attempt = await hs.row("payout_attempt", payout_attempt_id="po_1_1")
    assert attempt == {
        **attempt_new(1),
        "created_at": CREATED,
        "last_modified_at": CREATED,
        **dict.fromkeys(NEWER_ATTEMPT_COLUMNS),
    }


async def test_bad_variants_and_shapes_are_dead_lettered_with_a_reason(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    hs.insert(payout_gid(1), "payouts", payouts_new(1))
    hs.insert(attempt_gid(1), "payout_attempt", attempt_new(1))
    full_update = PAYOUTS_VARIANTS["Update"][0]["Update"]
    bad_payouts = [
        {"FooUpdate": {"status": "success"}},
        {"StatusUpdate": {}},
        {"Update": {**full_update, "amount": None}},
        {"RecurringUpdate": {"recurring": True, "attempt_count": 2}},
        {"StatusUpdate": {"status": "teleported"}},
    ]
    for update_data in bad_payouts:
        hs.update(payout_gid(1), "payouts_update", payouts_row(1), update_data)
    bad_attempts = [
        # an Internal field no variant has is still unknown to the variant
        {"PayoutTokenUpdate": {"payout_token": "t", "merchant_order_reference_id": "o"}},
        {"UpdateRouting": {"connector": None, "routing_info": None}},
        {"BusinessUpdate": {"business_country": "XX"}},
    ]
    for update_data in bad_attempts:
        hs.update(attempt_gid(1), "payout_attempt_update", attempt_row(1), update_data)
    await hs.drain()
    letters = await hs.dead_letters()
    by_table = {
        "payouts": [f["dl_error"] for f in letters if '"payouts_update"' in f["typed_sql"]],
        "payout_attempt": [
            f["dl_error"] for f in letters if "payout_attempt_update" in f["typed_sql"]
        ],
    }
    po = by_table["payouts"]
    assert po == [
        "payouts: unknown PayoutsUpdate variant 'FooUpdate'",
        "payouts: PayoutsUpdate::StatusUpdate: missing field 'status'",
        "payouts: PayoutsUpdate::Update: field 'amount' must not be null",
        "payouts: PayoutsUpdate::RecurringUpdate: unknown field 'attempt_count'",
        po[4],
    ]
    assert po[4].startswith("payouts.status: 'teleported' is not a value of enum"), po[4]
    pa = by_table["payout_attempt"]
    assert pa == [
        "payout_attempt: PayoutAttemptUpdate::PayoutTokenUpdate: unknown field "
        "'merchant_order_reference_id'",
        "payout_attempt: PayoutAttemptUpdate::UpdateRouting: field 'connector' must not be null",
        pa[2],
    ]
    assert pa[2].startswith("payout_attempt.business_country: 'XX' is not a value of enum"), pa[2]
    assert len(letters) == len(bad_payouts) + len(bad_attempts)
    assert await hs.streams_empty()
    # nothing bad reached the rows
    assert (await hs.row("payouts", payout_id="po_1"))["last_modified_at"] == CREATED
    assert (await hs.row("payout_attempt", payout_attempt_id="po_1_1"))[
        "last_modified_at"
    ] == CREATED
