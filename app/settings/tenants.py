"""``[multitenancy]``: Hyperswitch's tenants, and the :class:`Tenant` each one resolves to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from drainer.settings.defaults import DEFAULT_TENANT_REDIS_KEY_PREFIX
from drainer.settings.errors import _raise_if
from drainer.settings.values import _check_identifier, _parse_mapping, _Section


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant the drainer serves: its id, PostgreSQL schema and Redis key prefix."""

    id: str
    schema: str
    redis_key_prefix: str


class TenantSettings(_Section):
    """One ``[multitenancy.tenants.<id>]`` table.

    ``schema`` is read into ``schema_name`` (``schema`` is a ``BaseModel`` attribute).
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    schema_name: str = Field(alias="schema", description="PostgreSQL schema of this tenant.")
    redis_key_prefix: str = Field(
        DEFAULT_TENANT_REDIS_KEY_PREFIX,
        description="Prefix of this tenant's Redis keys, joined to the key with ':'.",
    )

    @field_validator("schema_name")
    @classmethod
    def _check_schema(cls, value: str) -> str:
        problem = _check_identifier(value)
        if problem:
            raise ValueError(problem)
        return value


class MultitenancySettings(_Section):
    """``[multitenancy]``: Hyperswitch's tenants, each with a schema and a Redis key prefix."""

    enabled: bool = False
    tenants: Annotated[dict[str, TenantSettings], NoDecode] = Field(default_factory=dict)

    @field_validator("tenants", mode="before")
    @classmethod
    def _parse_tenants(cls, value: Any) -> Any:
        return _parse_mapping(value)

    @field_validator("tenants")
    @classmethod
    def _check_tenant_ids(cls, value: dict[str, TenantSettings]) -> dict[str, TenantSettings]:
        # The error's location already ends in "tenants": keys are relative to it.
        _raise_if(
            [
                (tenant_id, f"tenant id {problem} (got {tenant_id!r})")
                for tenant_id in value
                if (problem := _check_identifier(tenant_id))
            ]
        )
        return value

    @model_validator(mode="after")
    def _check_tenants(self) -> MultitenancySettings:
        # Every listed tenant is drained, enabled or not (as Hyperswitch's Rust drainer
        # does), so the uniqueness checks apply whenever tenants are listed.
        problems: list[tuple[str, str]] = []
        if self.enabled and not self.tenants:
            problems.append(
                (
                    "tenants",
                    "must define at least one tenant ([multitenancy.tenants.<id>]) "
                    "when multitenancy.enabled is true",
                )
            )
        schemas: dict[str, str] = {}
        prefixes: dict[str, str] = {}
        for tenant_id, tenant in self.tenants.items():
            if (owner := schemas.setdefault(tenant.schema_name, tenant_id)) != tenant_id:
                problems.append(
                    (
                        f"tenants.{tenant_id}.schema",
                        f"schema {tenant.schema_name!r} is already used by tenant {owner!r}",
                    )
                )
            prefix = tenant.redis_key_prefix
            if (owner := prefixes.setdefault(prefix, tenant_id)) != tenant_id:
                problems.append(
                    (
                        f"tenants.{tenant_id}.redis_key_prefix",
                        f"prefix {prefix!r} is already used by tenant {owner!r}",
                    )
                )
        _raise_if(problems)
        return self
