"""Every ``PaymentIntentUpdate`` variant, applied as Hyperswitch's drainer applies it.

Fixtures follow ``crates/diesel_models/src/payment_intent.rs`` (juspay/hyperswitch
af406737, v1): ``PaymentIntentNew`` for the insert, ``PaymentIntent`` for ``orig``,
``enum PaymentIntentUpdate`` / ``struct PaymentIntentUpdateFields`` for
``update_data``, and ``impl From<PaymentIntentUpdate> for PaymentIntentUpdateInternal``
for the expected changeset; ``src/query/payment_intent.rs`` (v1 ``update``) finds the
row by ``payment_id`` and ``merchant_id``. Serde: the enum has no ``rename_all``
(variant names as in Rust), ``Update(Box<PaymentIntentUpdateFields>)`` is a newtype
variant (``{"Update": {<fields>}}``), ``IntentStatus`` & co. ``snake_case``,
``Currency`` / ``CountryAlpha2`` as written (``"USD"``, ``"US"``), ``MinorUnit`` a
number, ``Encryption`` ``{"inner": [...]}``, the ``*Bool`` wrappers plain booleans.
``PrimitiveDateTime`` is ``custom_serde::iso8601`` where the struct says so
(``created_at``, ``modified_at``, ``last_synced``, and ``session_expiry`` of
``PaymentIntentNew`` only); elsewhere (``order_date``, ``PaymentIntent.session_expiry``,
``PaymentIntentUpdateFields.session_expiry``) it is the ``time`` crate's own serde,
which the router (``time`` feature ``serde-human-readable``) writes as
``"2026-06-01 09:00:00.0"``.

Schema (2026-06) vs struct: the table has five columns ``PaymentIntent`` does not
know (``state_metadata``, ``installment_options``, ``profile_acquirer_id``,
``external_surcharge_strategy``, ``external_surcharge_applicable``); an insert
leaves them NULL and no variant writes them. Every struct field has its column.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.support.hyperswitch import (
    HyperswitchDrain,
    assert_only_changed,
    encryption,
    timestamp,
    utcnow,
)

CREATED = dt.datetime(2026, 6, 1, 10, 0, 0, 123000)
SESSION_EXPIRY = dt.datetime(2026, 6, 1, 10, 15)
ORDER_DATE = dt.datetime(2026, 6, 1, 9, 0)
MERCHANT = "merchant_1"
#: same payment ids under another merchant: updates must not touch these rows
OTHER_MERCHANT = "merchant_2"


def human(value: dt.datetime) -> str:
    """``time``'s human-readable serde of a ``PrimitiveDateTime``: fraction digits
    as few as possible, at least one."""
    fraction = f"{value.microsecond:06d}".rstrip("0") or "0"
    return value.strftime("%Y-%m-%d %H:%M:%S.") + fraction


TAX_DETAILS = {"default": {"order_tax_amount": 100}, "payment_method_type": None}


def intent_new(n: int, merchant: str = MERCHANT) -> dict[str, Any]:
    """``PaymentIntentNew`` (v1), every field, ``None`` as null."""
    return {
        "payment_id": f"pay_{n}",
        "merchant_id": merchant,
        "status": "requires_payment_method",
        "amount": 6540,
        "currency": "USD",
        "amount_captured": 0,
        "customer_id": "cus_1",
        "description": "Its my first payment request",
        "return_url": "https://shop.example/return",
        "metadata": {"udf1": "value1"},
        "connector_id": "stripe",
        "shipping_address_id": "add_ship_1",
        "billing_address_id": "add_bill_1",
        "statement_descriptor_name": "SHOP",
        "statement_descriptor_suffix": "ORDER",
        "created_at": timestamp(CREATED),
        "modified_at": timestamp(CREATED),
        "last_synced": timestamp(CREATED),
        "setup_future_usage": "on_session",
        "off_session": False,
        "client_secret": f"pay_{n}_secret_abc",
        "active_attempt_id": f"pay_{n}_1",
        "business_country": "US",
        "business_label": "retail",
        "order_details": [{"product_name": "shirt", "quantity": 1, "amount": 6540}],
        "allowed_payment_method_types": ["credit"],
        "connector_metadata": {"noon": {"order_category": "pay"}},
        "feature_metadata": {"search_tags": ["t1"]},
        "attempt_count": 1,
        "profile_id": "pro_1",
        "merchant_decision": None,
        "payment_link_id": "plink_1",
        "payment_confirm_source": "merchant_server",
        "updated_by": "redis_kv",
        "surcharge_applicable": False,
        "request_incremental_authorization": "false",
        "incremental_authorization_allowed": False,
        "authorization_count": 0,
        "session_expiry": timestamp(SESSION_EXPIRY),
        "fingerprint_id": "fp_1",
        "request_external_three_ds_authentication": False,
        "charges": {"charge_type": "direct"},
        "frm_metadata": {"order_channel": "web"},
        "customer_details": encryption(b"cust-1"),
        "billing_details": encryption(b"bill-1"),
        "merchant_order_reference_id": "ord_1",
        "shipping_details": encryption(b"ship-1"),
        "is_payment_processor_token_flow": False,
        "shipping_cost": 500,
        "organization_id": "org_1",
        "tax_details": TAX_DETAILS,
        "skip_external_tax_calculation": False,
        "request_extended_authorization": False,
        "psd2_sca_exemption_type": "low_value",
        "split_payments": {
            "stripe_split_payment": {
                "charge_type": "direct",
                "application_fees": 100,
                "transfer_account_id": "acct_1",
            }
        },
        "platform_merchant_id": None,
        "force_3ds_challenge": False,
        "force_3ds_challenge_trigger": False,
        "processor_merchant_id": merchant,
        "created_by": None,
        "is_iframe_redirection_enabled": False,
        "extended_return_url": "https://shop.example/return",
        "is_payment_id_from_merchant": False,
        "payment_channel": "ecommerce",
        "tax_status": "taxable",
        "discount_amount": 0,
        "order_date": human(ORDER_DATE),
        "shipping_amount_tax": 0,
        "duty_amount": 0,
        "enable_partial_authorization": False,
        "enable_overcapture": False,
        "mit_category": "unscheduled",
        "billing_descriptor": {
            "name": "Shop",
            "city": "San Francisco",
            "phone": "9123456789",
            "statement_descriptor": "SHOP",
            "statement_descriptor_suffix": "ORDER",
            "reference": "ref_1",
        },
        "tokenization": "skip_psp",
        "partner_merchant_identifier_details": {
            "partner_details": {"name": "partner", "version": "1.0.0", "integrator": "int"},
            "merchant_details": {"name": "shop_app", "version": "2.1"},
        },
    }


#: ``PaymentIntent`` (v1) fields in declaration order.
ROW_FIELDS = (
    "payment_id", "merchant_id", "status", "amount", "currency", "amount_captured",
    "customer_id", "description", "return_url", "metadata", "connector_id",
    "shipping_address_id", "billing_address_id", "statement_descriptor_name",
    "statement_descriptor_suffix", "created_at", "modified_at", "last_synced",
    "setup_future_usage", "off_session", "client_secret", "active_attempt_id",
    "business_country", "business_label", "order_details", "allowed_payment_method_types",
    "connector_metadata", "feature_metadata", "attempt_count", "profile_id",
    "merchant_decision", "payment_link_id", "payment_confirm_source", "updated_by",
    "surcharge_applicable", "request_incremental_authorization",
    "incremental_authorization_allowed", "authorization_count", "session_expiry",
    "fingerprint_id", "request_external_three_ds_authentication", "charges",
    "frm_metadata", "customer_details", "billing_details", "merchant_order_reference_id",
    "shipping_details", "is_payment_processor_token_flow", "shipping_cost",
    "organization_id", "tax_details", "skip_external_tax_calculation",
    "request_extended_authorization", "psd2_sca_exemption_type", "split_payments",
    "platform_merchant_id", "force_3ds_challenge", "force_3ds_challenge_trigger",
    "processor_merchant_id", "created_by", "is_iframe_redirection_enabled",
    "extended_return_url", "is_payment_id_from_merchant", "payment_channel", "tax_status",
    "discount_amount", "shipping_amount_tax", "duty_amount", "order_date",
    "enable_partial_authorization", "enable_overcapture", "mit_category",
    "billing_descriptor", "tokenization", "partner_merchant_identifier_details",
)  # fmt: skip


def intent_row(n: int, merchant: str = MERCHANT) -> dict[str, Any]:
    """``PaymentIntent`` (v1): the row as Hyperswitch read it (``orig``). Same values
    as the insert; only ``session_expiry`` is serialised differently (no
    ``iso8601`` attribute on ``PaymentIntent.session_expiry``)."""
    new = intent_new(n, merchant)
    row = {name: new[name] for name in ROW_FIELDS}
    row["session_expiry"] = human(SESSION_EXPIRY)
    return row


NEW_TAX = {"default": {"order_tax_amount": 250}, "payment_method_type": None}
SESSION_TAX = {
    "default": {"order_tax_amount": 300},
    "payment_method_type": {"order_tax_amount": 320, "pmt": "credit"},
}

#: ``PaymentIntentUpdateFields`` (v1), every field; ``shipping_address_id`` null
#: (skipped) and ``tax_details`` set (the From drops it).
UPDATE_FIELDS: dict[str, Any] = {
    "amount": 7000,
    "currency": "EUR",
    "setup_future_usage": "off_session",
    "status": "requires_confirmation",
    "customer_id": "cus_2",
    "shipping_address_id": None,
    "billing_address_id": "add_bill_2",
    "return_url": "https://shop.example/return2",
    "business_country": "DE",
    "business_label": "wholesale",
    "description": "Second description",
    "statement_descriptor_name": "SHOP2",
    "statement_descriptor_suffix": "ORDER2",
    "order_details": [{"product_name": "hat", "quantity": 2, "amount": 3500}],
    "metadata": {"udf1": "value2"},
    "payment_confirm_source": "dashboard",
    "updated_by": "kv_update",
    "session_expiry": "2026-06-02 11:30:00.5",
    "fingerprint_id": "fp_2",
    "request_external_three_ds_authentication": True,
    "frm_metadata": {"order_channel": "app"},
    "customer_details": encryption(b"cust-2"),
    "billing_details": encryption(b"bill-2"),
    "merchant_order_reference_id": "ord_2",
    "shipping_details": encryption(b"ship-2"),
    "is_payment_processor_token_flow": True,
    "tax_details": NEW_TAX,
    "force_3ds_challenge": True,
    "is_iframe_redirection_enabled": True,
    "payment_channel": "mail_order",
    "feature_metadata": {"search_tags": ["t2"]},
    "tax_status": "exempt",
    "discount_amount": 50,
    "order_date": "2026-06-02 08:00:00.0",
    "shipping_amount_tax": 20,
    "duty_amount": 10,
    "enable_partial_authorization": True,
    "enable_overcapture": True,
}
UPDATE_EXPECTED: dict[str, Any] = {
    **{k: v for k, v in UPDATE_FIELDS.items() if v is not None},
    "session_expiry": dt.datetime(2026, 6, 2, 11, 30, 0, 500000),
    "order_date": dt.datetime(2026, 6, 2, 8, 0),
    "customer_details": b"cust-2",
    "billing_details": b"bill-2",
    "shipping_details": b"ship-2",
    "extended_return_url": UPDATE_FIELDS["return_url"],
}
for _dropped in ("return_url", "tax_details"):  # return_url: extended_return_url only
    del UPDATE_EXPECTED[_dropped]

#: variant -> (update_data as serde writes it, the columns the From impl sets)
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ResponseUpdate": (
        {
            "ResponseUpdate": {
                "status": "succeeded",
                "amount_captured": 6540,
                "fingerprint_id": None,
                "updated_by": "kv_response",
                "incremental_authorization_allowed": True,
                "feature_metadata": {"search_tags": ["paid"]},
            }
        },
        {
            "status": "succeeded",
            "amount_captured": 6540,
            "updated_by": "kv_response",
            "incremental_authorization_allowed": True,
            "feature_metadata": {"search_tags": ["paid"]},
        },
    ),
    "MetadataUpdate": (
        {"MetadataUpdate": {"metadata": {"udf1": "changed"}, "updated_by": "kv_meta"}},
        {"metadata": {"udf1": "changed"}, "updated_by": "kv_meta"},
    ),
    "Update": ({"Update": UPDATE_FIELDS}, UPDATE_EXPECTED),
    "PaymentCreateUpdate": (
        {
            "PaymentCreateUpdate": {
                "return_url": "https://shop.example/created",
                "status": None,
                "customer_id": "cus_3",
                "shipping_address_id": "add_ship_3",
                "billing_address_id": None,
                "customer_details": encryption(b"cust-3"),
                "updated_by": "kv_create",
            }
        },
        {
            "extended_return_url": "https://shop.example/created",
            "customer_id": "cus_3",
            "shipping_address_id": "add_ship_3",
            "customer_details": b"cust-3",
            "updated_by": "kv_create",
        },
    ),
    "MerchantStatusUpdate": (
        {
            "MerchantStatusUpdate": {
                "status": "requires_merchant_action",
                "shipping_address_id": None,
                "billing_address_id": "add_bill_4",
                "updated_by": "kv_merchant",
            }
        },
        {
            "status": "requires_merchant_action",
            "billing_address_id": "add_bill_4",
            "updated_by": "kv_merchant",
        },
    ),
    "PGStatusUpdate": (
        {
            "PGStatusUpdate": {
                "status": "processing",
                "updated_by": "kv_pg",
                "incremental_authorization_allowed": None,
                "feature_metadata": {"search_tags": ["pg"]},
            }
        },
        {
            "status": "processing",
            "updated_by": "kv_pg",
            "feature_metadata": {"search_tags": ["pg"]},
        },
    ),
    "PaymentAttemptAndAttemptCountUpdate": (
        {
            "PaymentAttemptAndAttemptCountUpdate": {
                "active_attempt_id": "pay_6_2",
                "attempt_count": 2,
                "updated_by": "kv_attempt",
            }
        },
        {"active_attempt_id": "pay_6_2", "attempt_count": 2, "updated_by": "kv_attempt"},
    ),
    "StatusAndAttemptUpdate": (
        {
            "StatusAndAttemptUpdate": {
                "status": "requires_customer_action",
                "active_attempt_id": "pay_7_3",
                "attempt_count": 3,
                "updated_by": "kv_status",
            }
        },
        {
            "status": "requires_customer_action",
            "active_attempt_id": "pay_7_3",
            "attempt_count": 3,
            "updated_by": "kv_status",
        },
    ),
    "ApproveUpdate": (
        {
            "ApproveUpdate": {
                "status": "processing",
                "merchant_decision": "approved",
                "updated_by": "kv_approve",
            }
        },
        {"status": "processing", "merchant_decision": "approved", "updated_by": "kv_approve"},
    ),
    "RejectUpdate": (
        {
            "RejectUpdate": {
                "status": "failed",
                "merchant_decision": "rejected",
                "updated_by": "kv_reject",
            }
        },
        {"status": "failed", "merchant_decision": "rejected", "updated_by": "kv_reject"},
    ),
    "SurchargeApplicableUpdate": (
        {"SurchargeApplicableUpdate": {"surcharge_applicable": True, "updated_by": "kv_sur"}},
        {"surcharge_applicable": True, "updated_by": "kv_sur"},
    ),
    # The three variants without updated_by write String::default().
    "IncrementalAuthorizationAmountUpdate": (
        {"IncrementalAuthorizationAmountUpdate": {"amount": 8000}},
        {"amount": 8000, "updated_by": ""},
    ),
    "AuthorizationCountUpdate": (
        {"AuthorizationCountUpdate": {"authorization_count": 2}},
        {"authorization_count": 2, "updated_by": ""},
    ),
    "CompleteAuthorizeUpdate": (
        {"CompleteAuthorizeUpdate": {"shipping_address_id": "add_ship_13"}},
        {"shipping_address_id": "add_ship_13", "updated_by": ""},
    ),
    "ManualUpdate": (
        {"ManualUpdate": {"status": "succeeded", "updated_by": "ops"}},
        {"status": "succeeded", "updated_by": "ops"},
    ),
    "SessionResponseUpdate": (
        {
            "SessionResponseUpdate": {
                "tax_details": SESSION_TAX,
                "shipping_address_id": "add_ship_15",
                "updated_by": "kv_session",
                "shipping_details": None,
            }
        },
        {
            "tax_details": SESSION_TAX,
            "shipping_address_id": "add_ship_15",
            "updated_by": "kv_session",
        },
    ),
}


def gid(n: int, merchant: str = MERCHANT) -> str:
    """The router's ``global_id`` of a payment: ``mid_{merchant}_pid_{payment}``."""
    return f"mid_{merchant}_pid_pay_{n}"


