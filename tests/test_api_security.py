"""Issue 9, items 4-7: payment data behind a token, a requeue that cannot double writes,
bytes that never break a response or a log line, stream paths with other scripts' digits.

Every test runs a real drainer (consumer loop and app) against the real Redis and
PostgreSQL through ``tests.support.api``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from drainer.consumers.producer import Producer, insert_op
from drainer.consumers.streams import StreamLayout
from drainer.settings import SettingsError, load_settings
from drainer.telemetry import JsonFormatter, TextFormatter
from tests.support.api import api_client
from tests.support.drainer import REDIS_URL, settings_from, wait_until, write_config
from tests.support.run import drain_burst

ADMIN = "admin-token-for-tests"
OPERATOR = "operator-token-for-tests"
#: A card number in an address line, as the red team found one in a dead letter.
CARD = "4111111111111111"
GHOST = "ghost"
SCHEMA = """
CREATE TABLE address (address_id text PRIMARY KEY, line1 text, city text);
CREATE TABLE wallet (wallet_id text PRIMARY KEY, owner text NOT NULL);
"""
OPEN_PATHS = ("/health", "/health/ready", "/pending", "/metrics", "/trace-id?global_id=g")


def _url(stream: str) -> str:
    return quote(stream, safe="")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def raw_redis() -> AsyncIterator[aioredis.Redis]:
    """A client that reads and writes bytes as they are (no decoding)."""
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await connection.execute(SCHEMA)
    yield connection
    await connection.close()


async def _dead_letter_count(client: httpx.AsyncClient) -> int:
    return int((await client.get("/pending")).json()["dead_letters"])


async def _wait_dead_letters(client: httpx.AsyncClient, count: int) -> None:
    async def written() -> bool:
        return await _dead_letter_count(client) == count

    await wait_until(written, timeout_s=20)


# --------------------------------------------------------------------------- item 4


async def test_entry_contents_need_the_operator_or_admin_token_and_listings_are_redacted(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="drainer.audit")
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    producer = Producer(redis, layout)
    held = layout.stream_for("held")
    # an entry with a card number, held by a consumer that died mid-batch
    await redis.xgroup_create(held, "drainer", id="0", mkstream=True)
    await producer.insert(
        "address", {"address_id": "a2", "line1": CARD}, partition_key="held", request_id="r2"
    )
    await redis.xreadgroup("drainer", GHOST, {held: ">"}, count=1)
    config = write_config(
        tmp_path / "t.toml",
        pg_dsn,
        prefix=redis_prefix,
        drainer={"claim_min_idle_ms": 600_000},
        server={"host": "0.0.0.0", "admin_token": ADMIN, "operator_token": OPERATOR},
    )
    async with api_client(settings_from(config)) as (_drainer, client):
        # a dead letter with a card number: the table has no column "nope"
        await producer.insert(
            "address",
            {"address_id": "a1", "line1": CARD, "nope": 1},
            partition_key="k",
            request_id="r1",
        )
        await _wait_dead_letters(client, 1)
        [letter] = (await client.get("/dead-letters", headers=_bearer(ADMIN))).json()["items"]
        reading = [
            "/dead-letters",
            f"/dead-letters/{letter['id']}",
            f"/pending/{_url(held)}/entries",
            "/health/deep",
        ]
        for path in reading:
            missing = await client.get(path)
            assert missing.status_code == 401, (path, missing.text)
            assert "missing bearer token" in missing.json()["detail"]
            assert missing.headers["www-authenticate"] == "Bearer"
            assert CARD not in missing.text
            for wrong in (f"Bearer {OPERATOR}x", f"Bearer {ADMIN[:-1]}", f"Basic {OPERATOR}"):
                resp = await client.get(path, headers={"Authorization": wrong})
                assert resp.status_code == 401, (path, wrong, resp.text)
            for token in (OPERATOR, ADMIN):
                resp = await client.get(path, headers=_bearer(token))
                assert resp.status_code == 200, (path, resp.text)
        for path in OPEN_PATHS:
            assert (await client.get(path)).status_code == 200, path

        # the operator token is read-only
        for method, path in (
            ("POST", f"/dead-letters/{letter['id']}/requeue"),
            ("DELETE", f"/dead-letters/{letter['id']}"),
            ("POST", f"/replay/{_url(held)}/1-1"),
        ):
            resp = await client.request(method, path, headers=_bearer(OPERATOR))
            assert resp.status_code == 401 and "wrong bearer token" in resp.text, (path, resp.text)
        assert await _dead_letter_count(client) == 1

        # listings are redacted by default: nothing taken from the entry's values
        caplog.clear()
        operator = _bearer(OPERATOR)
        listed = await client.get("/dead-letters", headers=operator)
        pending = await client.get(f"/pending/{_url(held)}/entries", headers=operator)
        # the dead letter came from partition key "k" (r1), the held entry from "held" (r2)
        for resp, global_id, request_id in ((listed, "k", "r1"), (pending, "held", "r2")):
            assert CARD not in resp.text, resp.text
            [item] = resp.json()["items"]
            assert item["redacted"] is True and item["fields"] is None
            assert item["operation"]["table"] == "address" and item["operation"]["key"] is None
            assert (item["global_id"], item["request_id"]) == (global_id, request_id), item
        [redacted] = listed.json()["items"]
        assert redacted["error_class"] == "unknown_column" and redacted["error"] is None
        assert not [r for r in caplog.records if r.name == "drainer.audit"]  # no read of contents

        # in full on request, still with the token, and audited
        full = await client.get("/dead-letters", params={"contents": "full"}, headers=operator)
        full_pending = await client.get(
            f"/pending/{_url(held)}/entries", params={"contents": "full"}, headers=operator
        )
        for resp in (full, full_pending):
            [item] = resp.json()["items"]
            assert CARD in item["fields"]["typed_sql"] and item["redacted"] is False
        assert "nope" in full.json()["items"][0]["error"]
        unauthorised = await client.get("/dead-letters", params={"contents": "full"})
        assert unauthorised.status_code == 401 and CARD not in unauthorised.text
        one = await client.get(f"/dead-letters/{letter['id']}", headers=operator)
        assert CARD in one.text  # one dead letter by id: in full unless asked otherwise
        one_redacted = await client.get(
            f"/dead-letters/{letter['id']}", params={"contents": "redacted"}, headers=operator
        )
        assert one_redacted.status_code == 200 and CARD not in one_redacted.text
        reads = [r for r in caplog.records if r.name == "drainer.audit"]
        assert [(r.action, r.auth) for r in reads] == [("read", "operator_token")] * 3  # type: ignore[attr-defined]
        assert reads[0].entries == [f"t1/{letter['id']}"]  # type: ignore[attr-defined]
        assert reads[1].target == f"pending entries of {held}"  # type: ignore[attr-defined]


async def test_without_tokens_contents_are_served_on_loopback_only(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, conn: asyncpg.Connection
) -> None:
    stream = _url(StreamLayout("DRAINER_STREAM", 8, redis_prefix).stream_key(0))
    # past auth, each answers what an empty drainer has: no dead letter 1-1, empty lists
    past_auth = {
        "/dead-letters": 200,
        "/dead-letters/1-1": 404,
        f"/pending/{stream}/entries": 200,
        "/health/deep": 200,
    }
    reading = list(past_auth)
    public = write_config(
        tmp_path / "p.toml", pg_dsn, prefix=redis_prefix, server={"host": "0.0.0.0"}
    )
    async with api_client(settings_from(public)) as (_drainer, client):
        for path in reading:
            resp = await client.get(path)
            assert resp.status_code == 403, (path, resp.text)
            assert "server.operator_token" in resp.json()["detail"], resp.text
        for path in OPEN_PATHS:
            assert (await client.get(path)).status_code == 200, path
    local = write_config(tmp_path / "l.toml", pg_dsn, prefix=redis_prefix)
    async with api_client(settings_from(local)) as (_drainer, client):
        for path, status in past_auth.items():
            resp = await client.get(path)
            assert resp.status_code == status, (path, resp.text)
    # only the read-only token: reading needs it, changing is refused off loopback
    reader_only = write_config(
        tmp_path / "r.toml",
        pg_dsn,
        prefix=redis_prefix,
        server={"host": "0.0.0.0", "operator_token": OPERATOR},
    )
    async with api_client(settings_from(reader_only)) as (_drainer, client):
        for path in reading:
            assert (await client.get(path)).status_code == 401, path
            resp = await client.get(path, headers=_bearer(OPERATOR))
            assert resp.status_code == past_auth[path], (path, resp.text)
        resp = await client.delete("/dead-letters/1-1", headers=_bearer(OPERATOR))
        assert resp.status_code == 403 and "server.admin_token" in resp.json()["detail"]


def test_tokens_are_validated_and_never_shown() -> None:
    cases = {
        "has a space": ({"DRAINER__SERVER__OPERATOR_TOKEN": "two words"}, "printable ASCII"),
        "not ASCII": ({"DRAINER__SERVER__OPERATOR_TOKEN": "jeton-café"}, "printable ASCII"),
        "same as admin": (
            {"DRAINER__SERVER__OPERATOR_TOKEN": ADMIN, "DRAINER__SERVER__ADMIN_TOKEN": ADMIN},
            "must differ from server.admin_token",
        ),
    }
    for case, (env, words) in cases.items():
        with pytest.raises(SettingsError) as caught:
            load_settings(env=env)
        message = str(caught.value)
        assert "server.operator_token" in message and words in message, case
        assert env["DRAINER__SERVER__OPERATOR_TOKEN"] not in message, case
    server = load_settings(
        env={"DRAINER__SERVER__OPERATOR_TOKEN": OPERATOR, "DRAINER__SERVER__ADMIN_TOKEN": ADMIN}
    ).server
    assert server.operator_token is not None and OPERATOR not in repr(server)
    assert load_settings(env={"DRAINER__SERVER__OPERATOR_TOKEN": " "}).server.operator_token is None


# --------------------------------------------------------------------------- item 5


async def test_requeue_of_stream_went_back_needs_force(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path / "w.toml", pg_dsn, prefix=redis_prefix)
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    producer = Producer(redis, layout)
    stream = layout.stream_for("k")
    applied = await producer.insert("wallet", {"wallet_id": "w1", "owner": "o"}, partition_key="k")
    await drain_burst(settings_from(config))
    # Redis comes back from an older snapshot: entries at ids the partition already applied
    await redis.delete(stream)
    for entry_id, wallet in (("1-1", "w8"), ("1-2", "w9")):
        fields = producer.fields(
            insert_op("wallet", {"wallet_id": wallet, "owner": "o"}), partition_key="k"
        )
        await redis.xadd(stream, fields, id=entry_id)  # type: ignore[arg-type]
    await drain_burst(settings_from(config))
    caplog.set_level(logging.INFO, logger="drainer.audit")
    async with api_client(settings_from(config)) as (_drainer, client):
        page = await client.get(
            "/dead-letters", params={"error_class": "stream_went_back", "contents": "full"}
        )
        letters = page.json()["items"]
        assert [d["source_id"] for d in letters] == ["1-1", "1-2"]
        for letter in letters:
            assert f"applied watermark {applied.entry_id}" in letter["error"]
            assert "most likely applied already" in letter["error"]
            assert "most likely applied already" in letter["warning"]
            assert "force=true" in letter["warning"]
        redacted = (await client.get("/dead-letters")).json()["items"]
        assert all("most likely applied" in d["warning"] for d in redacted)

        first = letters[0]["id"]
        one = await client.post(f"/dead-letters/{first}/requeue", headers={"X-Operator": "bob"})
        assert one.status_code == 409, one.text
        detail = one.json()["detail"]
        assert "most likely applied already" in detail and applied.entry_id in detail
        assert "force=true" in detail and "discard" in detail
        for body in ({"all": True}, {"error_class": "stream_went_back"}, {"tenant": "t1"}):
            resp = await client.post("/dead-letters/requeue", json=body)
            assert resp.status_code == 409, (body, resp.text)
            detail = resp.json()["detail"]
            assert "2 of the matching dead letters are stream_went_back" in detail
            assert '"force": true' in detail and "error_class" in detail
        other = await client.post("/dead-letters/requeue", json={"error_class": "constraint"})
        assert other.status_code == 200 and other.json()["count"] == 0
        # nothing was put back: the stream is empty, both dead letters are still there
        assert await redis.xlen(stream) == 0 and await _dead_letter_count(client) == 2
        refusals = [
            r
            for r in caplog.records
            if r.name == "drainer.audit" and r.action == "requeue"  # type: ignore[attr-defined]
        ]
        assert len(refusals) == 4
        assert all(r.outcome == "refused: stream_went_back without force" for r in refusals)  # type: ignore[attr-defined]

        # with force, as asked
        forced = await client.post(f"/dead-letters/{first}/requeue", params={"force": "true"})
        assert forced.status_code == 200, forced.text
        rest = await client.post("/dead-letters/requeue", json={"all": True, "force": True})
        assert rest.status_code == 200 and rest.json()["count"] == 1, rest.text

        async def both_applied() -> bool:
            count = await conn.fetchval(
                "SELECT count(*) FROM wallet WHERE wallet_id IN ('w8','w9')"
            )
            return bool(count == 2)

        await wait_until(both_applied, timeout_s=20)
        assert await _dead_letter_count(client) == 0


# --------------------------------------------------------------------------- item 6


class _JsonLines(logging.Handler):
    """The drainer's JSON log lines, as ``log_format = "json"`` writes them; counts failures."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(json.loads(self.format(record)))
        except Exception as exc:  # what logging reports as "--- Logging error ---"
            self.failures.append(f"{record.name}: {exc!r}")


