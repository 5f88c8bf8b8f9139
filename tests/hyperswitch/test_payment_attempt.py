"""Every ``PaymentAttemptUpdate`` variant, applied as Hyperswitch's drainer applies it.

Fixtures follow ``crates/diesel_models/src/payment_attempt.rs`` (juspay/hyperswitch
af406737, v1): ``PaymentAttemptNew`` for the insert, ``PaymentAttempt`` for ``orig``,
``enum PaymentAttemptUpdate`` for ``update_data``; the expected changesets come from
``impl From<PaymentAttemptUpdate> for PaymentAttemptUpdateInternal`` plus
``PaymentAttemptUpdateInternal::populate_derived_fields`` (``net_amount`` = amount +
surcharge + tax + shipping + order tax, each the update's else ``orig``'s else 0;
``card_network`` from ``payment_method_data.card.card_network``), which
``src/query/payment_attempt.rs`` ``update_with_attempt_id`` applies to the row
``attempt_id`` + ``merchant_id`` of ``orig``. ``ConnectorTransactionId::form_id_and_data``
is in ``crates/common_utils/src/types.rs``; enums in ``crates/common_enums/src/enums.rs``,
``crates/diesel_models/src/enums.rs`` and ``crates/common_types/src/payments.rs``.

Serde: ``MinorUnit`` a number, enums ``snake_case`` (``Currency`` upper case),
``ConnectorTransactionId`` ``{"TxnId": ...}``, id newtypes and the ``*Bool`` wrappers
plain values. A ``PrimitiveDateTime`` with ``custom_serde::iso8601`` is
``2026-06-01T10:00:00.000Z``; without a serde attribute (``ResponseUpdate``'s
``capture_before`` and ``extended_authorization_last_applied_at``, ``PaymentAttempt``'s
``capture_before``) it is ``time``'s own format, human-readable because the router
(the writer) enables ``serde-human-readable``: ``2026-06-08 10:00:00.0``.

Schema (2026-06) vs struct: the table has columns the v1 struct does not know
(``encrypted_payment_method_data``, ``error_details``, ``retry_type``,
``installment_data``, ``external_surcharge_details``, ``network_transaction_link_id``,
``sender_payment_instrument_id``, ``external_threeds_authentication_type``): the insert
leaves them NULL and no variant writes them. ``authentication_data`` is ``json``, not
``jsonb``. There is no foreign key to ``payment_intent``, so no intent is inserted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import blake3

from tests.support.hyperswitch import HyperswitchDrain, assert_only_changed, timestamp, utcnow

CREATED = dt.datetime(2026, 6, 1, 10, 0, 0, 123000)
CAPTURE_BEFORE = dt.datetime(2026, 6, 8, 10, 0, 0)
EXT_AUTH_AT = dt.datetime(2026, 6, 1, 10, 5, 30, 250000)
TAG, UPDATE_TAG = "payment_attempt", "payment_attempt_update"
STAMPS = ("modified_at",)


def human_time(value: dt.datetime) -> str:
    """``time``'s human-readable ``PrimitiveDateTime``: ``[year]-[month]-[day]
    [hour]:[minute]:[second].[subsecond]``, the subsecond with as few digits as it needs."""
    fraction = f"{value.microsecond * 1000:09d}".rstrip("0") or "0"
    return value.strftime("%Y-%m-%d %H:%M:%S.") + fraction


def global_id(n: int, merchant: str = "merchant_1") -> str:
    return f"mid_{merchant}_pid_pay_{n}"


def attempt_new(n: int, merchant: str = "merchant_1") -> dict[str, Any]:
    """``PaymentAttemptNew`` (v1), every field, ``None`` as null. ``net_amount`` is
    left None so that every variant's recomputed ``net_amount`` shows."""
    return {
        "payment_id": f"pay_{n}",
        "merchant_id": merchant,
        "attempt_id": f"pay_{n}_1",
        "status": "started",
        "amount": 6540,
        "currency": "USD",
        "save_to_locker": False,
        "connector": "stripe",
        "error_message": "previous attempt failed",
        "offer_amount": None,
        "surcharge_amount": 100,
        "tax_amount": 50,
        "payment_method_id": None,
        "payment_method": "wallet",
        "capture_method": "automatic",
        "capture_on": None,
        "confirm": False,
        "authentication_type": "no_three_ds",
        "created_at": timestamp(CREATED),
        "modified_at": timestamp(CREATED),
        "last_synced": timestamp(CREATED),
        "cancellation_reason": None,
        "amount_to_capture": 6540,
        "mandate_id": None,
        "browser_info": {"user_agent": "Mozilla/5.0", "language": "en-US"},
        "payment_token": "tok_1",
        "error_code": "E_PREV",
        "connector_metadata": None,
        "payment_experience": "redirect_to_url",
        "payment_method_type": "google_pay",
        "payment_method_data": {"wallet": {"google_pay": {"type": "CARD"}}},
        "business_sub_label": None,
        "straight_through_algorithm": None,
        "preprocessing_step_id": None,
        "mandate_details": None,
        "error_reason": None,
        "connector_response_reference_id": None,
        "multiple_capture_count": None,
        "amount_capturable": 6540,
        "updated_by": "redis_kv",
        "merchant_connector_id": "mca_1",
        "authentication_data": None,
        "encoded_data": None,
        "unified_code": None,
        "unified_message": None,
        "net_amount": None,
        "external_three_ds_authentication_attempted": False,
        "authentication_connector": None,
        "authentication_id": None,
        "mandate_data": {"update_mandate_id": None},
        "fingerprint_id": None,
        "payment_method_billing_address_id": None,
        "client_source": "Payment",
        "client_version": "0.116.0",
        "customer_acceptance": None,
        "profile_id": "pro_1",
        "organization_id": "org_1",
        "card_network": None,
        "shipping_cost": 20,
        "order_tax_amount": 10,
        "connector_mandate_detail": None,
        "request_extended_authorization": False,
        "extended_authorization_applied": None,
        "capture_before": None,
        "card_discovery": None,
        "processor_merchant_id": merchant,
        "created_by": None,
        "setup_future_usage_applied": "on_session",
        "routing_approach": "default_fallback",
        "connector_request_reference_id": f"crr_{n}",
        "network_transaction_id": None,
        "network_details": None,
        "is_stored_credential": False,
        "authorized_amount": None,
        "extended_authorization_last_applied_at": None,
        "tokenization": None,
    }


