"""Hyperswitch's value shapes: ``Encryption`` and ``ConnectorTransactionId``.

Follows ``crates/common_utils/src/encryption.rs`` (``Encryption`` serialises as
``{"inner": [0-255, ...]}``) and ``crates/common_utils/src/types.rs``
(``ConnectorTransactionId`` serialises as ``{"TxnId": "..."}`` or
``{"HashedData": "..."}`` and is written to its text column as the inner string;
``From<String>`` hashes an id over 128 characters).
"""

from __future__ import annotations

from typing import Any

import blake3

from drainer.db.dialects.dialect import NOT_MINE, ValueShape

#: ``CONNECTOR_TRANSACTION_ID_HASH_BYTES`` in ``crates/common_utils/src/consts.rs``.
CONNECTOR_TRANSACTION_ID_HASH_BYTES = 25
#: Longest connector transaction id (in UTF-8 bytes) stored as it is.
MAX_CONNECTOR_TRANSACTION_ID_CHARS = 128
HASHED_PREFIX = "hs_hash_"
TXN_ID_TAGS = ("TxnId", "HashedData")


def _encryption(value: dict[str, Any]) -> Any:
    if len(value) == 1 and "inner" in value:
        return value["inner"]
    return NOT_MINE


def _connector_transaction_id(value: dict[str, Any]) -> Any:
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag in TXN_ID_TAGS and isinstance(inner, str):
            return inner
    return NOT_MINE


ENCRYPTION = ValueShape("Encryption", "bytea", _encryption)
#: The columns whose Rust type is ``ConnectorTransactionId`` (v1 structs of kv.rs's tables):
#: any other text column given ``{"TxnId": ...}`` is an error, as it is for Hyperswitch.
CONNECTOR_TRANSACTION_ID_COLUMNS = frozenset(
    {
        "payment_attempt.connector_transaction_id",
        "refund.connector_transaction_id",
        "refund.connector_refund_id",
    }
)
CONNECTOR_TRANSACTION_ID = ValueShape(
    "ConnectorTransactionId", "text", _connector_transaction_id, CONNECTOR_TRANSACTION_ID_COLUMNS
)


def form_id_and_data(src: str) -> tuple[str, str | None]:
    """``ConnectorTransactionId::form_id_and_data``: the column value, and the
    original id for ``processor_transaction_data`` when the id was hashed."""
    if src.startswith(HASHED_PREFIX):
        return src, src
    # Rust's String::len() counts UTF-8 bytes, not characters
    if len(src.encode()) > MAX_CONNECTOR_TRANSACTION_ID_CHARS:
        digest = blake3.blake3(src.encode()).digest(length=CONNECTOR_TRANSACTION_ID_HASH_BYTES)
        return HASHED_PREFIX + digest.hex(), src
    return src, None
