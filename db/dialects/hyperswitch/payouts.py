"""``PayoutsUpdate``: placeholder until its variants are written."""

from __future__ import annotations

from db.dialects.tagged import TaggedUnion

PAYOUTS_UPDATE = TaggedUnion("PayoutsUpdate", stamps=("last_modified_at",), variants=())