#: ``PaymentAttempt`` fields ``PaymentAttemptNew`` lacks, as the inserted row has them.
ROW_ONLY = {
    "connector_transaction_id": None,
    "charge_id": None,
    "connector_transaction_data": None,
    "processor_transaction_data": None,
    "charges": None,
    "issuer_error_code": None,
    "issuer_error_message": None,
    "is_overcapture_enabled": None,
}


def attempt_row(new: dict[str, Any]) -> dict[str, Any]:
    """``PaymentAttempt`` (v1), the row as Hyperswitch read it (``orig``): its 84 fields
    (serde reads them by name). ``capture_before`` has no serde attribute there, so a
    value would be written with :func:`human_time`; the fixtures leave it None."""
    fields = {**new, **ROW_ONLY}
    if fields["capture_before"] is not None:
        raise ValueError("write PaymentAttempt.capture_before with human_time")
    assert len(fields) == 84
    return fields


CARD_VISA = {"card": {"last4": "4242", "card_network": "Visa", "card_type": "CREDIT"}}
CARD_MC = {"card": {"last4": "4444", "card_network": "Mastercard"}}
CARD_NO_NETWORK = {"card": {"last4": "0002"}}
MANDATE_DETAIL = {
    "connector_mandate_id": "cm_1",
    "payment_method_id": "pm_1",
    "mandate_metadata": {"network": "visa"},
    "connector_mandate_request_reference_id": "cmr_1",
}
CHARGES = {
    "stripe_split_payment": {
        "charge_id": "ch_1",
        "charge_type": "direct",
        "application_fees": 100,
        "transfer_account_id": "acct_1",
    }
}
ROUTING = {"type": "single", "data": {"connector": "adyen", "merchant_connector_id": "mca_2"}}
ACCEPTANCE = {"acceptance_type": "online", "accepted_at": None, "online": None}
AUTH_DATA = {"three_ds": {"eci": "05", "cavv": "AAAB"}}
NET = 6540 + 100 + 50 + 20 + 10  # orig's amount, surcharge, tax, shipping, order tax


def _update(**f: Any) -> dict[str, Any]:
    return f