async def test_dead_letters_with_bytes_that_are_not_utf8_are_listed_logged_and_audited(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    raw_redis: aioredis.Redis,
    conn: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="drainer.audit")
    lines = _JsonLines()
    logging.getLogger().addHandler(lines)
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    stream = layout.stream_for("bad")
    entry = {
        b"request_id": b"req-\x80",
        b"global_id": b"pay_\xfe\xff",
        b"typed_sql": b'{"db_op":"insert","data":{"insertable":{"table":"address",'
        b'"data":{"address_id":"\xff","city":"Pune"}}}}',
        b"pushed_at": b"1767261600.5",
        b"odd-\xff": b"\xc3\x28",
    }
    # and a record anyone with Redis access could append: bad bytes in every field
    forged = {
        b"dl_source_stream": b"\xff{shard_1}",
        b"dl_source_id": b"\xfe",
        b"dl_error_class": b"\xff",
        b"dl_error": b"bad \xff",
        b"dl_attempts": b"\xff",
        b"dl_at": b"\xff",
        b"global_id": b"\xff\xfe",
        b"request_id": b"\x80",
    }
    config = write_config(tmp_path / "b.toml", pg_dsn, prefix=redis_prefix)
    try:
        async with api_client(settings_from(config)) as (_drainer, client):
            await raw_redis.xadd(stream, entry)  # type: ignore[arg-type]
            await _wait_dead_letters(client, 1)
            await raw_redis.xadd(layout.dead_letter_key, forged)  # type: ignore[arg-type]
            for contents in ("redacted", "full"):
                resp = await client.get("/dead-letters", params={"contents": contents})
                assert resp.status_code == 200, resp.text
            drained, odd = resp.json()["items"]
            assert drained["global_id"] == "pay_\\xfe\\xff"
            assert drained["request_id"] == "req-\\x80"
            assert drained["fields"]["odd-\\xff"] == "\\xc3("
            assert "\\xff" in drained["fields"]["typed_sql"]
            assert odd["error_class"] == "\\xff" and odd["error"] == "bad \\xff"
            assert odd["attempts"] == 0 and odd["source_stream"] == "\\xff{shard_1}"
            for letter in (drained, odd):
                one = await client.get(f"/dead-letters/{letter['id']}")
                assert one.status_code == 200 and one.json() == letter

            # the dead-letter line, in JSON, with the keys escaped (logged once acknowledged)
            def logged_lines() -> list[dict[str, Any]]:
                return [line for line in lines.lines if "dead-lettered" in line["message"]]

            async def dead_letter_logged() -> bool:
                return bool(logged_lines())

            await wait_until(dead_letter_logged, timeout_s=20)
            [logged] = logged_lines()
            assert logged["global_id"] == "pay_\\xfe\\xff" and logged["request_id"] == "req-\\x80"

            # a requeue puts back the very bytes that came in (it dead-letters again)
            moved = await client.post(f"/dead-letters/{drained['id']}/requeue")
            assert moved.status_code == 200, moved.text
            await _wait_dead_letters(client, 2)
            raw = await raw_redis.xrange(layout.dead_letter_key)
            again = [f for i, f in raw if i.decode() not in (drained["id"], odd["id"])]
            assert [{k: v for k, v in f.items() if not k.startswith(b"dl_")} for f in again] == [
                entry
            ]

            for letter in (await client.get("/dead-letters")).json()["items"]:
                resp = await client.delete(f"/dead-letters/{letter['id']}")
                assert resp.status_code == 200, resp.text
            assert await _dead_letter_count(client) == 0
    finally:
        logging.getLogger().removeHandler(lines)
    discards = [
        r
        for r in caplog.records
        if r.name == "drainer.audit" and r.action == "discard"  # type: ignore[attr-defined]
    ]
    assert sorted(r.global_id for r in discards) == sorted(["pay_\udcfe\udcff", "\udcff\udcfe"])  # type: ignore[attr-defined]
    audited = [line for line in lines.lines if line.get("action") == "discard"]
    assert sorted(line["global_id"] for line in audited) == sorted(["pay_\\xfe\\xff", "\\xff\\xfe"])
    assert all(line["outcome"] == "deleted" for line in audited)
    assert not lines.failures, lines.failures


