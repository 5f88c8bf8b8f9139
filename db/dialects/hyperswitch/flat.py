"""Hyperswitch's flat structs: the ``*New`` inserts and ``*UpdateInternal`` updates
that kv.rs writes as they are, with the rules serde applies when the drainer reads
them back.

Follows ``crates/diesel_models/src/{address,customers,mandate,payment_method,
reverse_lookup}.rs`` (juspay/hyperswitch af406737, v1) and the ``Deserialize``
impls in ``crates/common_utils/src/{id_type,types}.rs``. No field there has a
``#[serde(rename)]``, ``#[diesel(skip)]`` or ``#[diesel(column_name)]``, so every
field is the column of the same name. What the generic flat path does not do on
its own:

- a non-``Option`` field (``modified_at``, ``updated_by: String``, ...) must be
  present and not null: serde fails the entry otherwise;
- a key that is no field of the struct is not written (serde ignores it; we make
  it malformed, as for variants: it belongs to a newer producer), even when the
  table has that column (``merchant_id`` in an update, e.g.);
- ``id_type`` fields (``CustomerId``, ``MerchantId``, ``PaymentId``,
  ``MerchantConnectorAccountId``: ``LengthId<64, 1>``) are trimmed and must be
  1-64 bytes of ``[A-Za-z0-9_-]``; ``Description`` (``LengthString<255, 1>``) is
  trimmed and must be 1-255 bytes.

``None`` is ``null`` on the wire (``Option<Option<T>>`` too, so its ``Some(None)``
is a null that skips). An update's null is dropped (diesel skips ``None``); an
insert's null is kept (diesel writes DEFAULT).
"""

from __future__ import annotations

import re
from typing import Any

from drainer.db.dialects.flat import FlatStruct, rust_trimmed

#: ``MAX_ALLOWED_MERCHANT_REFERENCE_ID_LENGTH`` / ``MAX_DESCRIPTION_LENGTH`` (consts.rs).
MAX_ID_BYTES = 64
MAX_DESCRIPTION_BYTES = 255
#: An id that needs no trimming and is valid as it is: the common case, one regex match.
_PLAIN_ID = re.compile(f"[A-Za-z0-9_-]{{1,{MAX_ID_BYTES}}}")


def reference_id(value: Any) -> str:
    """``id_type::LengthId<64, 1>``'s ``Deserialize``: trimmed, 1-64 bytes, ``[A-Za-z0-9_-]``."""
    if type(value) is str and _PLAIN_ID.fullmatch(value):
        return value
    text = rust_trimmed(value, MAX_ID_BYTES)
    for char in text:
        if not (char.isascii() and (char.isalnum() or char in "_-")):
            raise ValueError(f"value `{text}` contains invalid character `{char}`")
    return text


def description(value: Any) -> str:
    """``types::Description``'s ``Deserialize``: trimmed, 1-255 bytes."""
    return rust_trimmed(value, MAX_DESCRIPTION_BYTES)


_ID = reference_id
_IDS = {"customer_id": _ID, "merchant_id": _ID}
_ENCRYPTED = ("line1", "line2", "line3", "state", "zip", "first_name", "last_name")

