"""Settings: Hyperswitch's file unchanged, environment overrides, defaults, readable errors."""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from drainer import settings as settings_module
from drainer.settings import (
    DEFAULT_CLAIM_MIN_IDLE_MS,
    DEFAULT_CONSUMER_GROUP,
    DEFAULT_DB_CONNECTION_TIMEOUT_S,
    DEFAULT_DB_HOST,
    DEFAULT_DB_NAME,
    DEFAULT_DB_POOL_SIZE,
    DEFAULT_DB_PORT,
    DEFAULT_DB_USERNAME,
    DEFAULT_IDLE_POLL_MAX_MS,
    DEFAULT_LOG_FORMAT,
    DEFAULT_LOG_LEVEL,
    DEFAULT_LOOP_INTERVAL_MS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CONCURRENT_PARTITIONS,
    DEFAULT_MAX_READ_COUNT,
    DEFAULT_NUM_PARTITIONS,
    DEFAULT_REDIS_HOST,
    DEFAULT_REDIS_POOL_SIZE,
    DEFAULT_REDIS_PORT,
    DEFAULT_RETRY_BACKOFF_BASE_MS,
    DEFAULT_RETRY_BACKOFF_MAX_MS,
    DEFAULT_SERVER_HOST,
    DEFAULT_SERVER_PORT,
    DEFAULT_SERVICE_NAME,
    DEFAULT_SHUTDOWN_INTERVAL_MS,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    DEFAULT_SLOW_BATCH_MS,
    DEFAULT_STREAM_NAME,
    DatabaseSettings,
    DrainerSettings,
    RedisSettings,
    Settings,
    SettingsError,
    Tenant,
    load_settings,
)

ROOT = Path(__file__).resolve().parent.parent
HYPERSWITCH_FILE = ROOT / "tests" / "fixtures" / "hyperswitch_drainer.toml"
EXAMPLE_FILE = ROOT / "config" / "drainer.example.toml"
LOGGER = "drainer.settings"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drainer.toml"
    path.write_text(text)
    return path


def problems_of(excinfo: pytest.ExceptionInfo[SettingsError]) -> list[str]:
    return str(excinfo.value).splitlines()


def warnings_from(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


# --- Hyperswitch's file ----------------------------------------------------------------


def test_hyperswitch_file_loads_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    settings = load_settings(HYPERSWITCH_FILE, env={})

    assert settings.drainer.stream_name == "drainer_stream"
    assert settings.drainer.num_partitions == 32
    assert settings.drainer.max_read_count == 50
    assert settings.drainer.loop_interval == 500
    assert settings.drainer.shutdown_interval == 1000
    db = settings.master_database
    assert (db.host, db.port, db.dbname, db.username) == (
        "localhost",
        5433,
        "hyperswitch_db",
        "db_user",
    )
    assert db.password.get_secret_value() == "db_pass"
    assert db.pool_size == 3
    assert db.connection_timeout == 10
    assert (settings.redis.host, settings.redis.port, settings.redis.pool_size) == (
        "localhost",
        6380,
        5,
    )
    assert settings.redis.cluster_enabled is False
    assert settings.redis.cluster_urls == ["redis.cluster.uri-1:8080", "redis.cluster.uri-2:4115"]
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 8081)
    assert settings.tenants() == [
        Tenant("public", "public", ""),
        Tenant("tenant_a", "tenant_a", "tenant_a"),
    ]
    # ours, not in Hyperswitch's file: defaults
    assert settings.drainer.consumer_group == DEFAULT_CONSUMER_GROUP
    assert settings.tables.reflect is True

    warnings = warnings_from(caplog)
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    for section in (
        "secrets_management",
        "encryption_management",
        "log",
        "key_manager",
        "replica_database",
    ):
        assert f"[{section}]" in message
    assert str(HYPERSWITCH_FILE) in message
    # Hyperswitch keys inside the drainer's own sections are accepted silently
    for key in ("default_ttl", "workers", "min_idle", "global_tenant", "base_url", "aws_kms"):
        assert key not in message