async def test_every_payment_intent_update_variant(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    names = list(VARIANTS)
    assert len(names) == 16
    for n in range(len(names)):
        for merchant in (MERCHANT, OTHER_MERCHANT):
            hs.insert(gid(n, merchant), "payment_intent", intent_new(n, merchant))
    await hs.drain()
    assert await hs.dead_reasons() == []
    before = {
        (n, m): await hs.row("payment_intent", payment_id=f"pay_{n}", merchant_id=m)
        for n in range(len(names))
        for m in (MERCHANT, OTHER_MERCHANT)
    }
    started = utcnow()
    for n, name in enumerate(names):
        hs.update(gid(n), "payment_intent_update", intent_row(n), VARIANTS[name][0])
    await hs.drain()
    ended = utcnow()
    assert await hs.dead_reasons() == []
    assert await hs.streams_empty()
    for n, name in enumerate(names):
        after = await hs.row("payment_intent", payment_id=f"pay_{n}", merchant_id=MERCHANT)
        assert_only_changed(
            before[n, MERCHANT],
            after,
            VARIANTS[name][1],
            stamps=("modified_at",),
            window=(started, ended),
        )
        other = await hs.row("payment_intent", payment_id=f"pay_{n}", merchant_id=OTHER_MERCHANT)
        assert other == before[n, OTHER_MERCHANT], name


async def test_null_option_fields_leave_their_columns(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    """An ``Option`` field's null is ``None``: diesel skips it; ``updated_by`` and
    ``modified_at`` are still written (non-``Option`` in the internal struct)."""
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    updates = [
        {"ManualUpdate": {"status": None, "updated_by": "ops"}},
        {"CompleteAuthorizeUpdate": {"shipping_address_id": None}},
        {"SurchargeApplicableUpdate": {"surcharge_applicable": None, "updated_by": "kv"}},
    ]
    expected = [{"updated_by": "ops"}, {"updated_by": ""}, {"updated_by": "kv"}]
    for n in range(len(updates)):
        hs.insert(gid(n), "payment_intent", intent_new(n))
    await hs.drain()
    before = [await hs.row("payment_intent", payment_id=f"pay_{n}") for n in range(len(updates))]
    started = utcnow()
    for n, update_data in enumerate(updates):
        hs.update(gid(n), "payment_intent_update", intent_row(n), update_data)
    await hs.drain()
    ended = utcnow()
    assert await hs.dead_reasons() == []
    for n, want in enumerate(expected):
        after = await hs.row("payment_intent", payment_id=f"pay_{n}")
        assert_only_changed(
            before[n], after, want, stamps=("modified_at",), window=(started, ended)
        )


async def test_insert_null_is_the_column_default(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    """diesel writes DEFAULT for ``None``: the schema's defaults for payment_intent's
    ``Option`` columns are stored, and NULL where a column has none."""
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    defaulted = (
        "business_label", "force_3ds_challenge", "force_3ds_challenge_trigger",
        "request_incremental_authorization", "merchant_order_reference_id", "payment_channel",
        "description", "tax_details",
    )  # fmt: skip
    hs.insert(gid(7), "payment_intent", {**intent_new(7), **dict.fromkeys(defaulted)})
    await hs.drain()
    assert await hs.dead_reasons() == []
    stored = await hs.row("payment_intent", payment_id="pay_7")
    assert {name: stored[name] for name in defaulted} == {
        "business_label": "default",
        "force_3ds_challenge": False,
        "force_3ds_challenge_trigger": False,
        "request_incremental_authorization": "false",
        "merchant_order_reference_id": None,  # DEFAULT NULL
        "payment_channel": None,  # DEFAULT NULL
        "description": None,  # no default
        "tax_details": None,
    }
    assert stored["session_expiry"] == SESSION_EXPIRY
    assert stored["order_date"] == ORDER_DATE
    assert stored["customer_details"] == b"cust-1"
    assert stored["order_details"] == intent_new(7)["order_details"]


async def test_bad_variants_and_shapes_are_dead_lettered_with_a_reason(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    hs.insert(gid(1), "payment_intent", intent_new(1))
    await hs.drain()
    before = await hs.rows("payment_intent")
    bad = [
        {"FooUpdate": {"updated_by": "x"}},
        {"MetadataUpdate": {"updated_by": "x"}},
        # Rust would write JSON null here; we cannot, so it is refused (see the module)
        {"MetadataUpdate": {"metadata": None, "updated_by": "x"}},
        {"IncrementalAuthorizationAmountUpdate": {"amount": None}},
        {"SessionResponseUpdate": {"tax_details": None, "updated_by": "x"}},
        {"PGStatusUpdate": {"status": "processing", "updated_by": "x", "colour": "red"}},
        {"ManualUpdate": {"status": "succeeded", "updated_by": "x", "tax_details": NEW_TAX}},
        {"Update": {**UPDATE_FIELDS, "currency": None}},
        # a unit-variant string, and non-object payloads
        "ManualUpdate",
        {"Update": [UPDATE_FIELDS]},
        {"ManualUpdate": None},
        {"ManualUpdate": {"status": "teleported", "updated_by": "x"}},
    ]
    for update_data in bad:
        hs.update(gid(1), "payment_intent_update", intent_row(1), update_data)
    await hs.drain()
    where = "payment_intent: PaymentIntentUpdate"
    reasons = await hs.dead_reasons()
    assert reasons == [
        "payment_intent: unknown PaymentIntentUpdate variant 'FooUpdate'",
        f"{where}::MetadataUpdate: missing field 'metadata'",
        f"{where}::MetadataUpdate: field 'metadata' must not be null",
        f"{where}::IncrementalAuthorizationAmountUpdate: field 'amount' must not be null",
        f"{where}::SessionResponseUpdate: field 'tax_details' must not be null",
        f"{where}::PGStatusUpdate: unknown field 'colour'",
        f"{where}::ManualUpdate: unknown field 'tax_details'",
        f"{where}::Update: field 'currency' must not be null",
        f"{where}::ManualUpdate: missing field 'updated_by'",
        f"{where}::Update: the variant's fields must be an object, got an array",
        f"{where}::ManualUpdate: the variant's fields must be an object, got null",
        reasons[11],
    ]
    assert reasons[11].startswith("payment_intent.status: 'teleported' is not a value of enum")
    assert await hs.streams_empty()
    assert await hs.rows("payment_intent") == before
