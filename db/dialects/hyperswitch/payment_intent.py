"""``PaymentIntentUpdate`` (16 variants), from ``crates/diesel_models/src/payment_intent.rs``
(``enum PaymentIntentUpdate``, ``struct PaymentIntentUpdateFields`` and ``impl
From<PaymentIntentUpdate> for PaymentIntentUpdateInternal``, v1).

kv.rs calls ``PaymentIntent::update`` (``src/query/payment_intent.rs``, v1), which
finds the row by ``payment_id`` and ``merchant_id`` and writes the From impl's
changeset. Rules that are not plain copies:

- every variant sets ``modified_at: common_utils::date_time::now()``: the union
  stamps it;
- ``updated_by`` is a non-``Option`` ``String``, so it is always written: copied
  from the variant, or ``String::default()`` (``""``) for
  ``IncrementalAuthorizationAmountUpdate``, ``AuthorizationCountUpdate`` and
  ``CompleteAuthorizeUpdate``, which carry none;
- ``return_url`` (``Update`` and ``PaymentCreateUpdate``) is written to
  ``extended_return_url`` only; the ``return_url`` column is set to ``None``
  ("deprecated"), i.e. left as it is;
- ``Update`` is a newtype variant, ``Update(Box<PaymentIntentUpdateFields>)``:
  serde writes it as ``{"Update": {<PaymentIntentUpdateFields' fields>}}``, so its
  specs are that struct's fields; its ``tax_details`` is dropped (the From sets
  ``tax_details: None``);
- no internal field is ``Option<Option<T>>``, so a null never sets SQL NULL;
  non-``Option`` variant fields the From wraps in ``Some`` are required.

One case cannot be expressed: ``MetadataUpdate.metadata`` is a bare
``serde_json::Value``, so Rust accepts ``"metadata": null`` and writes JSON
``null`` (not SQL NULL) into the jsonb column; a changeset value of ``None`` is SQL
NULL, so here such an entry is dead-lettered as a null required field instead.
"""

from __future__ import annotations

from drainer.db.dialects.tagged import TaggedUnion, Variant

#: ``String::default()`` of the variants that carry no ``updated_by``.
NO_UPDATED_BY = {"updated_by": ""}

#: ``PaymentIntentUpdateFields`` (v1), the payload of the ``Update`` newtype variant,
#: in declaration order.
UPDATE_FIELDS = (
    "amount!", "currency!", "setup_future_usage", "status!", "customer_id",
    "shipping_address_id", "billing_address_id", "return_url>extended_return_url",
    "business_country", "business_label", "description", "statement_descriptor_name",
    "statement_descriptor_suffix", "order_details", "metadata", "payment_confirm_source",
    "updated_by!", "session_expiry", "fingerprint_id",
    "request_external_three_ds_authentication", "frm_metadata", "customer_details",
    "billing_details", "merchant_order_reference_id", "shipping_details",
    "is_payment_processor_token_flow", "-tax_details", "force_3ds_challenge",
    "is_iframe_redirection_enabled", "payment_channel", "feature_metadata", "tax_status",
    "discount_amount", "order_date", "shipping_amount_tax", "duty_amount",
    "enable_partial_authorization", "enable_overcapture",
)  # fmt: skip

PAYMENT_INTENT_UPDATE = TaggedUnion(
    "PaymentIntentUpdate",
    stamps=("modified_at",),
    variants=(
        Variant(
            "ResponseUpdate",
            "status!", "amount_captured", "fingerprint_id", "updated_by!",
            "incremental_authorization_allowed", "feature_metadata",
        ),
        Variant("MetadataUpdate", "metadata!", "updated_by!"),
        Variant("Update", *UPDATE_FIELDS),
        Variant(
            "PaymentCreateUpdate",
            "return_url>extended_return_url", "status", "customer_id", "shipping_address_id",
            "billing_address_id", "customer_details", "updated_by!",
        ),
        Variant(
            "MerchantStatusUpdate",
            "status!", "shipping_address_id", "billing_address_id", "updated_by!",
        ),
        Variant(
            "PGStatusUpdate",
            "status!", "updated_by!", "incremental_authorization_allowed", "feature_metadata",
        ),
        Variant(
            "PaymentAttemptAndAttemptCountUpdate",
            "active_attempt_id!", "attempt_count!", "updated_by!",
        ),
        Variant(
            "StatusAndAttemptUpdate",
            "status!", "active_attempt_id!", "attempt_count!", "updated_by!",
        ),
        Variant("ApproveUpdate", "status!", "merchant_decision", "updated_by!"),
        Variant("RejectUpdate", "status!", "merchant_decision", "updated_by!"),
        Variant("SurchargeApplicableUpdate", "surcharge_applicable", "updated_by!"),
        Variant("IncrementalAuthorizationAmountUpdate", "amount!", sets=NO_UPDATED_BY),
        Variant("AuthorizationCountUpdate", "authorization_count!", sets=NO_UPDATED_BY),
        Variant("CompleteAuthorizeUpdate", "shipping_address_id", sets=NO_UPDATED_BY),
        Variant("ManualUpdate", "status", "updated_by!"),
        Variant(
            "SessionResponseUpdate",
            "tax_details!", "shipping_address_id", "updated_by!", "shipping_details",
        ),
    ),
)  # fmt: skip