def test_hyperswitch_style_tenants_inline_table_form(tmp_path: Path) -> None:
    public = (
        'public = { name = "hyperswitch", base_url = "http://localhost:8080", '
        'schema = "public", redis_key_prefix = "", clickhouse_database = "default" }'
    )
    path = write(tmp_path, f"[multitenancy]\nenabled = true\n[multitenancy.tenants]\n{public}\n")
    assert load_settings(path, env={}).tenants() == [Tenant("public", "public", "")]


def test_long_hyperswitch_loop_interval_raises_the_idle_poll_ceiling(tmp_path: Path) -> None:
    path = write(tmp_path, "[drainer]\nloop_interval = 5000\n")
    assert load_settings(path, env={}).drainer.idle_poll_max_ms == 5000
    assert load_settings(env={}).drainer.idle_poll_max_ms == DEFAULT_IDLE_POLL_MAX_MS


# --- environment overrides ---------------------------------------------------------------


def test_environment_wins_over_file() -> None:
    settings = load_settings(
        HYPERSWITCH_FILE,
        env={
            "DRAINER__DRAINER__NUM_PARTITIONS": "16",
            "DRAINER__MASTER_DATABASE__PASSWORD": "from-env",
            "DRAINER__MULTITENANCY__TENANTS__TENANT_A__SCHEMA": "tenant_a_v2",
            "DRAINER__REDIS__CLUSTER_ENABLED": "true",
            "DRAINER__REDIS__CLUSTER_URLS": "node-1:7000, node-2:7001",
            "DRAINER__TELEMETRY__LOG_FORMAT": "json",
        },
    )
    assert settings.drainer.num_partitions == 16
    assert settings.drainer.max_read_count == 50  # the file's other keys stay
    assert settings.master_database.password.get_secret_value() == "from-env"
    assert settings.master_database.username == "db_user"
    tenant_a = settings.multitenancy.tenants["tenant_a"]
    assert tenant_a.schema_name == "tenant_a_v2"
    assert tenant_a.redis_key_prefix == "tenant_a"  # merged with the file's table
    assert settings.redis.cluster_enabled is True
    assert settings.redis.cluster_urls == ["node-1:7000", "node-2:7001"]
    assert settings.telemetry.log_format == "json"


def test_environment_names_are_case_insensitive() -> None:
    settings = load_settings(
        env={"drainer__drainer__max_read_count": "7", "Drainer__Server__Port": "9000"}
    )
    assert settings.drainer.max_read_count == 7
    assert settings.server.port == 9000


def test_environment_adds_tenants_and_tables() -> None:
    settings = load_settings(
        env={
            "DRAINER__MULTITENANCY__ENABLED": "1",
            "DRAINER__MULTITENANCY__TENANTS__TENANT_B__SCHEMA": "tenant_b",
            "DRAINER__MULTITENANCY__TENANTS__TENANT_B__REDIS_KEY_PREFIX": "tb",
            "DRAINER__TABLES__ALIASES__CUSTOMER": "customers",
            "DRAINER__TABLES__KEYS__PAYMENT_INTENT": "payment_id,merchant_id",
            "DRAINER__TABLES__KEYS__ADDRESS": '["address_id"]',
            "DRAINER__TABLES__NULL_SETS_NULL": "address,customers",
        }
    )
    assert settings.tenants() == [Tenant("tenant_b", "tenant_b", "tb")]
    assert settings.tables.aliases == {"customer": "customers"}
    assert settings.tables.keys == {
        "payment_intent": ["payment_id", "merchant_id"],
        "address": ["address_id"],
    }
    assert settings.tables.null_sets_null == ["address", "customers"]


def test_whole_table_from_environment_as_json() -> None:
    settings = load_settings(
        env={"DRAINER__TABLES__ALIASES": '{"reverse_look_up": "reverse_lookup"}'}
    )
    assert settings.tables.aliases == {"reverse_look_up": "reverse_lookup"}


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAINER__DRAINER__MAX_ATTEMPTS", "9")
    assert load_settings().drainer.max_attempts == 9
    assert load_settings(env={}).drainer.max_attempts == DEFAULT_MAX_ATTEMPTS


