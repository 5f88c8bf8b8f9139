"""Payment lives as Hyperswitch's router writes them, and the rows they must leave.

The per-table builders (``test_payment_intent``, ``test_payment_attempt``,
``test_refund``, ``test_flat_tables``) give each struct field by field; this module
strings them into lives and keeps, per row, two copies: the row as the router holds it
(wire form, sent as the next update's ``orig``, as ``apply_changeset`` leaves it) and
the row as PostgreSQL must hold it after the drain (read-back form).

Partition keys are the router's (``crates/storage_impl/src/redis/kv_store.rs``,
``PartitionKey``'s ``Display``): ``mid_<m>_pid_<p>`` for the payment's intent,
attempt, address and refund; ``mid_<m>_cust_<c>`` for a customer
(``storage_impl/src/customers.rs``); ``reverse_lookup_<lookup_id>`` for a reverse
lookup (``storage_impl/src/lookup.rs``). ``push_to_drainer_stream``
(``kv_router_store.rs``) sends the entry to ``shard_<crc32(key) % num_partitions>``
with the key as ``global_id``.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tests.hyperswitch import test_flat_tables as flat
from tests.hyperswitch import test_payment_attempt as pa
from tests.hyperswitch import test_payment_intent as pi
from tests.hyperswitch import test_refund as rf
from tests.support.hyperswitch import encryption, entry_fields, timestamp
from tests.support.hyperswitch import typed_sql_insert as insert_sql
from tests.support.hyperswitch import typed_sql_update as update_sql

#: The drainer config's ``[drainer]`` values (tests/fixtures/hyperswitch_drainer.toml).
PARTITIONS = 32
STREAM_NAME = "drainer_stream"
#: The router's clock when ``apply_changeset`` stamps its copy's ``modified_at``.
ROUTER_NOW = dt.datetime(2026, 6, 1, 10, 5, 0, 250000)

#: The update's WHERE columns per table (``src/query/*.rs``); the ledger's row keys.
KEYS = {
    "payment_intent": ("payment_id", "merchant_id"),
    "payment_attempt": ("attempt_id", "merchant_id"),
    "refund": ("refund_id", "merchant_id"),
    "address": ("address_id",),
    "customers": ("customer_id", "merchant_id"),
    "reverse_lookup": ("lookup_id",),
}

_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_HUMAN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{1,9}")


def human(value: dt.datetime) -> str:
    """``time``'s own (human-readable) serde of a ``PrimitiveDateTime``."""
    fraction = f"{value.microsecond * 1000:09d}".rstrip("0") or "0"
    return value.strftime("%Y-%m-%d %H:%M:%S.") + fraction


#: ``PrimitiveDateTime`` columns of the row structs and their serde: ``iso8601`` where
#: the struct says ``custom_serde::iso8601``, else ``time``'s own.
TIME_FORMATS: dict[str, dict[str, Callable[[dt.datetime], str]]] = {
    "payment_intent": {
        **dict.fromkeys(("created_at", "modified_at", "last_synced"), timestamp),
        "session_expiry": human,  # PaymentIntent.session_expiry: no serde attribute
        "order_date": human,
    },
    "payment_attempt": {
        **dict.fromkeys(("created_at", "modified_at", "last_synced", "capture_on"), timestamp),
        "extended_authorization_last_applied_at": timestamp,
        "capture_before": human,
    },
    "refund": dict.fromkeys(("created_at", "modified_at"), timestamp),
    "address": dict.fromkeys(("created_at", "modified_at"), human),
    "customers": dict.fromkeys(("created_at", "modified_at"), human),
}
#: ``ConnectorTransactionId`` fields of the row structs (``{"TxnId": ...}`` on the wire).
TXN_ID_FIELDS = {
    "payment_attempt": {"connector_transaction_id"},
    "refund": {"connector_transaction_id", "connector_refund_id"},
}


def stored(value: Any) -> Any:
    """A wire value as its column reads back: ``Encryption`` as bytes,
    ``ConnectorTransactionId`` as its string, timestamps as naive datetimes."""
    if isinstance(value, dict):
        if list(value) == ["inner"]:
            return bytes(value["inner"])
        if list(value) in (["TxnId"], ["HashedData"]):
            return next(iter(value.values()))
    if isinstance(value, str) and (_ISO.fullmatch(value) or _HUMAN.fullmatch(value)):
        return dt.datetime.fromisoformat(value.removesuffix("Z"))
    return value