#: variant -> (its fields, every one, as serde writes them; the columns the From impl plus
#: populate_derived_fields set). Expected column values are as read back from PostgreSQL.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "Update": (
        _update(amount=7000, currency="EUR", status="pending", authentication_type="three_ds",
                payment_method="card", payment_token="tok_2", payment_method_data=CARD_VISA,
                payment_method_type="credit", payment_experience="invoke_sdk_client",
                business_sub_label="sub_1", amount_to_capture=7000, capture_method="manual",
                surcharge_amount=200, tax_amount=80, fingerprint_id="fp_1",
                payment_method_billing_address_id="addr_1", network_transaction_id="ntid_1",
                updated_by="kv_update"),
        {"amount": 7000, "currency": "EUR", "status": "pending", "authentication_type": "three_ds",
         "payment_method": "card", "payment_token": "tok_2", "payment_method_data": CARD_VISA,
         "payment_method_type": "credit", "payment_experience": "invoke_sdk_client",
         "business_sub_label": "sub_1", "amount_to_capture": 7000, "capture_method": "manual",
         "surcharge_amount": 200, "tax_amount": 80, "fingerprint_id": "fp_1",
         "payment_method_billing_address_id": "addr_1", "network_transaction_id": "ntid_1",
         "updated_by": "kv_update", "net_amount": 7000 + 200 + 80 + 20 + 10,
         "card_network": "Visa"},
    ),
    "UpdateTrackers": (
        _update(payment_token="tok_3", connector="adyen", straight_through_algorithm=ROUTING,
                amount_capturable=6000, surcharge_amount=300, tax_amount=60,
                updated_by="kv_trackers", merchant_connector_id="mca_2",
                routing_approach="rule_based_routing", is_stored_credential=True),
        {"payment_token": "tok_3", "connector": "adyen", "straight_through_algorithm": ROUTING,
         "amount_capturable": 6000, "surcharge_amount": 300, "tax_amount": 60,
         "updated_by": "kv_trackers", "merchant_connector_id": "mca_2",
         "routing_approach": "rule_based_routing", "is_stored_credential": True,
         "net_amount": 6540 + 300 + 60 + 20 + 10},
    ),
    "AuthenticationTypeUpdate": (
        _update(authentication_type="three_ds", updated_by="kv_auth_type"),
        {"authentication_type": "three_ds", "updated_by": "kv_auth_type", "net_amount": NET},
    ),
    "ConfirmUpdate": (
        _update(amount=8000, currency="GBP", status="authorizing", authentication_type="three_ds",
                capture_method="manual", payment_method="card",
                browser_info={"user_agent": "curl/8", "ip_address": "127.0.0.1"},
                connector="adyen", payment_token="tok_4", payment_method_data=CARD_MC,
                payment_method_type="debit", payment_experience="invoke_sdk_client",
                business_sub_label="sub_2", straight_through_algorithm=ROUTING,
                error_code="E_CONF", error_message=None, surcharge_amount=150, tax_amount=70,
                fingerprint_id="fp_2", updated_by="kv_confirm", merchant_connector_id="mca_3",
                payment_method_id="pm_2", external_three_ds_authentication_attempted=True,
                authentication_connector="netcetera", authentication_id="authn_1",
                payment_method_billing_address_id="addr_2", client_source="sdk",
                client_version="1.2.3", customer_acceptance=ACCEPTANCE, shipping_cost=40,
                order_tax_amount=30, connector_mandate_detail=MANDATE_DETAIL,
                tokenization="tokenize_at_psp", card_discovery="saved_card",
                routing_approach="straight_through_routing",
                connector_request_reference_id="crr_conf", network_transaction_id="ntid_2",
                is_stored_credential=True, request_extended_authorization=True),
        {"amount": 8000, "currency": "GBP", "status": "authorizing",
         "authentication_type": "three_ds", "capture_method": "manual", "payment_method": "card",
         "browser_info": {"user_agent": "curl/8", "ip_address": "127.0.0.1"},
         "connector": "adyen", "payment_token": "tok_4", "payment_method_data": CARD_MC,
         "payment_method_type": "debit", "payment_experience": "invoke_sdk_client",
         "business_sub_label": "sub_2", "straight_through_algorithm": ROUTING,
         "error_code": "E_CONF", "surcharge_amount": 150, "tax_amount": 70,
         "fingerprint_id": "fp_2", "updated_by": "kv_confirm", "merchant_connector_id": "mca_3",
         "payment_method_id": "pm_2", "external_three_ds_authentication_attempted": True,
         "authentication_connector": "netcetera", "authentication_id": "authn_1",
         "payment_method_billing_address_id": "addr_2", "client_source": "sdk",
         "client_version": "1.2.3", "customer_acceptance": ACCEPTANCE, "shipping_cost": 40,
         "order_tax_amount": 30, "connector_mandate_detail": MANDATE_DETAIL,
         "tokenization": "tokenize_at_psp", "card_discovery": "saved_card",
         "routing_approach": "straight_through_routing",
         "connector_request_reference_id": "crr_conf", "network_transaction_id": "ntid_2",
         "is_stored_credential": True, "request_extended_authorization": True,
         "net_amount": 8000 + 150 + 70 + 40 + 30, "card_network": "Mastercard"},
    ),
    "VoidUpdate": (
        _update(status="voided", cancellation_reason="requested_by_customer", updated_by="kv_v"),
        {"status": "voided", "cancellation_reason": "requested_by_customer", "updated_by": "kv_v",
         "net_amount": NET},
    ),
    "PaymentMethodDetailsUpdate": (
        _update(payment_method_id="pm_9", updated_by="kv_pm"),
        {"payment_method_id": "pm_9", "updated_by": "kv_pm", "net_amount": NET},
    ),
    "ConnectorMandateDetailUpdate": (
        _update(connector_mandate_detail=MANDATE_DETAIL, tokenization="skip_psp",
                updated_by="kv_cmd"),
        {"connector_mandate_detail": MANDATE_DETAIL, "tokenization": "skip_psp",
         "updated_by": "kv_cmd", "net_amount": NET},
    ),
    "BlocklistUpdate": (  # connector and merchant_connector_id: Some(None), i.e. NULL
        _update(status="failure", error_code="HE_03", error_message="card blocked",
                updated_by="kv_block"),
        {"status": "failure", "error_code": "HE_03", "error_message": "card blocked",
         "updated_by": "kv_block", "connector": None, "merchant_connector_id": None,
         "net_amount": NET},
    ),
    "RejectUpdate": (  # error_message null: Option<Option<_>> reads null as None, kept
        _update(status="failure", error_code="HE_04", error_message=None, updated_by="kv_rej"),
        {"status": "failure", "error_code": "HE_04", "updated_by": "kv_rej", "net_amount": NET},
    ),
    "ResponseUpdate": (  # the error fields null (Some(None) on the wire): the old error stays
        _update(status="charged", connector="adyen", connector_transaction_id="pi_3Nresp",
                authentication_type="three_ds", network_transaction_id="ntid_3",
                payment_method_id="pm_3", mandate_id="man_1",
                connector_metadata={"apple_pay": None, "order_id": "o_1"},
                payment_token="tok_5", error_code=None, error_message=None, error_reason=None,
                connector_response_reference_id="ref_3", amount_capturable=0,
                updated_by="kv_resp", authentication_data=AUTH_DATA, encoded_data="enc_1",
                unified_code=None, unified_message=None, capture_before=human_time(CAPTURE_BEFORE),
                extended_authorization_applied=True,
                extended_authorization_last_applied_at=human_time(EXT_AUTH_AT),
                tokenization="skip_psp", payment_method_data=CARD_MC,
                connector_mandate_detail=MANDATE_DETAIL, charges=CHARGES,
                setup_future_usage_applied="off_session", is_overcapture_enabled=True,
                authorized_amount=6540),
        {"status": "charged", "connector": "adyen", "connector_transaction_id": "pi_3Nresp",
         "authentication_type": "three_ds", "network_transaction_id": "ntid_3",
         "payment_method_id": "pm_3", "mandate_id": "man_1",
         "connector_metadata": {"apple_pay": None, "order_id": "o_1"}, "payment_token": "tok_5",
         "connector_response_reference_id": "ref_3", "amount_capturable": 0,
         "updated_by": "kv_resp", "authentication_data": AUTH_DATA, "encoded_data": "enc_1",
         "capture_before": CAPTURE_BEFORE, "extended_authorization_applied": True,
         "extended_authorization_last_applied_at": EXT_AUTH_AT, "tokenization": "skip_psp",
         "payment_method_data": CARD_MC, "connector_mandate_detail": MANDATE_DETAIL,
         "charges": CHARGES, "setup_future_usage_applied": "off_session",
         "is_overcapture_enabled": True, "authorized_amount": 6540, "net_amount": NET,
         "card_network": "Mastercard"},
    ),
    "UnresolvedResponseUpdate": (
        _update(status="unresolved", connector="adyen", connector_transaction_id="txn_unres",
                payment_method_id="pm_4", error_code="UE_1", error_message="timeout",
                error_reason="gateway timeout", connector_response_reference_id="ref_4",
                updated_by="kv_unres"),
        {"status": "unresolved", "connector": "adyen", "connector_transaction_id": "txn_unres",
         "payment_method_id": "pm_4", "error_code": "UE_1", "error_message": "timeout",
         "error_reason": "gateway timeout", "connector_response_reference_id": "ref_4",
         "updated_by": "kv_unres", "net_amount": NET},
    ),
    "StatusUpdate": (
        _update(status="charged", updated_by="kv_status"),
        {"status": "charged", "updated_by": "kv_status", "net_amount": NET},
    ),
    "ErrorUpdate": (  # payment_method_data without card.card_network: card_network untouched
        _update(connector="adyen", status="failure", error_code="05",
                error_message="Do not honor", error_reason="declined", amount_capturable=0,
                updated_by="kv_err", unified_code="UE_9000",
                unified_message="Something went wrong", connector_transaction_id="txn_err",
                payment_method_data=CARD_NO_NETWORK, authentication_type="three_ds",
                issuer_error_code="51", issuer_error_message="Insufficient funds",
                network_details={"network_advice_code": "01"}),
        {"connector": "adyen", "status": "failure", "error_code": "05",
         "error_message": "Do not honor", "error_reason": "declined", "amount_capturable": 0,
         "updated_by": "kv_err", "unified_code": "UE_9000",
         "unified_message": "Something went wrong", "connector_transaction_id": "txn_err",
         "payment_method_data": CARD_NO_NETWORK, "authentication_type": "three_ds",
         "issuer_error_code": "51", "issuer_error_message": "Insufficient funds",
         "network_details": {"network_advice_code": "01"}, "net_amount": NET},
    ),
    "CaptureUpdate": (
        _update(amount_to_capture=3000, multiple_capture_count=2, updated_by="kv_cap"),
        {"amount_to_capture": 3000, "multiple_capture_count": 2, "updated_by": "kv_cap",
         "net_amount": NET},
    ),
    "AmountToCaptureUpdate": (
        _update(status="partial_charged", amount_capturable=3540, updated_by="kv_atc"),
        {"status": "partial_charged", "amount_capturable": 3540, "updated_by": "kv_atc",
         "net_amount": NET},
    ),
    "PreprocessingUpdate": (
        _update(status="authentication_pending", payment_method_id="pm_5",
                connector_metadata={"three_ds_form": "f_1"}, preprocessing_step_id="pre_1",
                connector_transaction_id="txn_pre", connector_response_reference_id="ref_5",
                updated_by="kv_pre"),
        {"status": "authentication_pending", "payment_method_id": "pm_5",
         "connector_metadata": {"three_ds_form": "f_1"}, "preprocessing_step_id": "pre_1",
         "connector_transaction_id": "txn_pre", "connector_response_reference_id": "ref_5",
         "updated_by": "kv_pre", "net_amount": NET},
    ),
    "ConnectorResponse": (
        _update(authentication_data=AUTH_DATA, encoded_data="enc_2",
                connector_transaction_id="txn_cr", connector="adyen", charges=CHARGES,
                updated_by="kv_cr"),
        {"authentication_data": AUTH_DATA, "encoded_data": "enc_2",
         "connector_transaction_id": "txn_cr", "connector": "adyen", "charges": CHARGES,
         "updated_by": "kv_cr", "net_amount": NET},
    ),
    "IncrementalAuthorizationAmountUpdate": (  # updated_by: String::default()
        _update(amount=9000, amount_capturable=9000),
        {"amount": 9000, "amount_capturable": 9000, "updated_by": "",
         "net_amount": 9000 + 100 + 50 + 20 + 10},
    ),
    "AuthenticationUpdate": (
        _update(status="authentication_successful",
                external_three_ds_authentication_attempted=True,
                authentication_connector="netcetera", authentication_id="authn_2",
                updated_by="kv_authn"),
        {"status": "authentication_successful",
         "external_three_ds_authentication_attempted": True,
         "authentication_connector": "netcetera", "authentication_id": "authn_2",
         "updated_by": "kv_authn", "net_amount": NET},
    ),
    "ManualUpdate": (  # Option<String> fields .map(Some): null skips
        _update(status="charged", error_code="E_M", error_message=None, error_reason="manual",
                updated_by="ops", unified_code="UE_M", unified_message="Manual review",
                connector_transaction_id="txn_man", amount_capturable=0),
        {"status": "charged", "error_code": "E_M", "error_reason": "manual", "updated_by": "ops",
         "unified_code": "UE_M", "unified_message": "Manual review",
         "connector_transaction_id": "txn_man", "amount_capturable": 0, "net_amount": NET},
    ),
    "PostSessionTokensUpdate": (
        _update(updated_by="kv_pst", connector_metadata={"session_token": "st_1"}),
        {"updated_by": "kv_pst", "connector_metadata": {"session_token": "st_1"},
         "net_amount": NET},
    ),
}  # fmt: skip