def test_unknown_environment_variables_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    load_settings(
        env={
            "DRAINER__SECRETS_MANAGEMENT__SECRETS_MANAGER": "aws_kms",  # not ours: warned
            "DRAINER__REDIS__DEFAULT_TTL": "300",  # Hyperswitch's: silent
            "DRAINER_TEST_SOMETHING": "x",  # not our prefix
        }
    )
    warnings = warnings_from(caplog)
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "DRAINER__SECRETS_MANAGEMENT__SECRETS_MANAGER" in message
    assert "DEFAULT_TTL" not in message
    assert "DRAINER_TEST_SOMETHING" not in message


def test_a_misspelt_variable_of_our_sections_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"DRAINER__DRAINER__NUM_PARTITONS": "8", "DRAINER__SERVER__ZZZ": "1"})
    assert caught.value.problems == (
        "DRAINER__DRAINER__NUM_PARTITONS: unknown setting "
        "(did you mean DRAINER__DRAINER__NUM_PARTITIONS?)",
        "DRAINER__SERVER__ZZZ: unknown setting",
    )


def test_unknown_key_in_a_known_section_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "[drainer]\nnum_partitons = 8\n[tables]\nreflekt = true\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    assert caught.value.problems == (
        f"drainer.num_partitons: unknown key (did you mean num_partitions?) in {path}",
        f"tables.reflekt: unknown key (did you mean reflect?) in {path}",
    )


def test_unknown_sections_and_top_level_keys_are_warned_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path = write(
        tmp_path, "top_level_key = 1\n[drainer]\nmax_attempts = 3\n[log.console]\nlevel = 'DEBUG'\n"
    )
    load_settings(path, env={})
    (warning,) = warnings_from(caplog)
    message = warning.getMessage()
    assert "top_level_key" in message
    assert "[log]" in message


def test_no_warning_for_a_clean_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    load_settings(write(tmp_path, "[drainer]\nnum_partitions = 4\n"), env={})
    assert warnings_from(caplog) == []


# --- defaults ----------------------------------------------------------------------------


