"""Who may change things: the admin bearer token, and the audit log of what they changed.

Reading endpoints are open (probes, autoscalers and scrapers read them). Every
endpoint that changes state depends on :func:`require_admin`:

- ``[server] admin_token`` set: ``Authorization: Bearer <token>`` is required,
  compared in constant time; missing or wrong is 401.
- no token set: allowed only when the server listens on a loopback address
  (only this machine can reach it); otherwise 403 saying to set the token.
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

from api.deps import get_drainer

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
    """Who made a change: how they were let in, from where, and the name they gave."""

    auth: str  # "token" or "loopback"
    client: str
    name: str | None

    def fields(self) -> dict[str, Any]:
        """The audit log fields naming this operator."""
        return {"auth": self.auth, "client": self.client, "operator": self.name}


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown"


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Operator:
    """Let the request through if it may change state; else 401 or 403 with the reason."""
    drainer = get_drainer(request)
    server = drainer.settings.server
    name = request.headers.get(OPERATOR_HEADER)
    name = name[:OPERATOR_NAME_MAX_CHARS] if name else None
    if server.admin_token is None:
        if is_loopback(server.host):
            return Operator("loopback", _client(request), name)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"changes are refused: the API listens on {server.host}, not loopback, and no "
            "admin token is configured; set server.admin_token (DRAINER__SERVER__ADMIN_TOKEN) "
            "and send it as 'Authorization: Bearer <token>'",
        )
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <server.admin_token>'",
            headers=challenge,
        )
    expected = server.admin_token.get_secret_value().encode()
    if not secrets.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong bearer token", headers=challenge)
    return Operator("token", _client(request), name)


Admin = Annotated[Operator, Depends(require_admin)]


def audit(operator: Operator, action: str, target: str, outcome: str, **details: Any) -> None:
    """Log one change: who, what, when and how it ended (logger ``drainer.audit``)."""
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