def test_log_lines_survive_bytes_and_bad_arguments() -> None:
    odd = b"pay_\xff".decode("utf-8", "surrogateescape")
    records = [
        logging.makeLogRecord(
            {"name": "drainer.audit", "msg": "discard %s", "args": (odd,), "global_id": odd}
        ),
        logging.makeLogRecord({"name": "drainer", "msg": "n=%d", "args": ("x",)}),
        logging.makeLogRecord({"name": "drainer", "msg": "big", "n": 10**30}),
    ]
    shown = [json.loads(JsonFormatter().format(r)) for r in records]
    assert shown[0]["message"] == "discard pay_\\xff" and shown[0]["global_id"] == "pay_\\xff"
    assert "cannot format" in shown[1]["message"] and shown[2]["n"] == 10**30
    text = [TextFormatter().format(r) for r in records]
    assert "discard pay_\\xff" in text[0] and "global_id=pay_\\xff" in text[0]
    assert "cannot format" in text[1]
    for line in text:
        line.encode("utf-8")  # writable to any stream


# --------------------------------------------------------------------------- item 7


async def test_stream_paths_and_ids_take_ascii_digits_only(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, conn: asyncpg.Connection
) -> None:
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    three = layout.stream_key(3)
    lookalikes = [three.replace("{shard_3}", f"{{shard_{n}}}") for n in ("²", "٣", "03", "+3")]
    for stream in lookalikes:
        assert layout.partition_of_stream(stream) is None, stream
    assert layout.partition_of_stream(three) == 3
    config = write_config(tmp_path / "u.toml", pg_dsn, prefix=redis_prefix)
    async with api_client(settings_from(config)) as (_drainer, client):
        for stream in lookalikes:
            for method, path in (
                ("GET", f"/pending/{_url(stream)}/entries"),
                ("POST", f"/replay/{_url(stream)}/1-1"),
            ):
                resp = await client.request(method, path)
                assert resp.status_code == 404, (path, resp.text)
                assert "unknown stream" in resp.json()["detail"]
        for method, path in (
            ("GET", "/dead-letters/²-1"),
            ("GET", "/dead-letters/٣-0"),
            ("DELETE", "/dead-letters/1-٣"),
            ("GET", f"/pending/{_url(three)}/entries?after=٣-0"),
            ("POST", f"/replay/{_url(three)}/²-1"),
        ):
            resp = await client.request(method, path)
            assert resp.status_code == 422, (path, resp.text)
            assert "not a stream entry id" in resp.json()["detail"]