def test_defaults_when_nothing_is_given() -> None:
    settings = load_settings(env={})
    d = settings.drainer
    assert d.stream_name == DEFAULT_STREAM_NAME == "DRAINER_STREAM"
    assert d.num_partitions == DEFAULT_NUM_PARTITIONS == 64
    assert d.max_read_count == DEFAULT_MAX_READ_COUNT == 500
    assert d.loop_interval == DEFAULT_LOOP_INTERVAL_MS == 100
    assert d.shutdown_interval == DEFAULT_SHUTDOWN_INTERVAL_MS == 1000
    assert d.consumer_group == DEFAULT_CONSUMER_GROUP == "drainer"
    assert d.claim_min_idle_ms == DEFAULT_CLAIM_MIN_IDLE_MS == 30_000
    assert d.max_attempts == DEFAULT_MAX_ATTEMPTS == 5
    assert d.max_concurrent_partitions == DEFAULT_MAX_CONCURRENT_PARTITIONS == 8
    assert d.shutdown_timeout_s == DEFAULT_SHUTDOWN_TIMEOUT_S == 30.0
    assert d.idle_poll_max_ms == DEFAULT_IDLE_POLL_MAX_MS == 1000
    assert d.slow_batch_ms == DEFAULT_SLOW_BATCH_MS == 2000
    assert d.retry_backoff_base_ms == DEFAULT_RETRY_BACKOFF_BASE_MS == 100
    assert d.retry_backoff_max_ms == DEFAULT_RETRY_BACKOFF_MAX_MS == 30_000
    assert d.consumer_name == f"{socket.gethostname()}-{os.getpid()}"

    db = settings.master_database
    assert (db.host, db.port, db.username, db.dbname) == (
        DEFAULT_DB_HOST,
        DEFAULT_DB_PORT,
        DEFAULT_DB_USERNAME,
        DEFAULT_DB_NAME,
    )
    assert db.password.get_secret_value() == ""
    assert (db.pool_size, db.connection_timeout, db.url) == (
        DEFAULT_DB_POOL_SIZE,
        DEFAULT_DB_CONNECTION_TIMEOUT_S,
        None,
    )
    assert db.sqlalchemy_url() == "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

    r = settings.redis
    assert (r.host, r.port, r.pool_size) == (
        DEFAULT_REDIS_HOST,
        DEFAULT_REDIS_PORT,
        DEFAULT_REDIS_POOL_SIZE,
    )
    assert (r.url, r.cluster_enabled, r.cluster_urls) == (None, False, [])
    assert r.redis_url() == "redis://127.0.0.1:6379"

    s = settings.server
    assert (s.host, s.port, s.admin_token, s.enabled) == (
        DEFAULT_SERVER_HOST,
        DEFAULT_SERVER_PORT,
        None,
        True,
    )

    assert settings.multitenancy.enabled is False
    assert settings.multitenancy.tenants == {}
    t = settings.tables
    assert (t.aliases, t.keys, t.reflect, t.models_module, t.null_sets_null) == (
        {},
        {},
        True,
        None,
        [],
    )
    tel = settings.telemetry
    assert (tel.log_level, tel.log_format, tel.service_name) == (
        DEFAULT_LOG_LEVEL,
        DEFAULT_LOG_FORMAT,
        DEFAULT_SERVICE_NAME,
    )
    assert (tel.otlp_endpoint, tel.traces_enabled, tel.metrics_enabled) == (None, True, True)


def test_consumer_name_uses_pod_name_from_the_given_environment() -> None:
    settings = load_settings(env={"POD_NAME": "drainer-7d9f"})
    assert settings.drainer.consumer_name == f"drainer-7d9f-{os.getpid()}"
    explicit = load_settings(env={"POD_NAME": "x", "DRAINER__DRAINER__CONSUMER_NAME": "c1"})
    assert explicit.drainer.consumer_name == "c1"


def test_settings_are_immutable() -> None:
    settings = load_settings(env={})
    with pytest.raises(ValidationError):
        settings.drainer.num_partitions = 3  # type: ignore[misc]


def test_log_level_and_format_are_normalised() -> None:
    settings = load_settings(
        env={"DRAINER__TELEMETRY__LOG_LEVEL": "warn", "DRAINER__TELEMETRY__LOG_FORMAT": "JSON"}
    )
    assert settings.telemetry.log_level == "WARNING"
    assert settings.telemetry.log_format == "json"


def test_blank_admin_token_means_no_token() -> None:
    assert load_settings(env={"DRAINER__SERVER__ADMIN_TOKEN": ""}).server.admin_token is None
    token = load_settings(env={"DRAINER__SERVER__ADMIN_TOKEN": "t0ken"}).server.admin_token
    assert token is not None
    assert token.get_secret_value() == "t0ken"


# --- errors --------------------------------------------------------------------------------


def test_bad_integer_from_environment_names_key_and_variable() -> None:
    with pytest.raises(SettingsError) as excinfo:
        load_settings(env={"DRAINER__MASTER_DATABASE__PORT": "abc"})
    (line,) = problems_of(excinfo)
    assert line.startswith("master_database.port: must be a valid integer")
    assert "(got 'abc')" in line
    assert line.endswith("from DRAINER__MASTER_DATABASE__PORT")


