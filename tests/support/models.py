"""Hand-declared models a user might supply via ``[tables] models_module``."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, LargeBinary, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Status(enum.Enum):
    pending = "pending"
    charged = "charged"
    refunded = "refunded"


class Wallet(Base):
    __tablename__ = "wallet"

    wallet_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(64))


class Charge(Base):
    __tablename__ = "charge"

    charge_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallet.wallet_id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[decimal.Decimal | None] = mapped_column(Numeric(12, 4))
    status: Mapped[Status] = mapped_column(Enum(Status, name="charge_status"))
    card: Mapped[bytes | None] = mapped_column(LargeBinary)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    extra: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column()
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