ADDRESS_NEW = FlatStruct(
    "AddressNew",
    "address_id!", "city", "country", *_ENCRYPTED, "phone_number", "country_code",
    "customer_id", "merchant_id!", "payment_id", "created_at!", "modified_at!",
    "updated_by!", "email", "origin_zip",
    checks={**_IDS, "payment_id": _ID},
)  # fmt: skip
ADDRESS_UPDATE_INTERNAL = FlatStruct(
    "AddressUpdateInternal",
    "city", "country", *_ENCRYPTED, "phone_number", "country_code", "modified_at!",
    "updated_by!", "email", "origin_zip",
)  # fmt: skip
CUSTOMER_NEW = FlatStruct(
    "CustomerNew",
    "customer_id!", "merchant_id!", "name", "email", "phone", "description",
    "phone_country_code", "metadata", "connector_customer", "created_at!", "modified_at!",
    "address_id", "updated_by", "version!", "tax_registration_id", "created_by",
    "last_modified_by",
    checks={**_IDS, "description": description},
)  # fmt: skip
CUSTOMER_UPDATE_INTERNAL = FlatStruct(
    "CustomerUpdateInternal",
    "name", "email", "phone", "description", "phone_country_code", "metadata",
    "modified_at!", "connector_customer", "address_id", "default_payment_method_id",
    "updated_by", "tax_registration_id", "last_modified_by",
    checks={"description": description},
)  # fmt: skip
MANDATE_NEW = FlatStruct(
    "MandateNew",
    "mandate_id!", "customer_id!", "merchant_id!", "payment_method_id!", "mandate_status!",
    "mandate_type!", "customer_accepted_at", "customer_ip_address", "customer_user_agent",
    "network_transaction_id", "previous_attempt_id", "created_at", "mandate_amount",
    "mandate_currency", "amount_captured", "connector!", "connector_mandate_id",
    "start_date", "end_date", "metadata", "connector_mandate_ids", "original_payment_id",
    "merchant_connector_id", "updated_by", "customer_user_agent_extended",
    checks={**_IDS, "original_payment_id": _ID, "merchant_connector_id": _ID},
)  # fmt: skip
MANDATE_UPDATE_INTERNAL = FlatStruct(
    "MandateUpdateInternal",
    "mandate_status", "amount_captured", "connector_mandate_ids", "connector_mandate_id",
    "payment_method_id", "original_payment_id", "updated_by",
    checks={"original_payment_id": _ID},
)  # fmt: skip
PAYMENT_METHOD_NEW = FlatStruct(
    "PaymentMethodNew",
    "customer_id!", "merchant_id!", "payment_method_id!", "payment_method",
    "payment_method_type", "payment_method_issuer", "payment_method_issuer_code",
    "accepted_currency", "scheme", "token", "cardholder_name", "issuer_name",
    "issuer_country", "payer_country", "is_stored", "swift_code", "direct_debit_token",
    "created_at!", "last_modified!", "metadata", "payment_method_data", "locker_id",
    "last_used_at!", "connector_mandate_details", "customer_acceptance", "status!",
    "network_transaction_id", "client_secret", "payment_method_billing_address",
    "updated_by", "version!", "network_token_requestor_reference_id",
    "network_token_locker_id", "network_token_payment_method_data", "external_vault_source",
    "vault_type", "created_by", "last_modified_by",
    checks={**_IDS, "external_vault_source": _ID},
)  # fmt: skip
PAYMENT_METHOD_UPDATE_INTERNAL = FlatStruct(
    "PaymentMethodUpdateInternal",
    "metadata", "payment_method_data", "last_used_at", "network_transaction_id", "status",
    "locker_id", "network_token_requestor_reference_id", "payment_method",
    "connector_mandate_details", "updated_by", "payment_method_type",
    "payment_method_issuer", "last_modified!", "network_token_locker_id",
    "network_token_payment_method_data", "scheme", "last_modified_by",
)  # fmt: skip
REVERSE_LOOKUP_NEW = FlatStruct(
    "ReverseLookupNew", "lookup_id!", "pk_id!", "sk_id!", "source!", "updated_by!"
)

#: table -> the ``*New`` struct its ``Insertable`` variant carries (kv.rs).
FLAT_INSERTS: dict[str, FlatStruct] = {
    "address": ADDRESS_NEW,
    "customers": CUSTOMER_NEW,
    "mandate": MANDATE_NEW,
    "payment_methods": PAYMENT_METHOD_NEW,
    "reverse_lookup": REVERSE_LOOKUP_NEW,
}
#: table -> the ``*UpdateInternal`` struct its ``Updateable`` variant carries (kv.rs).
FLAT_UPDATES: dict[str, FlatStruct] = {
    "address": ADDRESS_UPDATE_INTERNAL,
    "customers": CUSTOMER_UPDATE_INTERNAL,
    "mandate": MANDATE_UPDATE_INTERNAL,
    "payment_methods": PAYMENT_METHOD_UPDATE_INTERNAL,
}

__all__ = ["FLAT_INSERTS", "FLAT_UPDATES", "description", "reference_id"]