def test_out_of_range_value_in_file_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[drainer]\nnum_partitions = 0\n")
    with pytest.raises(SettingsError) as excinfo:
        load_settings(path, env={})
    assert problems_of(excinfo) == [
        f"drainer.num_partitions: must be greater than or equal to 1 (got 0) in {path}"
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DRAINER__DRAINER__NUM_PARTITIONS": "16385"},
            "drainer.num_partitions: must be less than or equal to 16384",
        ),
        (
            {"DRAINER__DRAINER__MAX_READ_COUNT": "0"},
            "drainer.max_read_count: must be greater than or equal to 1",
        ),
        (
            {"DRAINER__DRAINER__MAX_ATTEMPTS": "0"},
            "drainer.max_attempts: must be greater than or equal to 1",
        ),
        (
            {"DRAINER__DRAINER__MAX_CONCURRENT_PARTITIONS": "0"},
            "drainer.max_concurrent_partitions:",
        ),
        (
            {"DRAINER__DRAINER__SHUTDOWN_TIMEOUT_S": "0"},
            "drainer.shutdown_timeout_s: must be greater than 0",
        ),
        (
            {"DRAINER__DRAINER__STREAM_NAME": ""},
            "drainer.stream_name: must have at least 1 character",
        ),
        (
            {"DRAINER__DRAINER__IDLE_POLL_MAX_MS": "50"},
            "drainer.idle_poll_max_ms: must be greater than or equal to drainer.loop_interval",
        ),
        (
            {
                "DRAINER__DRAINER__RETRY_BACKOFF_BASE_MS": "500",
                "DRAINER__DRAINER__RETRY_BACKOFF_MAX_MS": "100",
            },
            "drainer.retry_backoff_max_ms: must be greater than or equal to drainer.retry_backoff",
        ),
        ({"DRAINER__SERVER__PORT": "70000"}, "server.port: must be less than or equal to 65535"),
        (
            {"DRAINER__REDIS__CLUSTER_ENABLED": "true"},
            "redis.cluster_urls: must list at least one node",
        ),
        ({"DRAINER__REDIS__CLUSTER_URLS": "no-port"}, "redis.cluster_urls[0]: must be host:port"),
        (
            {"DRAINER__REDIS__USERNAME": "u"},
            "redis.password: is required when redis.username is set",
        ),
        ({"DRAINER__REDIS__URL": "http://x"}, "redis.url: must start with redis://"),
        (
            {"DRAINER__MASTER_DATABASE__URL": "mysql://x/y"},
            "master_database.url: must start with postgres://",
        ),
        (
            {"DRAINER__TABLES__REFLECT": "false"},
            "tables.models_module: is required when tables.reflect is false",
        ),
        (
            {"DRAINER__TABLES__MODELS_MODULE": "my-app/models"},
            "tables.models_module: must be a dotted module path",
        ),
        (
            {"DRAINER__TABLES__KEYS__ADDRESS": "[]"},
            "tables.keys.address: must list at least one key column",
        ),
        ({"DRAINER__TABLES__ALIASES": "not json"}, "tables.aliases: is not a valid JSON object"),
        ({"DRAINER__TELEMETRY__LOG_LEVEL": "LOUD"}, "telemetry.log_level: must be one of CRITICAL"),
        (
            {"DRAINER__TELEMETRY__LOG_FORMAT": "xml"},
            "telemetry.log_format: must be 'text' or 'json'",
        ),
        (
            {"DRAINER__TELEMETRY__OTLP_ENDPOINT": "otel:4318"},
            "telemetry.otlp_endpoint: must be an http://",
        ),
        (
            {"DRAINER__MULTITENANCY__ENABLED": "true"},
            "multitenancy.tenants: must define at least one tenant",
        ),
        (
            {"DRAINER__MULTITENANCY__TENANTS__A__REDIS_KEY_PREFIX": "a"},
            "multitenancy.tenants.a.schema: is required",
        ),
        (
            {"DRAINER__MULTITENANCY__TENANTS__A__SCHEMA": "bad-schema"},
            "multitenancy.tenants.a.schema: must contain only letters, digits and underscores",
        ),
        (
            {"DRAINER__MULTITENANCY__TENANTS__BAD-ID__SCHEMA": "ok"},
            "multitenancy.tenants.bad-id: tenant id must contain only letters, digits and",
        ),
        ({"DRAINER__REDIS": "{not json"}, "redis: DRAINER__REDIS is not a valid JSON object"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as excinfo:
        load_settings(env=env)
    message = str(excinfo.value)
    assert expected in message
    assert "validation error" not in message
    assert "errors.pydantic.dev" not in message


def test_reflect_off_without_module_names_both_keys() -> None:
    with pytest.raises(SettingsError) as excinfo:
        load_settings(env={"DRAINER__TABLES__REFLECT": "false"})
    message = str(excinfo.value)
    assert "tables.reflect" in message
    assert "tables.models_module" in message
    settings = load_settings(
        env={"DRAINER__TABLES__REFLECT": "false", "DRAINER__TABLES__MODELS_MODULE": "myapp.models"}
    )
    assert settings.tables.models_module == "myapp.models"


def test_duplicate_tenant_schemas_and_prefixes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [multitenancy]
        enabled = true
        [multitenancy.tenants.a]
        schema = "shared"
        redis_key_prefix = "p"
        [multitenancy.tenants.b]
        schema = "shared"
        redis_key_prefix = "p"
        """,
    )
    with pytest.raises(SettingsError) as excinfo:
        load_settings(path, env={})
    tenant_b = "multitenancy.tenants.b"
    assert problems_of(excinfo) == [
        f"{tenant_b}.schema: schema 'shared' is already used by tenant 'a' in {path}",
        f"{tenant_b}.redis_key_prefix: prefix 'p' is already used by tenant 'a' in {path}",
    ]


def test_every_problem_on_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[drainer]\nnum_partitions = 0\n[server]\nport = 'eighty'\n")
    with pytest.raises(SettingsError) as excinfo:
        load_settings(path, env={"DRAINER__REDIS__PORT": "-1"})
    lines = problems_of(excinfo)
    assert len(lines) == 3
    assert excinfo.value.problems == tuple(lines)
    assert {line.split(":", 1)[0] for line in lines} == {
        "drainer.num_partitions",
        "server.port",
        "redis.port",
    }


def test_secrets_are_not_echoed_in_errors() -> None:
    with pytest.raises(SettingsError) as excinfo:
        load_settings(env={"DRAINER__MASTER_DATABASE__URL": "mysql://user:hunter2@db/x"})
    assert "hunter2" not in str(excinfo.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError) as excinfo:
        load_settings(missing, env={})
    assert str(excinfo.value) == f"{missing}: configuration file not found"


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[drainer]\nnum_partitions = 4\nstream_name = \n")
    with pytest.raises(SettingsError) as excinfo:
        load_settings(path, env={})
    message = str(excinfo.value)
    assert message.startswith(f"{path}:3:")
    assert "invalid TOML" in message


def test_config_path_may_be_a_string() -> None:
    assert load_settings(str(HYPERSWITCH_FILE), env={}).drainer.num_partitions == 32


# --- URLs ----------------------------------------------------------------------------------


def test_sqlalchemy_url_from_parts_escapes_special_characters() -> None:
    db = DatabaseSettings(
        username="us@er:1",
        password="p@ss:w/o#rd%?&",
        host="db.internal",
        port=6543,
        dbname="hyper/switch",
    )
    url = db.sqlalchemy_url()
    assert url.startswith("postgresql+asyncpg://")
    parsed = make_url(url)
    assert parsed.drivername == "postgresql+asyncpg"
    assert parsed.username == "us@er:1"
    assert parsed.password == "p@ss:w/o#rd%?&"
    assert (parsed.host, parsed.port, parsed.database) == ("db.internal", 6543, "hyper/switch")


def test_sqlalchemy_url_ipv6_host() -> None:
    assert (
        DatabaseSettings(host="::1").sqlalchemy_url()
        == "postgresql+asyncpg://postgres@[::1]:5432/postgres"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@h:5/d?ssl=require",
        "postgresql://u:p@h:5/d?ssl=require",
        "postgresql+asyncpg://u:p@h:5/d?ssl=require",
    ],
)
def test_sqlalchemy_url_from_url_wins_over_parts(url: str) -> None:
    settings = load_settings(
        env={"DRAINER__MASTER_DATABASE__URL": url, "DRAINER__MASTER_DATABASE__HOST": "ignored"}
    )
    assert settings.master_database.sqlalchemy_url() == "postgresql+asyncpg://u:p@h:5/d?ssl=require"


def test_url_is_kept_secret_in_repr() -> None:
    settings = load_settings(env={"DRAINER__MASTER_DATABASE__URL": "postgresql://u:hunter2@h/d"})
    assert "hunter2" not in repr(settings)


def test_redis_url_forms() -> None:
    assert RedisSettings(host="r", port=7000).redis_url() == "redis://r:7000"
    with_auth = RedisSettings(username="u", password="p@ss", tls_enabled=True)
    assert with_auth.redis_url() == "rediss://u:p%40ss@127.0.0.1:6379"
    from_url = RedisSettings(url="redis://x:1/2", host="ignored")
    assert from_url.redis_url() == "redis://x:1/2"
    cluster = RedisSettings(cluster_enabled=True, cluster_urls=["n1:7000", "redis://n2:7001"])
    assert cluster.redis_url() == "redis://n1:7000"
    assert cluster.cluster_node_urls() == ["redis://n1:7000", "redis://n2:7001"]


# --- tenants -------------------------------------------------------------------------------


def test_tenants_when_multitenancy_is_disabled() -> None:
    # every listed tenant, enabled or not, as Hyperswitch's Rust drainer (main.rs)
    settings = load_settings(HYPERSWITCH_FILE, env={"DRAINER__MULTITENANCY__ENABLED": "false"})
    assert settings.tenants() == [
        Tenant("public", "public", ""),
        Tenant("tenant_a", "tenant_a", "tenant_a"),
    ]
    assert load_settings(env={}).tenants() == [Tenant("public", "public", "")]


def test_tenants_keep_configuration_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [multitenancy]
        enabled = true
        [multitenancy.tenants.zeta]
        schema = "zeta"
        redis_key_prefix = "z"
        [multitenancy.tenants.alpha]
        schema = "alpha"
        """,
    )
    tenants = load_settings(path, env={}).tenants()
    assert tenants == [Tenant("zeta", "zeta", "z"), Tenant("alpha", "alpha", "")]
    with pytest.raises(AttributeError):
        tenants[0].schema = "other"  # type: ignore[misc]


