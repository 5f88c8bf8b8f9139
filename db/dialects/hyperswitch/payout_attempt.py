"""``PayoutAttemptUpdate``: placeholder until its variants are written."""

from __future__ import annotations

from db.dialects.tagged import TaggedUnion

PAYOUT_ATTEMPT_UPDATE = TaggedUnion(
    "PayoutAttemptUpdate", stamps=("last_modified_at",), variants=()
)
