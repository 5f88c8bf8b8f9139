"""Dialects: a producer's wire conventions (tags, keys, value shapes, tagged-union
updates) as data, bound to the tables they fit.

Exports :class:`Dialect`, :class:`ValueShape`, :class:`TaggedUnion`, :class:`Variant`,
:class:`Derivation`, :class:`FlatStruct`, :func:`load_dialect` and
:func:`dialect_from_config`.
"""

from drainer.db.dialects.config import dialect_from_config
from drainer.db.dialects.dialect import BUILT_IN, NOT_MINE, Dialect, ValueShape, load_dialect
from drainer.db.dialects.flat import FlatStruct
from drainer.db.dialects.tagged import Derivation, FieldRule, TaggedUnion, Variant

__all__ = [
    "BUILT_IN",
    "NOT_MINE",
    "Derivation",
    "Dialect",
    "FieldRule",
    "FlatStruct",
    "TaggedUnion",
    "ValueShape",
    "Variant",
    "dialect_from_config",
    "load_dialect",
]