def wire(table: str, column: str, value: Any) -> Any:
    """A read-back value in the row struct's serde form (for the next ``orig``)."""
    if isinstance(value, bytes):
        return encryption(value)
    if isinstance(value, dt.datetime):
        return TIME_FORMATS[table][column](value)
    if isinstance(value, str) and column in TXN_ID_FIELDS.get(table, ()):
        return {"TxnId": value}
    return value


def shard_stream(prefix: str, global_id: str) -> str:
    """``<prefix>:{shard_N}_<stream_name>``, N = crc32 of the partition key."""
    return f"{prefix}:{{shard_{zlib.crc32(global_id.encode()) % PARTITIONS}}}_{STREAM_NAME}"


def copied_variant(
    variants: Mapping[str, tuple[dict[str, Any], dict[str, Any]]],
    name: str,
    **overrides: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A per-table test's variant fixture with some fields changed. Only fields the
    fixture shows copied as is to their column may be overridden (refused otherwise,
    so no rule is guessed here); a ``None`` override is for an ``Option`` field the
    From impl copies, whose null leaves the column alone."""
    data, expected = variants[name][0], dict(variants[name][1])
    # some fixtures hold the whole update_data ({"Update": {...}}), some its fields
    fields = dict(data[name] if list(data) == [name] else data)
    for field, value in overrides.items():
        if field not in expected or stored(fields[field]) != expected[field]:
            raise ValueError(f"{name}.{field} is not a copied field of the fixture")
        fields[field] = value
        if value is None:
            del expected[field]
        else:
            expected[field] = stored(value)
    return fields, expected


def net_amount(changes: Mapping[str, Any], orig: Mapping[str, Any]) -> int:
    """``PaymentAttemptUpdateInternal::populate_derived_fields``: the update's amount
    else ``orig``'s, plus surcharge, tax, shipping and order tax, each the update's
    else ``orig``'s else 0."""
    total = changes["amount"] if changes.get("amount") is not None else orig["amount"]
    for term in ("surcharge_amount", "tax_amount", "shipping_cost", "order_tax_amount"):
        value = changes.get(term)
        total += (value if value is not None else orig.get(term)) or 0
    return int(total)


class Ledger:
    """The entries of every life, in write order, and the rows they must leave."""

    def __init__(self, defaults: Mapping[str, Mapping[str, Any]]) -> None:
        #: table -> column -> what PostgreSQL stores for an insert's null (DEFAULT)
        self.defaults = defaults
        self.entries: list[tuple[str, dict[str, str]]] = []
        #: (table, key) -> expected row (read-back form), struct fields only
        self.rows: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}
        #: (table, key) -> the row as the router holds it (wire form)
        self.origs: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}
        #: rows whose ``modified_at`` the drainer stamps (tagged-union updates)
        self.stamped: set[tuple[str, tuple[Any, ...]]] = set()

    @staticmethod
    def key(table: str, row: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        return table, tuple(row[column] for column in KEYS[table])

    def insert(
        self, global_id: str, tag: str, table: str, new: dict[str, Any], row: dict[str, Any]
    ) -> None:
        """Queue ``*New`` (``new``); ``row`` is the row struct the router builds from it."""
        self.entries.append((global_id, entry_fields(global_id, insert_sql(tag, new))))
        expected = {name: None for name in row}
        for name, value in new.items():
            expected[name] = stored(value)
            if value is None:
                expected[name] = self.defaults.get(table, {}).get(name)
        key = self.key(table, new)
        assert key not in self.rows, key
        self.rows[key] = expected
        self.origs[key] = dict(row)

    def orig(self, table: str, **key: Any) -> dict[str, Any]:
        """The row as the router holds it now."""
        return self.origs[table, tuple(key[column] for column in KEYS[table])]

    def update(
        self,
        global_id: str,
        tag: str,
        table: str,
        orig: dict[str, Any],
        update_data: Any,
        changes: Mapping[str, Any],
        *,
        stamped: bool,
        held: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue an update with ``orig`` as sent; ``changes`` are the columns it sets
        (read-back form); ``held`` the router's copy after it (default: ``orig`` with
        ``changes`` and, if ``stamped``, ``modified_at`` = the router's clock)."""
        key = self.key(table, orig)
        assert orig == self.origs[key], f"{key}: orig is not the row as the router holds it"
        typed_sql = update_sql(tag, orig, update_data)
        self.entries.append((global_id, entry_fields(global_id, typed_sql)))
        self.rows[key].update(changes)
        if stamped:
            self.stamped.add(key)
        if held is None:
            held = {**orig, **{c: wire(table, c, v) for c, v in changes.items()}}
            if stamped:
                held["modified_at"] = wire(table, "modified_at", ROUTER_NOW)
        self.origs[key] = dict(held)

    def count(self, table: str) -> int:
        return sum(1 for t, _key in self.rows if t == table)


# --- the lives -----------------------------------------------------------------------

MERCHANTS = ("merchant_a", "merchant_b", "merchant_c")
PAYMENTS_PER_MERCHANT = 10  # pay_0 .. pay_9 under every merchant
CUSTOMERS_PER_MERCHANT = 4  # cus_0 .. cus_3 under every merchant
#: merchant_b's lives write no CustomerUpdate: its cus_k must stay as inserted while
#: merchant_a's (and merchant_c's) cus_k change.
CUSTOMER_UPDATERS = ("merchant_a", "merchant_c")
CUSTOMER_UPDATED = dt.datetime(2026, 6, 2, 11, 30, 0, 500000)


def payment_key(merchant: str, n: int) -> str:
    """``PartitionKey::MerchantIdPaymentId``."""
    return f"mid_{merchant}_pid_pay_{n}"


def customer_key(merchant: str, customer_id: str) -> str:
    """``PartitionKey::MerchantIdCustomerId``."""
    return f"mid_{merchant}_cust_{customer_id}"


def lookup(ledger: Ledger, lookup_id: str, pk_id: str, sk_id: str, source: str) -> None:
    """``insert_reverse_lookup`` (storage_impl/src/lookup.rs): ``ReverseLookupNew``
    under ``PartitionKey::CombinationKey { "reverse_lookup_<lookup_id>" }``."""
    new = {
        "lookup_id": lookup_id,
        "pk_id": pk_id,
        "sk_id": sk_id,
        "source": source,
        "updated_by": "redis_kv",
    }
    row = {name: new[name] for name in ("lookup_id", "sk_id", "pk_id", "source", "updated_by")}
    ledger.insert(f"reverse_lookup_{lookup_id}", "reverse_look_up", "reverse_lookup", new, row)


def customer_changeset(orig: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``CustomerUpdateInternal::apply_changeset`` (v1): the router's copy after the
    update: each ``Some`` replaces, ``default_payment_method_id`` flattened,
    ``modified_at`` the router's clock, ``updated_by`` kept from the source."""
    held = dict(orig)
    for name in (
        "name", "email", "phone", "description", "phone_country_code", "metadata",
        "connector_customer", "address_id", "default_payment_method_id",
        "tax_registration_id", "last_modified_by",
    ):  # fmt: skip
        if update[name] is not None:
            held[name] = update[name]
    held["modified_at"] = human(ROUTER_NOW)
    return held


def _attempt_update(
    ledger: Ledger, global_id: str, key: Mapping[str, Any], name: str, **overrides: Any
) -> None:
    """A ``PaymentAttemptUpdate``, ``net_amount`` recomputed from the ``orig`` sent."""
    fields, changes = copied_variant(pa.VARIANTS, name, **overrides)
    orig = ledger.orig("payment_attempt", **key)
    changes["net_amount"] = net_amount(changes, orig)
    update = {name: fields}
    ledger.update(global_id, pa.UPDATE_TAG, "payment_attempt", orig, update, changes, stamped=True)


def _tagged_update(
    ledger: Ledger,
    global_id: str,
    table: str,
    key: Mapping[str, Any],
    variants: Mapping[str, tuple[dict[str, Any], dict[str, Any]]],
    name: str,
    **overrides: Any,
) -> None:
    fields, changes = copied_variant(variants, name, **overrides)
    orig = ledger.orig(table, **key)
    ledger.update(global_id, f"{table}_update", table, orig, {name: fields}, changes, stamped=True)


def life(ledger: Ledger, merchant: str, n: int, idx: int) -> Iterator[None]:
    """One payment's entries, a step per ``next``; ``idx`` varies the amounts."""
    gid, payment_id = payment_key(merchant, n), f"pay_{n}"
    customer_id, address_id = f"cus_{n % CUSTOMERS_PER_MERCHANT}", f"add_{merchant}_{n}"
    intent_key = {"payment_id": payment_id, "merchant_id": merchant}
    # payment create (payments/operations/payment_create.rs): the customer if new
    # (storage_impl/src/customers.rs insert_customer), the billing address
    # (router/src/db/address.rs insert_address_for_payments), the intent, the attempt
    if n < CUSTOMERS_PER_MERCHANT:
        # CustomerNew::update_storage_scheme sets updated_by; From<CustomerNew> for Customer
        by = {"updated_by": "redis_kv"}
        new_customer = {**flat.customer_new(customer_id, merchant), **by}
        row = {**flat.customer_row(customer_id, merchant), **by}
        ledger.insert(
            customer_key(merchant, customer_id), "customer", "customers", new_customer, row
        )
        yield
    ids = {"address_id": address_id, "customer_id": customer_id, "merchant_id": merchant}
    ids["payment_id"] = payment_id
    new_address, address_row = {**flat.address_new(n), **ids}, {**flat.address_row(n), **ids}
    ledger.insert(gid, "address", "address", new_address, address_row)
    yield
    ids = {"customer_id": customer_id, "billing_address_id": address_id}
    intent_new, intent_row = (
        {**pi.intent_new(n, merchant), **ids},
        {**pi.intent_row(n, merchant), **ids},
    )
    ledger.insert(gid, "payment_intent", "payment_intent", intent_new, intent_row)
    yield
    # insert_payment_attempt (storage_impl/src/payments/payment_attempt.rs): the
    # reverse lookup first, then the attempt; to_storage_model writes net_amount as
    # NetAmount::get_total_amount
    attempt_new = pa.attempt_new(n, merchant)
    attempt_new["net_amount"] = net_amount({}, attempt_new)
    attempt_id = attempt_new["attempt_id"]
    attempt_key = {"attempt_id": attempt_id, "merchant_id": merchant}
    lookup(ledger, f"pa_{merchant}_{attempt_id}", gid, f"pa_{attempt_id}", "payment_attempt")
    ledger.insert(
        gid, "payment_attempt", "payment_attempt", attempt_new, pa.attempt_row(attempt_new)
    )
    yield
    # payment_confirm.rs update_trackers: ConfirmUpdate (amount the order amount,
    # shipping_cost the intent's, no error: error_code None) and
    # PaymentIntentUpdate::Update (fingerprint_id, request_external_three_ds_authentication
    # and merchant_order_reference_id None)
    _attempt_update(
        ledger, gid, attempt_key, "ConfirmUpdate",
        amount=intent_new["amount"], currency="USD", status="pending", error_code=None,
        surcharge_amount=150 + idx, tax_amount=15 + idx, shipping_cost=intent_new["shipping_cost"],
        order_tax_amount=attempt_new["order_tax_amount"], updated_by="redis_kv",
    )  # fmt: skip
    yield
    _tagged_update(
        ledger, gid, "payment_intent", intent_key, pi.VARIANTS, "Update",
        amount=intent_new["amount"], currency="USD", status="processing", customer_id=customer_id,
        billing_address_id=address_id, fingerprint_id=None,
        request_external_three_ds_authentication=None, merchant_order_reference_id=None,
        updated_by="redis_kv",
    )  # fmt: skip
    yield
    # payment_response.rs: the authorization's ResponseUpdate on both; the attempt's new
    # connector transaction id gets its reverse lookup first
    # (update_payment_attempt_with_attempt_id, add_connector_txn_id_to_reverse_lookup)
    txn = f"pi_{merchant}_{n}"
    lookup(ledger, f"pa_conn_trans_{merchant}_{txn}", gid, f"pa_{attempt_id}", "payment_attempt")
    _attempt_update(
        ledger, gid, attempt_key, "ResponseUpdate",
        status="authorized", connector_transaction_id=txn, amount_capturable=6540,
        updated_by="redis_kv",
    )  # fmt: skip
    yield
    _tagged_update(
        ledger, gid, "payment_intent", intent_key, pi.VARIANTS, "ResponseUpdate",
        status="requires_capture", amount_captured=None, updated_by="redis_kv",
    )  # fmt: skip
    yield
    # payment_capture.rs update_trackers, then the capture's ResponseUpdate on both (the
    # transaction id unchanged: no new reverse lookup)
    captured = intent_new["amount"] - idx
    _attempt_update(
        ledger, gid, attempt_key, "CaptureUpdate",
        amount_to_capture=captured, multiple_capture_count=1, updated_by="redis_kv",
    )  # fmt: skip
    yield
    _attempt_update(
        ledger, gid, attempt_key, "ResponseUpdate",
        status="charged", connector_transaction_id=txn, amount_capturable=0, updated_by="redis_kv",
    )  # fmt: skip
    yield
    _tagged_update(
        ledger, gid, "payment_intent", intent_key, pi.VARIANTS, "ResponseUpdate",
        status="succeeded", amount_captured=captured, updated_by="redis_kv",
    )  # fmt: skip
    yield
    # router/src/db/refund.rs insert_refund: two reverse lookups (no connector refund
    # id yet), then the refund; update_refund: RefundUpdate::Update
    of_refund: dict[str, Any] = {"merchant_id": merchant, "refund_amount": 1000 + idx}
    of_refund["connector_transaction_id"] = {"TxnId": txn}
    refund_new = {**rf.refund_new(n), **of_refund}
    refund_row = {**rf.refund_row(n), **of_refund}
    refund_id, sk_id = refund_new["refund_id"], f"pa_{attempt_id}_ref_{refund_new['refund_id']}"
    lookup(ledger, f"ref_ref_id_{merchant}_{refund_id}", gid, sk_id, "refund")
    internal = refund_new["internal_reference_id"]
    lookup(ledger, f"ref_inter_ref_{merchant}_{internal}", gid, sk_id, "refund")
    ledger.insert(gid, "refund", "refund", refund_new, refund_row)
    yield
    _tagged_update(
        ledger, gid, "refund", {"refund_id": refund_id, "merchant_id": merchant}, rf.VARIANTS,
        "Update", connector_refund_id={"TxnId": f"re_{merchant}_{n}"}, refund_arn=f"arn_{idx}",
        updated_by="redis_kv",
    )  # fmt: skip
    yield
    # storage_impl/src/customers.rs update_customer_by_customer_id_merchant_id and
    # router/src/db/address.rs update_address_for_payments: flat *UpdateInternal, the
    # router's modified_at
    when = human(CUSTOMER_UPDATED + dt.timedelta(seconds=idx))
    if merchant in CUSTOMER_UPDATERS:
        update = {**flat.CUSTOMER_UPDATE, "description": f"Renamed {idx}", "modified_at": when}
        orig = ledger.orig("customers", customer_id=customer_id, merchant_id=merchant)
        changes = {name: stored(value) for name, value in update.items() if value is not None}
        held = customer_changeset(orig, update)
        ledger.update(
            customer_key(merchant, customer_id), "customer_update", "customers", orig, update,
            changes, stamped=False, held=held,
        )  # fmt: skip
        yield
    update = {**flat.ADDRESS_UPDATE, "city": f"Berlin {idx}", "modified_at": when}
    orig = ledger.orig("address", address_id=address_id)
    changes = {name: stored(value) for name, value in update.items() if value is not None}
    ledger.update(gid, "address_update", "address", orig, update, changes, stamped=False)


def all_lives(defaults: Mapping[str, Mapping[str, Any]]) -> Ledger:
    """Every payment's life, the steps of different payments interleaved (round robin),
    as concurrent requests would write them; each life's own steps stay in order."""
    ledger = Ledger(defaults)
    pending = [
        life(ledger, merchant, n, idx)
        for idx, (n, merchant) in enumerate(
            (n, m) for n in range(PAYMENTS_PER_MERCHANT) for m in MERCHANTS
        )
    ]
    while pending:
        for steps in list(pending):
            if next(steps, StopIteration) is StopIteration:
                pending.remove(steps)
    return ledger
