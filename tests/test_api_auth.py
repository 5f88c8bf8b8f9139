"""Endpoints that change state need the admin bearer token; probes and counts do not.

Endpoints that show entry contents (the operator token) are in test_api_security.py.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx

from drainer.api.auth import is_loopback
from drainer.consumers.streams import StreamLayout
from tests.support.api import api_client
from tests.support.drainer import create_a_table, settings_from, write_config

TOKEN = "s3cret-token"


def _mutations(prefix: str) -> list[tuple[str, str, dict[str, object] | None, int]]:
    """Each change with the status it gets past auth: nothing is pending or dead-lettered,
    so the ones naming an entry find none (404) and a requeue of all requeues none (200)."""
    stream = quote(StreamLayout("DRAINER_STREAM", 8, prefix).stream_key(0), safe="")
    return [
        ("POST", f"/replay/{stream}/1-1", None, 404),
        ("POST", "/dead-letters/1-1/requeue", None, 404),
        ("POST", "/dead-letters/requeue", {"all": True}, 200),
        ("DELETE", "/dead-letters/1-1", None, 404),
    ]


def _assert_past_auth(resp: httpx.Response, path: str, status: int) -> None:
    assert resp.status_code == status, (path, resp.text)
    if status == 200:
        assert resp.json()["count"] == 0, (path, resp.text)
    else:
        assert resp.json()["detail"].startswith("no "), (path, resp.text)


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: object, **headers: str
) -> httpx.Response:
    return await client.request(method, path, json=body, headers=headers)


async def test_mutations_refuse_a_missing_or_wrong_token(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    await create_a_table(pg_dsn)
    config = write_config(
        tmp_path / "a.toml", pg_dsn, prefix=redis_prefix, server={"admin_token": TOKEN}
    )
    async with api_client(settings_from(config)) as (_drainer, client):
        for method, path, body, status in _mutations(redis_prefix):
            missing = await _call(client, method, path, body)
            assert missing.status_code == 401, (path, missing.text)
            assert "missing bearer token" in missing.json()["detail"]
            assert missing.headers["www-authenticate"] == "Bearer"
            for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN):
                resp = await _call(client, method, path, body, Authorization=wrong)
                assert resp.status_code == 401, (path, wrong, resp.text)
            ok = await _call(client, method, path, body, Authorization=f"Bearer {TOKEN}")
            _assert_past_auth(ok, path, status)
        for path in ("/health", "/pending", "/metrics", "/trace-id?global_id=g"):
            assert (await client.get(path)).status_code == 200, path


async def test_without_a_token_changes_are_allowed_only_on_loopback(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    await create_a_table(pg_dsn)
    public = write_config(
        tmp_path / "p.toml", pg_dsn, prefix=redis_prefix, server={"host": "0.0.0.0"}
    )
    async with api_client(settings_from(public)) as (_drainer, client):
        for method, path, body, _status in _mutations(redis_prefix):
            resp = await _call(client, method, path, body)
            assert resp.status_code == 403, (path, resp.text)
            assert "server.admin_token" in resp.json()["detail"]
    local = write_config(tmp_path / "l.toml", pg_dsn, prefix=redis_prefix)
    async with api_client(settings_from(local)) as (_drainer, client):
        for method, path, body, status in _mutations(redis_prefix):
            _assert_past_auth(await _call(client, method, path, body), path, status)


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.1", "drainer.svc", ""):
        assert not is_loopback(host), host