async def _apply(
    hs: HyperswitchDrain, rows: list[tuple[dict[str, Any], dict[str, Any]]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], tuple[dt.datetime, dt.datetime]]:
    """Insert each ``PaymentAttemptNew``, then apply its update; the rows before and
    after, and the update run's time window."""
    for new, _update_data in rows:
        hs.insert(global_id(0, new["merchant_id"]), TAG, new)
    await hs.drain()
    keys = [{"attempt_id": new["attempt_id"], "merchant_id": new["merchant_id"]} for new, _ in rows]
    before = [await hs.row(TAG, **key) for key in keys]
    started = utcnow()
    for new, update_data in rows:
        hs.update(global_id(0, new["merchant_id"]), UPDATE_TAG, attempt_row(new), update_data)
    await hs.drain()
    ended = utcnow()
    assert await hs.dead_reasons() == []
    assert await hs.streams_empty()
    return before, [await hs.row(TAG, **key) for key in keys], (started, ended)


async def test_every_payment_attempt_update_variant(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    assert len(VARIANTS) == 21
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    names = list(VARIANTS)
    rows = [(attempt_new(n), {name: VARIANTS[name][0]}) for n, name in enumerate(names)]
    # ErrorUpdate's card has no card_network: populate_derived_fields yields None, which
    # the changeset skips, so a stored network stays
    rows[names.index("ErrorUpdate")][0]["card_network"] = "Visa"
    before, after, window = await _apply(hs, rows)
    for n, name in enumerate(names):
        assert before[n]["net_amount"] is None
        assert_only_changed(before[n], after[n], VARIANTS[name][1], stamps=STAMPS, window=window)


def _hashed(src: str) -> str:
    """``From<String> for ConnectorTransactionId`` over 128 bytes: ``hs_hash_`` + hex of
    BLAKE3's extendable output, ``CONNECTOR_TRANSACTION_ID_HASH_BYTES`` = 25 bytes."""
    return "hs_hash_" + blake3.blake3(src.encode()).digest(length=25).hex()


async def test_long_connector_transaction_id_is_hashed(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    """``form_id_and_data``: over 128 characters the column gets the hash and
    ``processor_transaction_data`` the original; an id already ``hs_hash_``-prefixed is
    kept and also copied to ``processor_transaction_data`` (it is ``HashedData``)."""
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    long_id = "pi_" + "x7" * 100  # 203 characters
    prefixed = "hs_hash_" + "ab" * 25
    response = {**VARIANTS["ResponseUpdate"][0], "connector_transaction_id": long_id}
    manual = {**VARIANTS["ManualUpdate"][0], "connector_transaction_id": prefixed}
    rows = [
        (attempt_new(0), {"ResponseUpdate": response}),
        (attempt_new(1), {"ManualUpdate": manual}),
    ]
    before, after, window = await _apply(hs, rows)
    hashed = _hashed(long_id)
    assert len(hashed) == 58
    want_response = {
        **VARIANTS["ResponseUpdate"][1],
        "connector_transaction_id": hashed,
        "processor_transaction_data": long_id,
    }
    want_manual = {
        **VARIANTS["ManualUpdate"][1],
        "connector_transaction_id": prefixed,
        "processor_transaction_data": prefixed,
    }
    assert_only_changed(before[0], after[0], want_response, stamps=STAMPS, window=window)
    assert_only_changed(before[1], after[1], want_manual, stamps=STAMPS, window=window)


async def test_same_attempt_id_of_another_merchant_is_left_alone(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    """The primary key is (attempt_id, merchant_id) and the unique index (payment_id,
    merchant_id, attempt_id): two merchants may hold the same attempt_id (and payment_id).
    ``update_with_attempt_id`` filters on both, so only merchant_2's row changes. Its
    ``orig`` has no surcharge, tax, shipping or order tax: each counts as 0."""
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    other = attempt_new(0, merchant="merchant_2")
    other.update(amount=5000, surcharge_amount=None, tax_amount=None, shipping_cost=None,
                 order_tax_amount=None)  # fmt: skip
    hs.insert(global_id(0), TAG, attempt_new(0))
    before, after, window = await _apply(
        hs, [(other, {"StatusUpdate": VARIANTS["StatusUpdate"][0]})]
    )
    untouched = await hs.row(TAG, attempt_id="pay_0_1", merchant_id="merchant_1")
    assert untouched["status"] == "started" and untouched["net_amount"] is None
    assert untouched["modified_at"] == CREATED
    want = {"status": "charged", "updated_by": "kv_status", "net_amount": 5000}
    assert_only_changed(before[0], after[0], want, stamps=STAMPS, window=window)


async def test_bad_variants_and_shapes_are_dead_lettered_with_a_reason(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    hs.insert(global_id(1), TAG, attempt_new(1))
    status = VARIANTS["StatusUpdate"][0]
    bad: list[Any] = [
        {"FooUpdate": {"updated_by": "x"}},
        {"StatusUpdate": {"status": "charged"}},
        {"AmountToCaptureUpdate": {"status": "charged", "amount_capturable": None,
                                   "updated_by": "x"}},
        # commented out of Update in the enum: not a field of the variant
        {"Update": {**VARIANTS["Update"][0], "connector_transaction_id": "txn_1"}},
        # IncrementalAuthorizationAmountUpdate has no updated_by
        {"IncrementalAuthorizationAmountUpdate": {"amount": 1, "amount_capturable": 1,
                                                  "updated_by": "x"}},
        {"ManualUpdate": {**VARIANTS["ManualUpdate"][0], "connector_transaction_id": 42}},
        {"IncrementalAuthorizationAmountUpdate": {"amount": "9000", "amount_capturable": 1}},
        {"StatusUpdate": {**status, "status": "teleported"}},
        {"StatusUpdate": "charged"},
    ]  # fmt: skip
    for update_data in bad:
        hs.update(global_id(1), UPDATE_TAG, attempt_row(attempt_new(1)), update_data)
    await hs.drain()
    reasons = await hs.dead_reasons()
    where = "payment_attempt: PaymentAttemptUpdate::"
    assert reasons == [
        "payment_attempt: unknown PaymentAttemptUpdate variant 'FooUpdate'",
        f"{where}StatusUpdate: missing field 'updated_by'",
        f"{where}AmountToCaptureUpdate: field 'amount_capturable' must not be null",
        f"{where}Update: unknown field 'connector_transaction_id'",
        f"{where}IncrementalAuthorizationAmountUpdate: unknown field 'updated_by'",
        f"{where}ManualUpdate: connector_transaction_id: "
        "connector_transaction_id must be a string, got 42",
        f"{where}IncrementalAuthorizationAmountUpdate: net_amount: "
        "amount must be an integer (MinorUnit), got '9000'",
        "payment_attempt.status: 'teleported' is not a value of enum AttemptStatus (allowed: "
        "'started', 'authentication_failed', 'router_declined', 'authentication_successful', "
        "'authentication_pending', 'authorized', ... 29 in all)",
        f"{where}StatusUpdate: the variant's fields must be an object, got a string",
    ]
    assert await hs.streams_empty()
    stored = await hs.row(TAG, attempt_id="pay_1_1", merchant_id="merchant_1")
    assert stored["status"] == "started" and stored["modified_at"] == CREATED
