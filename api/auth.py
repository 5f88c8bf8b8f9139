"""Who may see entry contents and who may change things: two bearer tokens, and the audit log.

Three levels (see docs/operations.md, "Authentication"):

- open: probes (``/health``, ``/health/ready``), ``/pending`` counts, ``/metrics``,
  ``/trace-id``: probes, autoscalers and scrapers call them; they show no entry contents.
- read (:func:`require_reader`): endpoints that show entry contents (dead letters,
  pending entries, which hold payment data) and ``/health/deep`` (it writes probes).
  ``[server] operator_token`` or ``admin_token``.
- change (:func:`require_admin`): replay, requeue, discard. ``[server] admin_token``.

A level whose token(s) are configured needs ``Authorization: Bearer <token>``,
compared in constant time; missing or wrong is 401. A level with no token
configured is allowed only when the server listens on a loopback address (only
this machine can reach it); otherwise 403 saying which token to set.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from drainer.api.deps import get_drainer

audit_log = logging.getLogger("drainer.audit")

#: Attributes every LogRecord has: logging refuses an ``extra`` that names one
#: ("Attempt to overwrite 'message' in LogRecord"), so such details are renamed.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
#: Prefix of an audit detail whose name a LogRecord attribute already takes.
DETAIL_PREFIX = "detail_"

#: Optional header naming the person or tool acting; recorded in the audit log only.
OPERATOR_HEADER = "x-operator"
OPERATOR_NAME_MAX_CHARS = 100
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="adminToken",
    description="The `[server] admin_token` setting, as `Authorization: Bearer <token>`.",
)
reader_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="operatorToken",
    description="The `[server] operator_token` (read-only) or `admin_token` setting, as "
    "`Authorization: Bearer <token>`.",
)


def is_loopback(host: str) -> bool:
    """True when ``host`` (a bind address or name) is reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Operator:
    """Who is acting: how they were let in, from where, and the name they gave."""

    auth: str  # "admin_token", "operator_token" or "loopback"
    client: str
    name: str | None

    def fields(self) -> dict[str, Any]:
        """The audit log fields naming this operator."""
        return {"auth": self.auth, "client": self.client, "operator": self.name}


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown"


def _operator(request: Request, auth: str) -> Operator:
    name = request.headers.get(OPERATOR_HEADER)
    return Operator(auth, _client(request), name[:OPERATOR_NAME_MAX_CHARS] if name else None)


def _matches(presented: bytes, token: SecretStr | None) -> bool:
    if token is None:
        return False
    return secrets.compare_digest(presented, token.get_secret_value().encode())


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _check(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    accepted: dict[str, SecretStr | None],
    refused_what: str,
) -> Operator:
    """Let the request through with one of the ``accepted`` tokens (by setting name)."""
    server = get_drainer(request).settings.server
    configured = [name for name, token in accepted.items() if token is not None]
    if not configured:
        if is_loopback(server.host):
            return _operator(request, "loopback")
        wanted = next(iter(accepted))
        unset = " and ".join(f"server.{name}" for name in accepted)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{refused_what} refused: the API listens on {server.host}, not loopback, and "
            f"{unset} {'is' if len(accepted) == 1 else 'are'} not set; set server.{wanted} "
            f"(DRAINER__SERVER__{wanted.upper()}) and send it as 'Authorization: Bearer <token>'",
        )
    if credentials is None:
        shown = " or ".join(f"server.{name}" for name in configured)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"missing bearer token: send 'Authorization: Bearer <{shown}>'",
            headers=_CHALLENGE,
        )
    presented = credentials.credentials.encode()
    # every configured token is compared, so the time taken says nothing about which
    matched = [name for name, token in accepted.items() if _matches(presented, token)]
    if not matched:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong bearer token", headers=_CHALLENGE)
    return _operator(request, matched[0])


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Operator:
    """Let the request through if it may change state; else 401 or 403 with the reason."""
    server = get_drainer(request).settings.server
    return _check(request, credentials, {"admin_token": server.admin_token}, "changes are")


def require_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(reader_bearer)],
) -> Operator:
    """Let the request through if it may see entry contents; else 401 or 403 with the reason.

    The admin token grants this too. With neither token configured: loopback only.
    """
    server = get_drainer(request).settings.server
    accepted = {"operator_token": server.operator_token, "admin_token": server.admin_token}
    return _check(request, credentials, accepted, "entry contents are")


Admin = Annotated[Operator, Depends(require_admin)]
Reader = Annotated[Operator, Depends(require_reader)]


def audit(operator: Operator, action: str, target: str, outcome: str, **details: Any) -> None:
    """Log one change, or one read of entry contents: who, what, when, how it ended.

    Logger ``drainer.audit``. The JSON and text formatters never drop a record,
    whatever bytes its fields hold (see :mod:`app.telemetry`).
    """
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fields = {
        (DETAIL_PREFIX + name if name in _RECORD_ATTRIBUTES else name): value
        for name, value in {**operator.fields(), **details}.items()
    }
    audit_log.info(
        "%s %s: %s (by %s via %s from %s at %s)",
        action,
        target,
        outcome,
        operator.name or "unnamed operator",
        operator.auth,
        operator.client,
        at,
        extra={
            "action": action,
            "target": target,
            "outcome": outcome,
            "at": at,
            **fields,
        },
    )
