"""Hand-written declarative models, as a user would give the drainer (tests only)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    # One JSONB instance shared by every dict column, as type_annotation_map does.
    type_annotation_map = {dict[str, Any]: JSONB}


class Shape(enum.Enum):
    CIRCLE = "circle"
    SQUARE = "square"


class Widget(Base):
    """Composite key, an attribute named differently from its column, enum and JSONB."""

    __tablename__ = "widgets"

    shop_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    widget_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column("display_name", String(16))
    shape: Mapped[Shape] = mapped_column(Enum(Shape, name="widget_shape"))
    specs: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]


class Event(Base):
    """Single-table inheritance: ``Click`` rows live in this table too."""

    __tablename__ = "events"
    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "event"}

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))


class Click(Event):
    __mapper_args__ = {"polymorphic_identity": "click"}


class DrainerWatermark(Base):
    """The drainer's own table, declared alongside: never a target."""

    __tablename__ = "drainer_watermark"

    stream: Mapped[str] = mapped_column(primary_key=True)
    last_id: Mapped[str]
