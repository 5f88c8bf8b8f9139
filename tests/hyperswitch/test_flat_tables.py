"""The tables whose ``update_data`` is a flat ``*UpdateInternal``, and their inserts.

Fixtures follow ``crates/diesel_models/src/{address,customers,mandate,payment_method,
reverse_lookup}.rs`` (juspay/hyperswitch af406737, v1): ``AddressNew`` / ``Address`` /
``AddressUpdateInternal``, ``CustomerNew`` / ``Customer`` / ``CustomerUpdateInternal``,
``MandateNew`` / ``Mandate`` / ``MandateUpdateInternal``, ``PaymentMethodNew`` /
``PaymentMethod`` / ``PaymentMethodUpdateInternal`` and ``ReverseLookupNew``; kv.rs
for the tags and the update calls, ``src/query/{address,customers,mandate,
payment_method}.rs`` for the WHERE columns (``address_id``; ``customer_id`` and
``merchant_id``; ``merchant_id`` and ``mandate_id``; ``payment_method_id``).

The update struct is written as is and applied by diesel's ``AsChangeset``: a ``None``
(null) leaves its column alone, every other field is written as given, the
non-``Option`` ``modified_at`` / ``last_modified`` too (the router's clock, not the
drainer's: nothing is stamped at apply time). None of these structs has a serde
attribute on its ``PrimitiveDateTime`` fields, so they are ``time``'s human-readable
form (``serde-human-readable`` is on through ``masking``'s default ``time`` feature):
``2026-06-01 10:00:00.123``. ``Encryption`` is ``{"inner": [bytes]}``, ``Secret<T>``
and the ``id_type`` ids are plain strings, enums ``snake_case`` except ``Currency`` and
``CountryAlpha2`` (their variant names).

Schema (2026-06) columns no v1 struct has, left NULL here: ``customers.document_details``
and ``id``, ``mandate.network_transaction_link_id``, ``payment_methods.customer_details``,
``locker_fingerprint_id``, ``network_tokenization_data``, ``id``,
``payment_method_type_v2``, ``payment_method_subtype``, ``network_transaction_link_id``,
``compatibility_updated_at``. ``PaymentMethodIssuerCode::JpPhonepay`` serialises as
``jp_phonepay`` while the schema's enum label is ``jp_phonepe``: that value fails in
PostgreSQL for the Rust drainer too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from drainer.db.dialects.hyperswitch.flat import (
    FLAT_INSERTS,
    FLAT_UPDATES,
    description,
    reference_id,
)
from drainer.db.errors import MalformedOperation
from tests.support.hyperswitch import (
    HyperswitchDrain,
    assert_only_changed,
    assert_stamped,
    encryption,
    utcnow,
)

CREATED = dt.datetime(2026, 6, 1, 10, 0, 0, 123000)
UPDATED = dt.datetime(2026, 6, 2, 11, 30, 0, 500000)
ACCEPTED = dt.datetime(2026, 5, 31, 9, 15, 42)


def readable(value: dt.datetime) -> str:
    """``time``'s human-readable ``PrimitiveDateTime``: ``[year]-[month]-[day]
    [hour]:[minute]:[second].[subsecond]``, the subsecond with as few digits as it needs
    (at least one): ``2026-06-01 10:00:00.123``, ``2026-05-31 09:15:42.0``."""
    digits = f"{value.microsecond * 1000:09d}".rstrip("0") or "0"
    return value.strftime("%Y-%m-%d %H:%M:%S.") + digits


def enc(text: str) -> dict[str, list[int]]:
    return encryption(text.encode())


# --- address ---------------------------------------------------------------------


def address_new(n: int) -> dict[str, Any]:
    """``AddressNew``: every field, ``None`` as null."""
    return {
        "address_id": f"add_{n}",
        "city": "Bangalore",
        "country": "IN",
        "line1": enc(f"line1 {n}"),
        "line2": enc("line2"),
        "line3": None,
        "state": enc("Karnataka"),
        "zip": enc("560001"),
        "first_name": enc("Ada"),
        "last_name": enc("Lovelace"),
        "phone_number": None,
        "country_code": "+91",
        "customer_id": "cus_1",
        "merchant_id": "merchant_1",
        "payment_id": f"pay_{n}",
        "created_at": readable(CREATED),
        "modified_at": readable(CREATED),
        "updated_by": "redis_kv",
        "email": enc("ada@example.com"),
        "origin_zip": None,
    }


def address_row(n: int) -> dict[str, Any]:
    """``Address``: the row as the router read it (``orig``)."""
    new = address_new(n)
    order = (
        "address_id", "city", "country", "line1", "line2", "line3", "state", "zip",
        "first_name", "last_name", "phone_number", "country_code", "created_at",
        "modified_at", "customer_id", "merchant_id", "payment_id", "updated_by", "email",
        "origin_zip",
    )  # fmt: skip
    return {name: new[name] for name in order}


ADDRESS_UPDATE = {
    "city": "Berlin",
    "country": "DE",
    "line1": enc("Unter den Linden 1"),
    "line2": None,
    "line3": None,
    "state": enc("Berlin"),
    "zip": None,
    "first_name": None,
    "last_name": enc("Byron"),
    "phone_number": enc("5550100"),
    "country_code": None,
    "modified_at": readable(UPDATED),
    "updated_by": "kv_router",
    "email": None,
    "origin_zip": enc("10117"),
}
ADDRESS_CHANGES = {
    "city": "Berlin",
    "country": "DE",
    "line1": b"Unter den Linden 1",
    "state": b"Berlin",
    "last_name": b"Byron",
    "phone_number": b"5550100",
    "modified_at": UPDATED,
    "updated_by": "kv_router",
    "origin_zip": b"10117",
}


# --- customers ---------------------------------------------------------------------


def customer_new(customer_id: str, merchant_id: str) -> dict[str, Any]:
    """``CustomerNew`` (v1)."""
    return {
        "customer_id": customer_id,
        "merchant_id": merchant_id,
        "name": enc("Ada"),
        "email": enc("ada@example.com"),
        "phone": None,
        "description": "First customer",
        "phone_country_code": "+44",
        "metadata": {"tier": "gold"},
        "connector_customer": None,
        "created_at": readable(CREATED),
        "modified_at": readable(CREATED),
        "address_id": "add_0",
        "updated_by": None,
        "version": "v1",
        "tax_registration_id": None,
        "created_by": "api",
        "last_modified_by": None,
    }


def customer_row(customer_id: str, merchant_id: str) -> dict[str, Any]:
    """``Customer`` (v1)."""
    new = customer_new(customer_id, merchant_id)
    return {
        "customer_id": customer_id,
        "merchant_id": merchant_id,
        "name": new["name"],
        "email": new["email"],
        "phone": None,
        "phone_country_code": new["phone_country_code"],
        "description": new["description"],
        "created_at": new["created_at"],
        "metadata": new["metadata"],
        "connector_customer": None,
        "modified_at": new["modified_at"],
        "address_id": new["address_id"],
        "default_payment_method_id": None,
        "updated_by": None,
        "version": "v1",
        "tax_registration_id": None,
        "created_by": "api",
        "last_modified_by": None,
    }


CUSTOMER_UPDATE = {
    "name": None,
    "email": enc("ada@lovelace.dev"),
    "phone": enc("5550199"),
    "description": "Renamed",
    "phone_country_code": None,
    "metadata": {"tier": "platinum"},
    "modified_at": readable(UPDATED),
    "connector_customer": {"stripe": "cus_S1"},
    "address_id": None,
    # Option<Option<String>>: Some(Some(x)) is "x"; None and Some(None) are both null
    "default_payment_method_id": "pm_0",
    "updated_by": "redis_kv",
    "tax_registration_id": enc("GB123"),
    "last_modified_by": "dashboard",
}
CUSTOMER_CHANGES = {
    "email": b"ada@lovelace.dev",
    "phone": b"5550199",
    "description": "Renamed",
    "metadata": {"tier": "platinum"},
    "modified_at": UPDATED,
    "connector_customer": {"stripe": "cus_S1"},
    "default_payment_method_id": "pm_0",
    "updated_by": "redis_kv",
    "tax_registration_id": b"GB123",
    "last_modified_by": "dashboard",
}


# --- mandate -----------------------------------------------------------------------


def mandate_new(n: int) -> dict[str, Any]:
    """``MandateNew``; ``created_at: Option`` null is DEFAULT now()."""
    return {
        "mandate_id": f"man_{n}",
        "customer_id": "cus_1",
        "merchant_id": "merchant_1",
        "payment_method_id": "pm_0",
        "mandate_status": "pending",
        "mandate_type": "multi_use",
        "customer_accepted_at": readable(ACCEPTED),
        "customer_ip_address": "203.0.113.7",
        "customer_user_agent": "Mozilla/5.0",
        "network_transaction_id": None,
        "previous_attempt_id": None,
        "created_at": None,
        "mandate_amount": 5000,
        "mandate_currency": "EUR",
        "amount_captured": None,
        "connector": "stripe",
        "connector_mandate_id": None,
        "start_date": readable(CREATED),
        "end_date": None,
        "metadata": {"plan": "monthly"},
        "connector_mandate_ids": None,
        "original_payment_id": "pay_0",
        "merchant_connector_id": "mca_1",
        "updated_by": "redis_kv",
        "customer_user_agent_extended": None,
    }


def mandate_row(n: int) -> dict[str, Any]:
    """``Mandate`` (``created_at`` as the router's ``From<&MandateNew>`` fills it)."""
    return {**mandate_new(n), "created_at": readable(CREATED)}


MANDATE_UPDATE = {
    "mandate_status": "active",
    "amount_captured": 1200,
    "connector_mandate_ids": {"connector_mandate_id": "cm_1"},
    "connector_mandate_id": None,
    "payment_method_id": "pm_9",
    "original_payment_id": None,
    "updated_by": "kv_router",
}
MANDATE_CHANGES = {
    "mandate_status": "active",
    "amount_captured": 1200,
    "connector_mandate_ids": {"connector_mandate_id": "cm_1"},
    "payment_method_id": "pm_9",
    "updated_by": "kv_router",
}


# --- payment_methods ---------------------------------------------------------------


def payment_method_new(n: int) -> dict[str, Any]:
    """``PaymentMethodNew`` (v1)."""
    return {
        "customer_id": "cus_1",
        "merchant_id": "merchant_1",
        "payment_method_id": f"pm_{n}",
        "payment_method": "card",
        "payment_method_type": "credit",
        "payment_method_issuer": "HDFC",
        "payment_method_issuer_code": "jp_hdfc",
        "accepted_currency": ["USD", "EUR"],
        "scheme": "Visa",
        "token": None,
        "cardholder_name": "Ada Lovelace",
        "issuer_name": None,
        "issuer_country": "IN",
        "payer_country": ["IN", "GB"],
        "is_stored": True,
        "swift_code": None,
        "direct_debit_token": None,
        "created_at": readable(CREATED),
        "last_modified": readable(CREATED),
        "metadata": {"nick": "work card"},
        "payment_method_data": enc(f"card {n}"),
        "locker_id": None,
        "last_used_at": readable(CREATED),
        "connector_mandate_details": None,
        "customer_acceptance": {"acceptance_type": "online"},
        "status": "active",
        "network_transaction_id": None,
        "client_secret": f"pm_{n}_secret",
        "payment_method_billing_address": enc("billing"),
        "updated_by": "redis_kv",
        "version": "v1",
        "network_token_requestor_reference_id": None,
        "network_token_locker_id": None,
        "network_token_payment_method_data": None,
        "external_vault_source": None,
        "vault_type": "internal",
        "created_by": None,
        "last_modified_by": None,
    }


def payment_method_row(n: int) -> dict[str, Any]:
    """``PaymentMethod`` (v1)."""
    new = payment_method_new(n)
    order = (
        "customer_id", "merchant_id", "payment_method_id", "accepted_currency", "scheme",
        "token", "cardholder_name", "issuer_name", "issuer_country", "payer_country",
        "is_stored", "swift_code", "direct_debit_token", "created_at", "last_modified",
        "payment_method", "payment_method_type", "payment_method_issuer",
        "payment_method_issuer_code", "metadata", "payment_method_data", "locker_id",
        "last_used_at", "connector_mandate_details", "customer_acceptance", "status",
        "network_transaction_id", "client_secret", "payment_method_billing_address",
        "updated_by", "version", "network_token_requestor_reference_id",
        "network_token_locker_id", "network_token_payment_method_data",
        "external_vault_source", "vault_type", "created_by", "last_modified_by",
    )  # fmt: skip
    return {name: new[name] for name in order}


PAYMENT_METHOD_UPDATE = {
    "metadata": {"nick": "old card"},
    "payment_method_data": None,
    "last_used_at": readable(UPDATED),
    "network_transaction_id": "ntid_1",
    "status": "inactive",
    "locker_id": "locker_1",
    "network_token_requestor_reference_id": None,
    "payment_method": None,
    "connector_mandate_details": {"mca_1": {"connector_mandate_id": "cm_1"}},
    "updated_by": "kv_router",
    "payment_method_type": "debit",
    "payment_method_issuer": None,
    "last_modified": readable(UPDATED),
    "network_token_locker_id": None,
    "network_token_payment_method_data": enc("nt data"),
    "scheme": None,
    "last_modified_by": "api",
}
PAYMENT_METHOD_CHANGES = {
    "metadata": {"nick": "old card"},
    "last_used_at": UPDATED,
    "network_transaction_id": "ntid_1",
    "status": "inactive",
    "locker_id": "locker_1",
    "connector_mandate_details": {"mca_1": {"connector_mandate_id": "cm_1"}},
    "updated_by": "kv_router",
    "payment_method_type": "debit",
    "last_modified": UPDATED,
    "network_token_payment_method_data": b"nt data",
    "last_modified_by": "api",
}

REVERSE_LOOKUP_NEW = {
    "lookup_id": "pa_conn_trans_merchant_1_txn_1",
    "pk_id": "mid_merchant_1_pid_pay_1",
    "sk_id": "pa_pay_1_1",
    "source": "payment_attempt",
    "updated_by": "redis_kv",
}


def stored_form(value: Any) -> Any:
    """A wire value as the row reads back: ``Encryption`` as bytes, timestamps parsed."""
    if isinstance(value, dict) and list(value) == ["inner"]:
        return bytes(value["inner"])
    if isinstance(value, str) and len(value) > 19 and value[10] == " " and value[4] == "-":
        return dt.datetime.fromisoformat(value)
    return value


def assert_stored(row: dict[str, Any], sent: dict[str, Any], **expected: Any) -> None:
    """Every sent field is stored as sent (``expected`` overrides, for DEFAULTs)."""
    for name, value in sent.items():
        want = expected[name] if name in expected else stored_form(value)
        assert row[name] == want, (name, row[name], want)


#: table -> (tag, global_id, insert, orig, update, update tag, expected changes, key)
CASES: dict[str, tuple[Any, ...]] = {
    "address": (
        "address", "add_0", address_new(0), address_row(0), ADDRESS_UPDATE, "address_update",
        ADDRESS_CHANGES, {"address_id": "add_0"},
    ),
    "mandate": (
        "mandate", "man_0", mandate_new(0), mandate_row(0), MANDATE_UPDATE, "mandate_update",
        MANDATE_CHANGES, {"mandate_id": "man_0"},
    ),
    "payment_methods": (
        "payment_method", "pm_0", payment_method_new(0), payment_method_row(0),
        PAYMENT_METHOD_UPDATE, "payment_method_update", PAYMENT_METHOD_CHANGES,
        {"payment_method_id": "pm_0"},
    ),
    "customers": (
        "customer", "cus_1", customer_new("cus_1", "merchant_a"),
        customer_row("cus_1", "merchant_a"), CUSTOMER_UPDATE, "customer_update",
        CUSTOMER_CHANGES, {"customer_id": "cus_1", "merchant_id": "merchant_a"},
    ),
}  # fmt: skip


async def test_inserts_store_every_field_and_null_is_the_column_default(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    for tag, global_id, new, *_rest in CASES.values():
        hs.insert(global_id, tag, new)
    hs.insert("mid_merchant_1_pid_pay_1", "reverse_lookup", REVERSE_LOOKUP_NEW)
    # the rest of diesel's DEFAULT rule: Option fields whose column has a default
    defaults = {**payment_method_new(1), "locker_id": None, "network_transaction_id": None}
    hs.insert("pm_1", "payment_method", defaults)
    started = utcnow()
    await hs.drain()
    ended = utcnow()
    assert await hs.dead_reasons() == []
    assert await hs.streams_empty()
    for table, (_tag, _gid, new, *_rest, key) in CASES.items():
        row = await hs.row(table, **key)
        if table == "mandate":
            # created_at: None -> DEFAULT (now())::timestamp, the database's clock
            assert_stamped(row["created_at"], started, ended)
            assert_stored(row, new, created_at=row["created_at"], connector_mandate_id=None)
        else:
            assert_stored(row, new)
    customer = await hs.row("customers", customer_id="cus_1", merchant_id="merchant_a")
    assert customer["default_payment_method_id"] is None  # no CustomerNew field
    assert customer["updated_by"] is None  # Option, no DEFAULT in the schema
    assert customer["document_details"] is None and customer["id"] is None
    lookup = await hs.row("reverse_lookup", lookup_id=REVERSE_LOOKUP_NEW["lookup_id"])
    assert lookup == REVERSE_LOOKUP_NEW
    pm = await hs.row("payment_methods", payment_method_id="pm_1")
    assert pm["locker_id"] is None and pm["network_transaction_id"] is None
    assert pm["accepted_currency"] == ["USD", "EUR"] and pm["payer_country"] == ["IN", "GB"]


async def test_updates_write_exactly_the_non_null_fields(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    """A full ``*UpdateInternal``: the non-null fields change, nulls leave their columns,
    ``modified_at`` / ``last_modified`` are the router's values (no apply-time stamp)."""
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    for tag, global_id, new, *_rest in CASES.values():
        hs.insert(global_id, tag, new)
    await hs.drain()
    before = {table: await hs.row(table, **case[-1]) for table, case in CASES.items()}
    started = utcnow()
    for _tag, global_id, _new, orig, update, update_tag, *_rest in CASES.values():
        hs.update(global_id, update_tag, orig, update)
    await hs.drain()
    ended = utcnow()
    assert await hs.dead_reasons() == []
    assert await hs.streams_empty()
    for table, (*_head, changes, key) in CASES.items():
        after = await hs.row(table, **key)
        assert_only_changed(before[table], after, changes, stamps=(), window=(started, ended))


async def test_customer_update_finds_its_row_by_customer_id_and_merchant_id(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    """customers' key is (customer_id, merchant_id): two merchants may each have a
    ``cus_1``; an update of merchant A's leaves merchant B's as it was."""
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    for merchant in ("merchant_a", "merchant_b"):
        hs.insert("cus_1", "customer", customer_new("cus_1", merchant))
    await hs.drain()
    before = {
        m: await hs.row("customers", customer_id="cus_1", merchant_id=f"merchant_{m}") for m in "ab"
    }
    hs.update("cus_1", "customer_update", customer_row("cus_1", "merchant_a"), CUSTOMER_UPDATE)
    await hs.drain()
    assert await hs.dead_reasons() == []
    a = await hs.row("customers", customer_id="cus_1", merchant_id="merchant_a")
    b = await hs.row("customers", customer_id="cus_1", merchant_id="merchant_b")
    assert_only_changed(before["a"], a, CUSTOMER_CHANGES, stamps=(), window=(UPDATED, UPDATED))
    assert b == before["b"]


async def test_flat_update_with_an_unknown_column_is_dead_lettered(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    hs.insert("add_0", "address", address_new(0))
    hs.update("add_0", "address_update", address_row(0), {**ADDRESS_UPDATE, "colour": "red"})
    await hs.drain()
    (reason,) = await hs.dead_reasons()
    assert "address" in reason and "'colour'" in reason, reason
    row = await hs.row("address", address_id="add_0")
    assert row["city"] == "Bangalore"  # nothing of the bad update applied
    assert await hs.streams_empty()


# --- rules of db/dialects/hyperswitch/flat.py -----------------------------------------


def test_every_struct_field_is_a_column_of_its_table() -> None:
    """No serde rename or diesel column_name in these structs: fields are columns."""
    schema = {
        "address": address_new(0),
        "customers": customer_row("c", "m"),
        "mandate": mandate_row(0),
        "payment_methods": payment_method_row(0),
        "reverse_lookup": REVERSE_LOOKUP_NEW,
    }
    for table, struct in {**FLAT_INSERTS, **FLAT_UPDATES}.items():
        assert struct.columns() <= set(schema[table]), (table, struct.name)
    assert FLAT_INSERTS["address"].fields == set(address_new(0))
    assert FLAT_INSERTS["customers"].fields == set(customer_new("c", "m"))
    assert FLAT_INSERTS["mandate"].fields == set(mandate_new(0))
    assert FLAT_INSERTS["payment_methods"].fields == set(payment_method_new(0))
    assert FLAT_UPDATES["address"].fields == set(ADDRESS_UPDATE)
    assert FLAT_UPDATES["customers"].fields == set(CUSTOMER_UPDATE)
    assert FLAT_UPDATES["mandate"].fields == set(MANDATE_UPDATE)
    assert FLAT_UPDATES["payment_methods"].fields == set(PAYMENT_METHOD_UPDATE)


def test_flat_changeset_drops_nulls_and_insert_row_keeps_them() -> None:
    changes = FLAT_UPDATES["address"].changeset(ADDRESS_UPDATE)
    assert changes == {k: v for k, v in ADDRESS_UPDATE.items() if v is not None}
    row = FLAT_INSERTS["mandate"].row(mandate_new(0))
    assert row == mandate_new(0)


@pytest.mark.parametrize(
    ("table", "update_data", "message"),
    [
        (
            "address",
            {**ADDRESS_UPDATE, "modified_at": None},
            "AddressUpdateInternal: field 'modified_at' must not be null",
        ),
        (
            "address",
            {k: v for k, v in ADDRESS_UPDATE.items() if k != "updated_by"},
            "AddressUpdateInternal: missing field 'updated_by'",
        ),
        (
            "customers",
            {**CUSTOMER_UPDATE, "merchant_id": "merchant_b"},
            "CustomerUpdateInternal: unknown field 'merchant_id'",
        ),
        (
            "customers",
            {**CUSTOMER_UPDATE, "description": "   "},
            "CustomerUpdateInternal.description: the minimum required length for this field is 1",
        ),
        (
            "payment_methods",
            {**PAYMENT_METHOD_UPDATE, "last_modified": None},
            "PaymentMethodUpdateInternal: field 'last_modified' must not be null",
        ),
    ],
)
def test_flat_rules_rust_applies_beyond_the_generic_path(
    table: str, update_data: dict[str, Any], message: str
) -> None:
    with pytest.raises(MalformedOperation) as caught:
        FLAT_UPDATES[table].changeset(update_data)
    assert str(caught.value) == message


def test_id_and_description_deserialize_trimmed_and_checked() -> None:
    assert reference_id("  cus_1-a ") == "cus_1-a"
    assert description(" Renamed\u3000") == "Renamed"
    assert description("\x1fx") == "\x1fx"  # Rust's trim keeps U+001F
    bad_ids = {
        "cus 1": "invalid character ` `",
        "": "minimum required length",
        "c" * 65: "maximum allowed length for this field is 64",
        "cüs": "invalid character `ü`",
        7: "expected a string",
    }
    for bad, why in bad_ids.items():
        with pytest.raises(ValueError, match=why):
            reference_id(bad)
    with pytest.raises(ValueError, match="maximum allowed length for this field is 255"):
        description("é" * 128)  # 256 bytes, though 128 characters fit varchar(255)
    row = FLAT_INSERTS["customers"].row({**customer_new(" cus_1 ", "merchant_a")})
    assert row["customer_id"] == "cus_1"


# --- the same rules through the drainer -------------------------------------------------


@pytest.mark.parametrize(
    ("update_data", "reason"),
    [
        ({**CUSTOMER_UPDATE, "modified_at": None}, "must not be null"),
        ({**CUSTOMER_UPDATE, "merchant_id": "merchant_b"}, "unknown field 'merchant_id'"),
        ({**CUSTOMER_UPDATE, "description": "  "}, "minimum required length"),
    ],
)
async def test_drainer_applies_the_flat_struct_rules(
    tmp_path: Path,
    hyperswitch_dsn: str,
    redis_prefix: str,
    update_data: dict[str, Any],
    reason: str,
) -> None:
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    hs.insert("cus_1", "customer", customer_new("cus_1", "merchant_a"))
    hs.update("cus_1", "customer_update", customer_row("cus_1", "merchant_a"), update_data)
    await hs.drain()
    (dead,) = await hs.dead_reasons()
    assert dead.startswith("customers: CustomerUpdateInternal") and reason in dead, dead
    row = await hs.row("customers", customer_id="cus_1", merchant_id="merchant_a")
    assert row["merchant_id"] == "merchant_a" and row["description"] == "First customer"


async def test_drainer_applies_the_flat_insert_rules(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    """A ``*New`` missing a required field, with a null one, or with a field it lacks is
    dead-lettered; an id is stored as serde leaves it (trimmed)."""
    hs = HyperswitchDrain(hyperswitch_dsn, redis_prefix, tmp_path)
    partial = {k: v for k, v in address_new(1).items() if k != "updated_by"}
    hs.insert("add_1", "address", partial)
    hs.insert("add_2", "address", {**address_new(2), "created_at": None})
    hs.insert("lk", "reverse_look_up", {**REVERSE_LOOKUP_NEW, "created_at": readable(CREATED)})
    hs.insert("cus_2", "customer", customer_new(" cus_2\u3000", "merchant_a"))
    await hs.drain()
    assert sorted(await hs.dead_reasons()) == [
        "address: AddressNew: field 'created_at' must not be null",
        "address: AddressNew: missing field 'updated_by'",
        "reverse_lookup: ReverseLookupNew: unknown field 'created_at'",
    ]
    assert await hs.streams_empty()
    row = await hs.row("customers", customer_id="cus_2", merchant_id="merchant_a")
    assert row["description"] == "First customer"
