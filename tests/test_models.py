"""Table resolution, keys and coercion against Hyperswitch's real schema.

The address fixtures are full ``AddressNew`` / ``AddressUpdateInternal`` structs
(``crates/diesel_models/src/address.rs``, juspay/hyperswitch af406737, v1), as the
router writes them: the dialect's flat-struct rules refuse partial ones.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from drainer.db.dialects import Dialect, FlatStruct, TaggedUnion, Variant
from drainer.db.dialects.hyperswitch import ALIASES as HYPERSWITCH_ALIASES
from drainer.db.dialects.hyperswitch import DIALECT as HYPERSWITCH
from drainer.db.dialects.hyperswitch import KEYS as HYPERSWITCH_KEYS
from drainer.db.errors import (
    CoercionError,
    MalformedOperation,
    MissingKey,
    UnknownColumn,
    UnknownTable,
)
from drainer.db.models import ModelRegistry
from drainer.db.operations import OpKind
from tests import declared_models
from tests.conftest import sqlalchemy_url

INSERT, UPDATE, DELETE = OpKind.INSERT, OpKind.UPDATE, OpKind.DELETE

# Every tag Hyperswitch's router writes to the drainer stream, and its table.
HYPERSWITCH_TAGS: dict[tuple[str, OpKind], str] = {
    ("payment_intent", INSERT): "payment_intent",
    ("payment_intent_update", UPDATE): "payment_intent",
    ("payment_attempt", INSERT): "payment_attempt",
    ("payment_attempt_update", UPDATE): "payment_attempt",
    ("refund", INSERT): "refund",
    ("refund_update", UPDATE): "refund",
    ("address", INSERT): "address",
    ("address_update", UPDATE): "address",
    ("customer", INSERT): "customers",
    ("customer_update", UPDATE): "customers",
    ("customer", DELETE): "customers",
    ("reverse_look_up", INSERT): "reverse_lookup",
    ("payouts", INSERT): "payouts",
    ("payouts_update", UPDATE): "payouts",
    ("payout_attempt", INSERT): "payout_attempt",
    ("payout_attempt_update", UPDATE): "payout_attempt",
    ("payment_method", INSERT): "payment_methods",
    ("payment_method_update", UPDATE): "payment_methods",
    ("payment_method", DELETE): "payment_methods",
    ("mandate", INSERT): "mandate",
    ("mandate_update", UPDATE): "mandate",
}

PRIMARY_KEYS_SQL = """
SELECT c.relname, array_agg(a.attname ORDER BY k.ord)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE i.indisprimary AND n.nspname = 'public'
GROUP BY c.relname
"""


@pytest.fixture
async def hs_engine(hyperswitch_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(hyperswitch_dsn))
    yield engine
    await engine.dispose()


@pytest.fixture
async def hs(hs_engine: AsyncEngine) -> ModelRegistry:
    return await ModelRegistry.reflect(hs_engine)


@pytest.fixture
async def pg_engine(pg_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(pg_dsn))
    yield engine
    await engine.dispose()


async def _execute(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(sa.text(statement))


def test_every_hyperswitch_tag_resolves_without_configuration(hs: ModelRegistry) -> None:
    resolved = {(tag, kind): hs.resolve(tag, kind).name for tag, kind in HYPERSWITCH_TAGS}
    assert resolved == HYPERSWITCH_TAGS
    assert hs.aliases == HYPERSWITCH_ALIASES


async def test_every_table_is_automapped_with_its_primary_key(
    hs: ModelRegistry, hs_engine: AsyncEngine
) -> None:
    async with hs_engine.connect() as conn:
        primary_keys = {
            name: tuple(cols) for name, cols in await conn.execute(sa.text(PRIMARY_KEYS_SQL))
        }
    assert len(hs.tables) == 51
    assert set(hs.tables) == set(primary_keys)
    for name, model in hs.tables.items():
        # updates find rows by the columns Hyperswitch's queries use, else the primary key
        want = HYPERSWITCH_KEYS.get(name, primary_keys[name])
        assert sorted(model.key_columns) == sorted(want), name
        assert model.conflict_columns == primary_keys[name], name
        assert model.model is not None, name
        assert sa.inspect(model.model).local_table is model.table
    assert hs.tables["payment_intent"].key_columns == ("payment_id", "merchant_id")
    assert hs.tables["refund"].key_columns == ("refund_id", "merchant_id")
    assert hs.tables["address"].key_columns == ("address_id",)


def test_update_suffix_is_only_dropped_for_updates(hs: ModelRegistry) -> None:
    assert hs.resolve("address", UPDATE).name == "address"
    for kind in (INSERT, DELETE):
        with pytest.raises(UnknownTable, match="unknown table 'address_update'"):
            hs.resolve("address_update", kind)


def test_unknown_tag_lists_some_known_tables(hs: ModelRegistry) -> None:
    with pytest.raises(UnknownTable) as caught:
        hs.resolve("payment_intnet", INSERT)
    message = str(caught.value)
    assert caught.value.tag == "payment_intnet"
    assert caught.value.error_class == "unknown_table"
    assert "known tables: address, api_keys, authentication" in message
    assert "51 in all" in message
    assert "users" not in message  # truncated


#: ``AddressNew``, every field (``None`` as null). The encrypted fields are bare byte
#: arrays and ``modified_at`` is ``time``'s tuple form: value forms the coercers take
#: besides the router's own ``{"inner": [...]}`` and human-readable timestamps.
ADDRESS_ROW: dict[str, Any] = {
    "address_id": "add_1",
    "city": "Pune",
    "country": "IN",
    "line1": [49, 50, 32, 77, 71],
    "line2": None,
    "line3": None,
    "state": None,
    "zip": [52, 49, 49],
    "first_name": None,
    "last_name": None,
    "phone_number": None,
    "country_code": None,
    "customer_id": None,
    "merchant_id": "merchant_1",
    "payment_id": None,
    "created_at": "2026-01-01 10:00:00.123",
    "modified_at": [2026, 1, 10, 0, 0, 123000000],
    "updated_by": "redis_kv",
    "email": None,
    "origin_zip": None,
}

#: ``AddressUpdateInternal``, every field: a null leaves its column unchanged.
ADDRESS_UPDATE: dict[str, Any] = {
    "city": "Goa",
    "country": None,
    "line1": None,
    "line2": None,
    "line3": None,
    "state": None,
    "zip": {"inner": [52, 48]},
    "first_name": None,
    "last_name": None,
    "phone_number": None,
    "country_code": None,
    "modified_at": "2026-01-02 11:00:00.5",
    "updated_by": "kv_router",
    "email": None,
    "origin_zip": None,
}
NOW = datetime(2026, 6, 1, 12, 0)


async def test_hyperswitch_address_insert_update_delete(
    hs: ModelRegistry, hs_engine: AsyncEngine
) -> None:
    model = hs.resolve("address", INSERT)
    async with AsyncSession(hs_engine) as session, session.begin():
        await session.execute(sa.insert(model.table).values(model.coerce_row(ADDRESS_ROW)))

    update = hs.resolve("address_update", UPDATE)
    orig = {**ADDRESS_ROW, "not_a_column": 1}  # the whole old row; only keys matter
    key = update.key_from(orig)
    assert key == {"address_id": "add_1"}
    changes = update.changes_for(ADDRESS_UPDATE, orig, NOW)
    assert changes == {  # nulls leave their columns (line1) unchanged
        "city": "Goa",
        "zip": b"40",
        "modified_at": datetime(2026, 1, 2, 11, 0, 0, 500000),
        "updated_by": "kv_router",
    }
    where = [update.table.c[name] == value for name, value in key.items()]
    async with AsyncSession(hs_engine) as session, session.begin():
        await session.execute(sa.update(update.table).where(*where).values(changes))
    async with AsyncSession(hs_engine) as session:
        stored = (await session.execute(sa.select(model.table))).mappings().one()
    assert stored["city"] == "Goa"
    assert stored["line1"] == b"12 MG"
    assert stored["zip"] == b"40"
    assert stored["country"] == "IN"
    assert stored["created_at"] == datetime(2026, 1, 1, 10, 0, 0, 123000)
    assert stored["modified_at"] == datetime(2026, 1, 2, 11, 0, 0, 500000)
    assert stored["updated_by"] == "kv_router"

    delete = hs.resolve("address", DELETE)
    async with AsyncSession(hs_engine) as session, session.begin():
        result = await session.execute(
            sa.delete(delete.table).where(*where).returning(delete.table.c.address_id)
        )
        assert result.scalars().all() == ["add_1"]


async def test_hyperswitch_payment_intent_with_jsonb_array_and_enums(
    hs: ModelRegistry, hs_engine: AsyncEngine
) -> None:
    model = hs.resolve("payment_intent", INSERT)
    row = model.coerce_row(
        {
            "payment_id": "pay_1",
            "merchant_id": "merchant_1",
            "status": "requires_payment_method",
            "amount": 6540,
            "currency": "USD",
            "metadata": None,
            "order_details": [{"product_name": "shirt", "quantity": 1}],
            "connector_metadata": {"apple_pay": None},
            "created_at": "2026-01-01T10:00:00Z",
            "modified_at": "2026-01-01T10:00:00Z",
            "attempt_count": 1,
        }
    )
    async with AsyncSession(hs_engine) as session, session.begin():
        await session.execute(sa.insert(model.table).values(row))
    async with AsyncSession(hs_engine) as session:
        stored = (
            await session.execute(
                sa.text(
                    "SELECT status::text, amount, jsonb_typeof(order_details[1]),"
                    " order_details[1] ->> 'product_name', connector_metadata,"
                    " metadata IS NULL FROM payment_intent"
                )
            )
        ).one()
    # The jsonb[] element is a JSON object, not a string holding JSON text.
    assert tuple(stored) == (
        "requires_payment_method",
        6540,
        "object",
        "shirt",
        {"apple_pay": None},
        True,
    )


def test_unknown_column_names_table_and_column(hs: ModelRegistry) -> None:
    model = hs.resolve("payment_intent", INSERT)  # a table without a flat insert struct
    with pytest.raises(UnknownColumn) as caught:
        model.coerce_row({"payment_id": "pay_1", "line9": [1]})
    assert (caught.value.table, caught.value.column) == ("payment_intent", "line9")
    assert str(caught.value) == "table 'payment_intent' has no column 'line9'"
    address = hs.resolve("address", INSERT)
    with pytest.raises(UnknownColumn, match="table 'address' has no column 'line9'"):
        address.coerce_changes({"line9": None})


def test_a_field_outside_the_flat_struct_names_table_struct_and_field(
    hs: ModelRegistry,
) -> None:
    model = hs.resolve("address", INSERT)
    with pytest.raises(MalformedOperation) as caught:
        model.coerce_row({**ADDRESS_ROW, "line9": [1]})
    assert str(caught.value) == "address: AddressNew: unknown field 'line9'"
    assert caught.value.error_class == "malformed"
    update = hs.resolve("address_update", UPDATE)
    # a column of the table, but no field of AddressUpdateInternal: serde never writes it
    with pytest.raises(MalformedOperation) as caught:
        update.changes_for({**ADDRESS_UPDATE, "merchant_id": "m2"}, ADDRESS_ROW, NOW)
    assert str(caught.value) == "address: AddressUpdateInternal: unknown field 'merchant_id'"
    with pytest.raises(MalformedOperation, match="address: AddressNew: missing field 'upd"):
        model.coerce_row({k: v for k, v in ADDRESS_ROW.items() if k != "updated_by"})
    with pytest.raises(MalformedOperation, match=r"AddressNew\.merchant_id: value `m 1` contains"):
        model.coerce_row({**ADDRESS_ROW, "merchant_id": "m 1"})
    # the id as serde leaves it: trimmed
    assert model.coerce_row({**ADDRESS_ROW, "merchant_id": " m1\t"})["merchant_id"] == "m1"


def test_bad_value_names_table_and_column(hs: ModelRegistry) -> None:
    model = hs.resolve("address", INSERT)
    with pytest.raises(CoercionError) as caught:
        model.coerce_row({**ADDRESS_ROW, "country": "Atlantis"})
    assert (caught.value.table, caught.value.column) == ("address", "country")
    assert "'Atlantis' is not a value of enum CountryAlpha2" in str(caught.value)
    with pytest.raises(CoercionError, match=r"address\.address_id: too long: 65 characters"):
        model.key_from({"address_id": "a" * 65})


def test_missing_or_null_key_names_the_column(hs: ModelRegistry) -> None:
    model = hs.resolve("payment_intent_update", UPDATE)
    with pytest.raises(MissingKey, match="payment_intent: key column 'merchant_id' is missing"):
        model.key_from({"payment_id": "pay_1"})
    with pytest.raises(MissingKey, match="payment_intent: key column 'payment_id' is null"):
        model.key_from({"payment_id": None, "merchant_id": "m"})
    assert model.key_from({"merchant_id": "m", "payment_id": "p", "amount": 1}) == {
        "payment_id": "p",
        "merchant_id": "m",
    }


async def test_null_sets_null_is_per_table(hs_engine: AsyncEngine) -> None:
    registry = await ModelRegistry.reflect(hs_engine, null_sets_null=["address"])
    assert registry.tables["address"].null_sets_null
    assert registry.tables["address"].coerce_changes({"city": None}) == {"city": None}
    assert registry.tables["customers"].coerce_changes({"description": None}) == {}
    # the configuration wins over the flat struct's diesel rule (null skips)
    changes = registry.tables["address"].changes_for(ADDRESS_UPDATE, ADDRESS_ROW, NOW)
    assert changes["line1"] is None and changes["city"] == "Goa"


def test_every_flat_struct_of_the_dialect_binds_to_hyperswitchs_schema(
    hs: ModelRegistry,
) -> None:
    for table, struct in HYPERSWITCH.flat_inserts.items():
        assert hs.tables[table].flat_insert is struct
    for table, struct in HYPERSWITCH.flat_updates.items():
        assert hs.tables[table].flat_update is struct
    assert hs.tables["payment_intent"].flat_insert is None
    assert hs.tables["payment_intent"].flat_update is None


async def test_a_flat_struct_that_does_not_fit_keeps_the_generic_rules(
    hs_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    misfit = Dialect(
        name="misfit",
        flat_inserts={"address": FlatStruct("AddressNew", "address_id!", "planet")},
        flat_updates={"customers": FlatStruct("CustomerUpdate", "name")},
    )
    with caplog.at_level(logging.WARNING, logger="drainer.db"):
        registry = await ModelRegistry.reflect(hs_engine, dialects=[misfit])
    assert registry.tables["address"].flat_insert is None
    assert "dialect misfit: table address lacks column(s) planet" in caplog.text
    assert registry.tables["customers"].flat_update is not None
    assert registry.tables["address"].coerce_row({"address_id": "a", "city": "Pune"}) == {
        "address_id": "a",
        "city": "Pune",
    }


async def test_a_flat_update_struct_does_not_apply_to_tagged_updates(
    hs_engine: AsyncEngine,
) -> None:
    both = Dialect(
        name="both",
        keys={"refund": ("refund_id", "merchant_id")},
        updates={
            "refund": TaggedUnion(
                "RefundUpdate", variants=(Variant("ErrorUpdate", "refund_error_message"),)
            )
        },
        flat_updates={"refund": FlatStruct("RefundUpdateInternal", "refund_status!")},
    )
    refund = (await ModelRegistry.reflect(hs_engine, dialects=[both])).tables["refund"]
    tagged = {"ErrorUpdate": {"refund_error_message": "declined"}}
    assert refund.changes_for(tagged, {}, NOW) == {"refund_error_message": "declined"}
    assert refund.changes_for({"refund_status": "failure"}, {}, NOW) == {"refund_status": "failure"}
    # a flat changeset of the same table is the struct's: its field must be there
    with pytest.raises(MalformedOperation, match="refund: RefundUpdateInternal: unknown field"):
        refund.changes_for({"refund_error_message": "declined"}, {}, NOW)
    with pytest.raises(MalformedOperation, match="'refund_status' must not be null"):
        refund.changes_for({"refund_status": None}, {}, NOW)


async def test_configured_keys_and_aliases(hs_engine: AsyncEngine) -> None:
    registry = await ModelRegistry.reflect(
        hs_engine,
        keys={"customers": ["id"]},
        aliases={"pi": "payment_intent", "customer": "address"},
    )
    customers = registry.tables["customers"]
    assert customers.key_columns == ("id",)
    assert customers.conflict_columns == ("customer_id", "merchant_id")  # still the PK
    assert customers.key_from({"id": "cus_1", "customer_id": None}) == {"id": "cus_1"}
    assert registry.resolve("pi", INSERT).name == "payment_intent"
    assert registry.resolve("pi_update", UPDATE).name == "payment_intent"
    assert registry.resolve("customer", INSERT).name == "address"  # the user's alias wins
    assert registry.resolve("reverse_look_up", INSERT).name == "reverse_lookup"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keys": {"payment_intents": ["payment_id"]}}, "keys: unknown table 'payment_intents'"),
        ({"keys": {"refund": ["refund_id", "mid"]}}, "keys: table 'refund' has no column 'mid'"),
        ({"keys": {"refund": []}}, "keys: table 'refund' needs a non-empty list"),
        ({"keys": {"refund": "refund_id"}}, "keys: table 'refund' needs a non-empty list"),
        ({"aliases": {"pm": "payment_method"}}, "alias 'pm' points at unknown table"),
        ({"null_sets_null": ["adress"]}, "null_sets_null: unknown table 'adress'"),
    ],
)
async def test_bad_configuration_is_a_start_up_error(
    hs_engine: AsyncEngine, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await ModelRegistry.reflect(hs_engine, **options)


async def test_drainer_watermark_is_never_a_target(hs_engine: AsyncEngine) -> None:
    await _execute(hs_engine, "CREATE TABLE drainer_watermark (stream text PRIMARY KEY)")
    registry = await ModelRegistry.reflect(hs_engine)
    assert "drainer_watermark" not in registry.tables
    with pytest.raises(UnknownTable):
        registry.resolve("drainer_watermark", INSERT)
    everything = await ModelRegistry.reflect(hs_engine, exclude=())
    assert everything.resolve("drainer_watermark", INSERT).key_columns == ("stream",)


async def test_table_without_primary_key(pg_engine: AsyncEngine) -> None:
    await _execute(pg_engine, "CREATE TABLE audit_note (note text, at timestamp)")
    model = (await ModelRegistry.reflect(pg_engine)).resolve("audit_note", DELETE)
    assert (model.model, model.key_columns, model.conflict_columns) == (None, (), None)
    assert model.coerce_row({"note": "n", "at": [2026, 1, 0, 0, 0, 0]}) == {
        "note": "n",
        "at": datetime(2026, 1, 1),
    }
    with pytest.raises(MissingKey, match=r"no primary key; set \[tables.keys\] audit_note = "):
        model.key_from({"note": "n"})
    keyed = await ModelRegistry.reflect(pg_engine, keys={"audit_note": ["note"]})
    assert keyed.tables["audit_note"].key_from({"note": "n", "at": None}) == {"note": "n"}


async def test_builtin_aliases_never_shadow_or_dangle(pg_engine: AsyncEngine) -> None:
    # A non-Hyperswitch database: one built-in alias's tag is a real table and
    # the others point at tables it lacks.
    await _execute(pg_engine, "CREATE TABLE customer (id int PRIMARY KEY)")
    registry = await ModelRegistry.reflect(pg_engine)
    assert registry.aliases == {}
    assert registry.resolve("customer", INSERT).name == "customer"


async def test_reflects_the_default_schema_of_the_search_path(pg_dsn: str) -> None:
    tenant = create_async_engine(
        sqlalchemy_url(pg_dsn), connect_args={"server_settings": {"search_path": "tenant_a"}}
    )
    try:
        await _execute(
            tenant,
            "CREATE SCHEMA tenant_a",
            "CREATE TABLE tenant_a.widgets (id int PRIMARY KEY)",
            "CREATE TABLE public.gadgets (id int PRIMARY KEY)",
        )
        registry = await ModelRegistry.reflect(tenant)
        assert set(registry.tables) == {"widgets"}
        # Unqualified, so each tenant's search_path picks its own schema.
        assert registry.tables["widgets"].table.schema is None
        explicit = await ModelRegistry.reflect(tenant, schema="public")
        assert set(explicit.tables) == {"gadgets"}
        assert explicit.tables["gadgets"].table.schema == "public"
    finally:
        await tenant.dispose()


# --- user-supplied declarative models --------------------------------------

WIDGET_ROW: dict[str, Any] = {
    "shop_id": "shop_1",
    "widget_id": "w_1",
    "display_name": "Bolt",
    "shape": "SQUARE",
    "specs": None,
    "created_at": "2026-01-01T10:00:00+01:00",
}


async def test_from_module_collects_declared_models(pg_engine: AsyncEngine) -> None:
    async with pg_engine.begin() as conn:
        await conn.run_sync(declared_models.Base.metadata.create_all)
    registry = ModelRegistry.from_module("tests.declared_models", keys={"events": ["event_id"]})
    assert set(registry.tables) == {"widgets", "events"}  # drainer_watermark left out
    widgets = registry.resolve("widgets_update", UPDATE)
    assert widgets.model is declared_models.Widget
    assert widgets.key_columns == ("shop_id", "widget_id")
    assert registry.tables["events"].model is declared_models.Event  # not the Click subclass

    row = widgets.coerce_row(WIDGET_ROW)
    assert row["created_at"] == datetime(2026, 1, 1, 9)
    async with AsyncSession(pg_engine) as session, session.begin():
        await session.execute(sa.insert(widgets.table).values(row))
    async with AsyncSession(pg_engine) as session:
        stored = (
            await session.execute(
                sa.text("SELECT display_name, shape::text, specs IS NULL FROM widgets")
            )
        ).one()
    assert tuple(stored) == ("Bolt", "SQUARE", True)  # JSON None is SQL NULL
    with pytest.raises(CoercionError, match="'OVAL' is not a value of enum widget_shape"):
        widgets.coerce_row({**WIDGET_ROW, "shape": "OVAL"})


def test_from_models_takes_the_given_classes_only() -> None:
    registry = ModelRegistry.from_models([declared_models.Click])
    assert set(registry.tables) == {"events"}
    model = registry.tables["events"]
    assert model.model is declared_models.Event
    event_id = "6f1c2b8e-3d4a-4f5b-9c6d-7e8f9a0b1c2d"
    assert model.key_from({"event_id": event_id}) == {"event_id": uuid.UUID(event_id)}


def test_from_models_rejects_what_is_not_a_model() -> None:
    with pytest.raises(TypeError, match="is not an ORM-mapped class"):
        ModelRegistry.from_models([dict])
    with pytest.raises(ValueError, match="no ORM-mapped classes given"):
        ModelRegistry.from_models([declared_models.DrainerWatermark])


def test_from_module_without_models_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="module 'json' defines no ORM-mapped classes"):
        ModelRegistry.from_module("json")
    with pytest.raises(ValueError, match=r"cannot import models module 'tests\.no_such_models'"):
        ModelRegistry.from_module("tests.no_such_models")


def test_rows_coerced_column_by_column_are_the_rows_coerced_one_by_one(
    hs: ModelRegistry,
) -> None:
    """Hyperswitch's payment_intent: nulls that become DEFAULT or are left out, enums,
    jsonb, timestamps in three forms; ``coerce_rows`` gives what ``coerce_row`` gives."""
    model = hs.resolve("payment_intent", INSERT)
    stamps = ["2026-01-01T10:00:00Z", "2026-01-01 10:00:00.123", [2026, 1, 10, 0, 0, 5]]
    rows = [
        {
            "payment_id": f"pay_{i}",
            "merchant_id": "merchant_1",
            "status": "requires_payment_method" if i % 2 else "succeeded",
            "amount": 6540 + i,
            "currency": "USD",
            "metadata": None if i % 3 else {"n": i},
            "order_details": [{"product_name": "shirt", "quantity": i}],
            "created_at": stamps[i % 3],
            "modified_at": stamps[(i + 1) % 3],
            "attempt_count": None if i % 4 else 1,
        }
        for i in range(12)
    ]
    assert model.coerce_rows(rows) == [model.coerce_row(row) for row in rows]
    # any bad value or unknown column: None, and the row-by-row path names it
    assert model.coerce_rows([*rows, {**rows[0], "status": "lost"}]) is None
    assert model.coerce_rows([*rows, {**rows[0], "no_such_column": 1}]) is None
    # a table whose rows are checked against a struct is always coerced row by row
    assert hs.resolve("address", INSERT).coerce_rows([ADDRESS_ROW]) is None


def test_a_column_left_to_its_default_in_every_row_is_left_out_of_the_columns(
    hs: ModelRegistry,
) -> None:
    """Hyperswitch's payouts (``last_modified_at DEFAULT now()``, diesel's null-is-DEFAULT
    rule): a run whose rows all leave ``last_modified_at`` null is written without that
    column, each row as ``coerce_row`` gives it; null in some rows only, the rows differ
    in shape and go row by row (None)."""
    model = hs.resolve("payouts", INSERT)
    rows = [
        {
            "payout_id": f"payout_{i}",
            "merchant_id": "merchant_1",
            "amount": 100 + i,
            "destination_currency": "USD",
            "source_currency": "EUR",
            "recurring": False,
            "auto_fulfill": True,
            "entity_type": "Individual",
            "created_at": "2026-01-01 10:00:00.000001",
            "last_modified_at": None,
            "attempt_count": None,
            "profile_id": "pro_1",
            "status": "initiated",
        }
        for i in range(9)
    ]
    columns = model.coerce_columns(rows)
    assert columns is not None and columns.count == len(rows)
    # computed by the database: left out; a constant DEFAULT (1) is written
    assert "last_modified_at" not in columns.keys and columns.columns["attempt_count"][0] == 1
    assert [columns.row(i) for i in range(len(rows))] == [model.coerce_row(r) for r in rows]
    assert model.coerce_rows(rows) == [model.coerce_row(r) for r in rows]
    mixed = [*rows, {**rows[0], "last_modified_at": "2026-01-01 10:00:01"}]
    assert model.coerce_columns(mixed) is None
    # coerce_rows still gives each row its own shape
    assert model.coerce_rows(mixed) == [model.coerce_row(r) for r in mixed]
