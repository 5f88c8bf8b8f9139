"""``PaymentAttemptUpdate`` (21 variants), from ``crates/diesel_models/src/payment_attempt.rs``
(juspay/hyperswitch af406737, v1): ``enum PaymentAttemptUpdate``, ``impl From<PaymentAttemptUpdate>
for PaymentAttemptUpdateInternal`` and ``PaymentAttemptUpdateInternal::populate_derived_fields``,
which ``src/query/payment_attempt.rs`` ``update_with_attempt_id`` applies to every update with
the entry's ``orig`` (so ``net_amount`` and ``card_network`` run for every variant).

Rules that are not plain copies:

- ``amount``, ``currency``, ``status`` etc. are non-``Option`` fields wrapped as ``Some(x)``:
  required (``!``).
- ``error_code`` / ``error_message`` / ``error_reason`` / ``unified_*`` are
  ``Option<Option<String>>`` in most variants, copied as they are: serde reads ``null`` as
  ``None``, so null leaves the column alone; ``ManualUpdate``'s are ``Option<String>`` written
  ``.map(Some)``: null skips too. ``connector`` / ``merchant_connector_id`` ``.map(Some)``: same.
- ``BlocklistUpdate`` sets ``connector`` and ``merchant_connector_id`` to ``Some(None)``: NULL.
- ``IncrementalAuthorizationAmountUpdate`` has no ``updated_by``; it writes ``String::default()``.
- ``connector_transaction_id`` goes through ``ConnectorTransactionId::form_id_and_data``
  (the ``connector_transaction_id`` derivation; it also writes ``processor_transaction_data``
  when the id is hashed) in the six variants carrying it.
- ``Update``'s ``connector_transaction_id`` is commented out in the enum and the From impl: not
  a field at all.

Every field of every variant reaches the changeset: the From impl ignores none.
"""

from __future__ import annotations

from drainer.db.dialects.hyperswitch.derived import CARD_NETWORK, CONNECTOR_TXN_ID, NET_AMOUNT
from drainer.db.dialects.tagged import TaggedUnion, Variant

#: Variants whose ``connector_transaction_id`` goes through ``form_id_and_data``.
_TXN = ("connector_transaction_id",)

PAYMENT_ATTEMPT_UPDATE = TaggedUnion(
    "PaymentAttemptUpdate",
    stamps=("modified_at",),
    derive_always=("net_amount", "card_network"),
    derivations={d.name: d for d in (CONNECTOR_TXN_ID, NET_AMOUNT, CARD_NETWORK)},
    variants=(
        Variant(
            "Update",
            "amount!", "currency!", "status!", "authentication_type", "payment_method",
            "payment_token", "payment_method_data", "payment_method_type", "payment_experience",
            "business_sub_label", "amount_to_capture", "capture_method", "surcharge_amount",
            "tax_amount", "fingerprint_id", "payment_method_billing_address_id",
            "network_transaction_id", "updated_by!",
        ),
        Variant(
            "UpdateTrackers",
            "payment_token", "connector", "straight_through_algorithm", "amount_capturable",
            "surcharge_amount", "tax_amount", "updated_by!", "merchant_connector_id",
            "routing_approach", "is_stored_credential",
        ),
        Variant("AuthenticationTypeUpdate", "authentication_type!", "updated_by!"),
        Variant(
            "ConfirmUpdate",
            "amount!", "currency!", "status!", "authentication_type", "capture_method",
            "payment_method", "browser_info", "connector", "payment_token", "payment_method_data",
            "payment_method_type", "payment_experience", "business_sub_label",
            "straight_through_algorithm", "error_code", "error_message", "surcharge_amount",
            "tax_amount", "fingerprint_id", "updated_by!", "merchant_connector_id",
            "payment_method_id", "external_three_ds_authentication_attempted",
            "authentication_connector", "authentication_id", "payment_method_billing_address_id",
            "client_source", "client_version", "customer_acceptance", "shipping_cost",
            "order_tax_amount", "connector_mandate_detail", "tokenization", "card_discovery",
            "routing_approach", "connector_request_reference_id", "network_transaction_id",
            "is_stored_credential", "request_extended_authorization",
        ),
        Variant("VoidUpdate", "status!", "cancellation_reason", "updated_by!"),
        Variant("PaymentMethodDetailsUpdate", "payment_method_id", "updated_by!"),
        Variant(
            "ConnectorMandateDetailUpdate",
            "connector_mandate_detail", "tokenization", "updated_by!",
        ),
        Variant(
            "BlocklistUpdate",
            "status!", "error_code", "error_message", "updated_by!",
            sets={"connector": None, "merchant_connector_id": None},
        ),
        Variant("RejectUpdate", "status!", "error_code", "error_message", "updated_by!"),
        Variant(
            "ResponseUpdate",
            "status!", "connector", "authentication_type", "network_transaction_id",
            "payment_method_id", "mandate_id", "connector_metadata", "payment_token",
            "error_code", "error_message", "error_reason", "connector_response_reference_id",
            "amount_capturable", "updated_by!", "authentication_data", "encoded_data",
            "unified_code", "unified_message", "capture_before", "extended_authorization_applied",
            "extended_authorization_last_applied_at", "tokenization", "payment_method_data",
            "connector_mandate_detail", "charges", "setup_future_usage_applied",
            "is_overcapture_enabled", "authorized_amount",
            derive=_TXN,
        ),
        Variant(
            "UnresolvedResponseUpdate",
            "status!", "connector", "payment_method_id", "error_code", "error_message",
            "error_reason", "connector_response_reference_id", "updated_by!",
            derive=_TXN,
        ),
        Variant("StatusUpdate", "status!", "updated_by!"),
        Variant(
            "ErrorUpdate",
            "connector", "status!", "error_code", "error_message", "error_reason",
            "amount_capturable", "updated_by!", "unified_code", "unified_message",
            "payment_method_data", "authentication_type", "issuer_error_code",
            "issuer_error_message", "network_details",
            derive=_TXN,
        ),
        Variant("CaptureUpdate", "amount_to_capture", "multiple_capture_count", "updated_by!"),
        Variant("AmountToCaptureUpdate", "status!", "amount_capturable!", "updated_by!"),
        Variant(
            "PreprocessingUpdate",
            "status!", "payment_method_id", "connector_metadata", "preprocessing_step_id",
            "connector_response_reference_id", "updated_by!",
            derive=_TXN,
        ),
        Variant(
            "ConnectorResponse",
            "authentication_data", "encoded_data", "connector", "charges", "updated_by!",
            derive=_TXN,
        ),
        Variant(
            "IncrementalAuthorizationAmountUpdate",
            "amount!", "amount_capturable!",
            sets={"updated_by": ""},  # updated_by: String::default()
        ),
        Variant(
            "AuthenticationUpdate",
            "status!", "external_three_ds_authentication_attempted", "authentication_connector",
            "authentication_id", "updated_by!",
        ),
        Variant(
            "ManualUpdate",
            "status", "error_code", "error_message", "error_reason", "updated_by!",
            "unified_code", "unified_message", "amount_capturable",
            derive=_TXN,
        ),
        Variant("PostSessionTokensUpdate", "updated_by!", "connector_metadata"),
    ),
)  # fmt: skip