def test_tenants_of_an_unvalidated_settings_object_still_refuses_no_tenants() -> None:
    settings = Settings.model_construct(
        multitenancy=settings_module.MultitenancySettings.model_construct(enabled=True, tenants={})
    )
    with pytest.raises(SettingsError, match=r"^multitenancy\.tenants: "):
        settings.tenants()


# --- the example file ----------------------------------------------------------------------


def test_example_file_loads(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert load_settings(EXAMPLE_FILE, env={}) == load_settings(env={})
    assert warnings_from(caplog) == []


def test_example_file_defaults_are_the_real_defaults(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    text = EXAMPLE_FILE.read_text()
    uncommented, count = re.subn(r"(?m)^# (\w+ = .*)$", r"\1", text)
    assert count >= 35
    settings = load_settings(write(tmp_path, uncommented), env={})
    assert settings == load_settings(env={})
    assert warnings_from(caplog) == []


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE_FILE.read_text()
    for section, model in Settings.model_fields.items():
        assert f"[{section}]" in text
        annotation = model.annotation
        assert isinstance(annotation, type)
        for name, field in annotation.model_fields.items():
            key = field.alias or name
            documented = rf"(?m)^# (e\.g\. )?({key} = |\[{section}\.{key}[.\]])"
            assert re.search(documented, text), f"{section}.{key}"


def test_drainer_section_defaults_match_constants() -> None:
    assert DrainerSettings().model_dump(exclude={"consumer_name"}) == (
        load_settings(env={}).drainer.model_dump(exclude={"consumer_name"})
    )
