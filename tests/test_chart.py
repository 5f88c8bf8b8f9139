"""The Helm chart under helm/drainer: lint, render and check what a user relies on.

Rendering runs in-process through helm-python-sdk (Helm v4's Go SDK, no helm
binary, no cluster, no network). Core Kubernetes objects are validated with
kubernetes-validate in strict mode (unknown fields rejected); the CRD objects
(KEDA ScaledObject, Prometheus Operator ServiceMonitor) are checked by shape.
"""

from __future__ import annotations

import base64
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from drainer.consumers.streams import StreamLayout
from drainer.settings import Settings, load_settings

CHART = Path(__file__).resolve().parent.parent / "helm" / "drainer"
RELEASE = "rel"
NAMESPACE = "payments"
FULLNAME = "rel-drainer"
K8S_VERSION = "1.34.0"
CORE_KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Secret",
    "Service",
    "ServiceAccount",
}
CRD_KINDS = {"ScaledObject", "ServiceMonitor"}
POD_NAME = "rel-drainer-5d9c7b8f6-x2x4q"

KEDA_REDIS = {"autoscaling": {"enabled": True, "mode": "keda"}}
KEDA_METRICS_API = {
    "autoscaling": {"enabled": True, "mode": "keda", "keda": {"triggerType": "metricsApi"}}
}
HPA = {"autoscaling": {"enabled": True, "mode": "hpa"}}
TWO_TENANTS = {
    "multitenancy": {
        "enabled": True,
        "tenants": {
            "acme": {"schema": "acme", "redisKeyPrefix": "acme"},
            "globex": {"schema": "globex", "redisKeyPrefix": "globex"},
        },
    }
}
REDIS_CLUSTER = {
    "redis": {
        "clusterEnabled": True,
        "clusterUrls": [
            "redis://redis-cluster-0.redis-cluster:6379",
            "redis://redis-cluster-1.redis-cluster:6379",
            "redis-cluster-2.redis-cluster:6380",
        ],
    }
}


class Rendered:
    """The manifests of one render, as text per template and as parsed objects."""

    def __init__(self, manifests: dict[str, str]) -> None:
        self.text = {Path(path).name: body for path, body in manifests.items()}
        self.objects: list[dict[str, Any]] = []
        for path, body in manifests.items():
            if path.endswith(".txt"):
                continue
            self.objects.extend(doc for doc in yaml.safe_load_all(body) if doc)

    def kinds(self) -> set[str]:
        return {obj["kind"] for obj in self.objects}

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def container(self) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.deployment["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]

    def env(self) -> dict[str, dict[str, Any]]:
        return {var["name"]: var for var in self.container.get("env", [])}

    def settings(self) -> dict[str, Any]:
        return tomllib.loads(self.one("ConfigMap")["data"]["drainer.toml"])

    def triggers(self) -> list[dict[str, Any]]:
        triggers: list[dict[str, Any]] = self.one("ScaledObject")["spec"]["triggers"]
        return triggers


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, *overrides: dict[str, Any]) -> Rendered:
    values: dict[str, Any] = {}
    for override in overrides:
        values = deep_merge(values, override)
    rendered = Rendered(chart.render(values, name=RELEASE, namespace=NAMESPACE))
    validate_objects(rendered)
    return rendered


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate_objects(rendered: Rendered) -> None:
    """Strict schema validation of every core object; CRDs must at least be well formed."""
    for obj in rendered.objects:
        kind = obj["kind"]
        assert kind in CORE_KINDS | CRD_KINDS, f"unexpected kind {kind}"
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        if kind in CORE_KINDS:
            assert obj["metadata"]["namespace"] == NAMESPACE
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        else:
            assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}


def expected_streams(partitions: int, prefixes: list[str]) -> list[str]:
    return [
        f"{prefix + ':' if prefix else ''}{{shard_{n}}}_DRAINER_STREAM"
        for prefix in prefixes
        for n in range(partitions)
    ]


def http_port(container: dict[str, Any]) -> int:
    ports: dict[str, int] = {port["name"]: port["containerPort"] for port in container["ports"]}
    return ports["http"]


# --- lint -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [{}, KEDA_REDIS, KEDA_METRICS_API, HPA, TWO_TENANTS, REDIS_CLUSTER],
    ids=["default", "keda-redis", "keda-metrics-api", "hpa", "tenants", "cluster"],
)
def test_lint_is_clean_in_strict_mode(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


# --- defaults ---------------------------------------------------------------------------


def test_default_render_has_the_core_objects_only(chart: helm.Chart) -> None:
    rendered = render(chart)
    assert rendered.kinds() == {
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    }
    assert rendered.deployment["spec"]["replicas"] == 2


def test_probes_hit_health_endpoints_on_the_container_port(chart: helm.Chart) -> None:
    container = render(chart).container
    assert http_port(container) == 8080
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}


def test_server_port_moves_container_port_service_and_settings_together(
    chart: helm.Chart,
) -> None:
    rendered = render(chart, {"server": {"port": 9000}})
    assert http_port(rendered.container) == 9000
    assert rendered.settings()["server"]["port"] == 9000
    service_port = rendered.one("Service")["spec"]["ports"][0]
    assert service_port["targetPort"] == "http"
    assert rendered.container["livenessProbe"]["httpGet"]["port"] == "http"


def test_service_and_pdb_select_the_drainer_pods(chart: helm.Chart) -> None:
    rendered = render(chart)
    pod_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        rendered.one("Service")["spec"]["selector"],
        rendered.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        rendered.deployment["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    assert rendered.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert rendered.one("Service")["spec"]["ports"][0]["name"] == "http"


@pytest.mark.parametrize("timeout", [30, 120, 7.5])
def test_termination_grace_exceeds_the_shutdown_deadline(chart: helm.Chart, timeout: float) -> None:
    rendered = render(chart, {"drainer": {"shutdownTimeoutS": timeout}})
    grace = rendered.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert rendered.settings()["drainer"]["shutdown_timeout_s"] == timeout
    assert grace > timeout
    assert grace == math.ceil(timeout) + 15
    assert "lifecycle" not in rendered.container  # no preStop: the app drains on SIGTERM


def test_pod_is_locked_down(chart: helm.Chart) -> None:
    rendered = render(chart)
    pod = rendered.deployment["spec"]["template"]["spec"]
    ctx = rendered.container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in rendered.container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/etc/drainer"]]["configMap"]["name"] == FULLNAME
    assert rendered.container["args"] == ["run", "--config", "/etc/drainer/drainer.toml"]
    assert pod["serviceAccountName"] == rendered.one("ServiceAccount")["metadata"]["name"]
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_consumer_name_comes_from_the_pod_name(chart: helm.Chart) -> None:
    env = render(chart).env()
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["DRAINER__SERVER__HOST"]["value"] == "0.0.0.0"
    assert "DRAINER__DRAINER__CONSUMER_NAME" not in env


def test_config_change_rolls_the_pods(chart: helm.Chart) -> None:
    def checksum(rendered: Rendered) -> str:
        annotations = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    before = checksum(render(chart))
    assert checksum(render(chart)) == before
    assert checksum(render(chart, {"drainer": {"maxReadCount": 500}})) != before


def test_every_optional_pod_setting_renders_valid_objects(chart: helm.Chart) -> None:
    rendered = render(
        chart,
        {
            "imagePullSecrets": [{"name": "regcred"}],
            "image": {"repository": "registry.example.com/drainer", "tag": "1.2.3"},
            "podAnnotations": {"team": "payments"},
            "podLabels": {"tier": "backend"},
            "priorityClassName": "high",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "drainer"}],
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "drainer"}},
                }
            ],
            "extraEnv": [{"name": "DRAINER__TELEMETRY__LOG_LEVEL", "value": "DEBUG"}],
            "extraEnvFrom": [{"configMapRef": {"name": "extra"}}],
            "extraVolumes": [{"name": "certs", "secret": {"secretName": "pg-ca"}}],
            "extraVolumeMounts": [{"name": "certs", "mountPath": "/certs", "readOnly": True}],
            "service": {"annotations": {"a": "b"}},
            "serviceAccount": {"annotations": {"iam": "role"}},
            "podDisruptionBudget": {"minAvailable": 1},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "pool", "operator": "In", "values": ["a"]}
                                ]
                            }
                        ]
                    }
                }
            },
        },
    )
    pod = rendered.deployment["spec"]["template"]["spec"]
    assert rendered.container["image"] == "registry.example.com/drainer:1.2.3"
    assert pod["priorityClassName"] == "high"
    assert "podAntiAffinity" not in pod["affinity"]  # an explicit affinity replaces the preset
    assert rendered.env()["DRAINER__TELEMETRY__LOG_LEVEL"]["value"] == "DEBUG"
    assert {"name": "certs", "mountPath": "/certs", "readOnly": True} in rendered.container[
        "volumeMounts"
    ]
    pdb = rendered.one("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1
    assert "maxUnavailable" not in pdb


# --- settings ---------------------------------------------------------------------------


def test_configmap_toml_carries_the_settings(chart: helm.Chart) -> None:
    settings = render(chart).settings()
    assert settings["drainer"] == {
        "stream_name": "DRAINER_STREAM",
        "num_partitions": 64,
        "max_read_count": 100,
        "consumer_group": "drainer",
        "claim_min_idle_ms": 30000,
        "max_attempts": 5,
        "max_concurrent_partitions": 8,
        "shutdown_timeout_s": 30,
    }
    assert settings["master_database"] == {
        "host": "postgres",
        "port": 5432,
        "username": "drainer",
        "dbname": "drainer",
    }
    assert settings["redis"] == {"host": "redis", "port": 6379, "cluster_enabled": False}
    assert settings["server"] == {"port": 8080}
    assert settings["multitenancy"] == {"enabled": False}
    assert settings["telemetry"]["log_format"] == "json"


def test_configmap_toml_renders_overrides_and_extra_config(chart: helm.Chart) -> None:
    settings = render(
        chart,
        {
            "drainer": {"numPartitions": 16, "loopInterval": 250, "streamName": "MY_STREAM"},
            "masterDatabase": {"poolSize": 20},
            "redis": {"url": "redis://redis-primary:6379/0"},
            "tables": {
                "aliases": {"reverse_look_up": "reverse_lookup", "customer": "customers"},
                "keys": {"payment_intent": ["payment_id", "merchant_id"]},
                "reflect": True,
                "modelsModule": "myapp.models",
            },
            "telemetry": {"otlpEndpoint": "http://otel:4318"},
            "extraConfig": {"master_database": {"connection_timeout": 7}},
        },
    ).settings()
    assert settings["drainer"]["num_partitions"] == 16
    assert settings["drainer"]["loop_interval"] == 250
    assert settings["drainer"]["stream_name"] == "MY_STREAM"
    assert settings["master_database"]["pool_size"] == 20
    assert settings["master_database"]["connection_timeout"] == 7
    assert settings["redis"] == {"url": "redis://redis-primary:6379/0", "cluster_enabled": False}
    assert settings["tables"] == {
        "aliases": {"reverse_look_up": "reverse_lookup", "customer": "customers"},
        "keys": {"payment_intent": ["payment_id", "merchant_id"]},
        "reflect": True,
        "models_module": "myapp.models",
    }
    assert settings["telemetry"]["otlp_endpoint"] == "http://otel:4318"


def test_configmap_toml_lists_tenants(chart: helm.Chart) -> None:
    settings = render(chart, TWO_TENANTS).settings()
    assert settings["multitenancy"] == {
        "enabled": True,
        "tenants": {
            "acme": {"schema": "acme", "redis_key_prefix": "acme"},
            "globex": {"schema": "globex", "redis_key_prefix": "globex"},
        },
    }


# --- secrets ----------------------------------------------------------------------------

PASSWORD = "pw-Zq8!never-inline"
ADMIN_TOKEN = "tok-Xv3-never-inline"


def assert_secrets_not_inlined(rendered: Rendered, *secrets: str) -> None:
    for template in ("configmap.yaml", "deployment.yaml"):
        for secret in secrets:
            encoded = base64.b64encode(secret.encode()).decode()
            assert secret not in rendered.text[template]
            assert encoded not in rendered.text[template]
    env = rendered.env()
    for name in ("DRAINER__MASTER_DATABASE__PASSWORD", "DRAINER__SERVER__ADMIN_TOKEN"):
        assert "value" not in env[name]
        assert "secretKeyRef" in env[name]["valueFrom"]


def test_chart_created_secret_is_referenced_not_inlined(chart: helm.Chart) -> None:
    rendered = render(chart, {"secrets": {"databasePassword": PASSWORD, "adminToken": ADMIN_TOKEN}})
    secret = rendered.one("Secret")
    assert secret["metadata"]["name"] == FULLNAME
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"database-password": PASSWORD, "admin-token": ADMIN_TOKEN}
    env = rendered.env()
    assert env["DRAINER__MASTER_DATABASE__PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": FULLNAME,
        "key": "database-password",
    }
    assert env["DRAINER__SERVER__ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": FULLNAME,
        "key": "admin-token",
    }
    assert_secrets_not_inlined(rendered, PASSWORD, ADMIN_TOKEN)
    annotations = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" in annotations


OPERATOR_TOKEN = "op-Zq4-never-inline"


def test_operator_token_reaches_the_app_from_the_chart_secret(chart: helm.Chart) -> None:
    rendered = render(chart, {"secrets": {"operatorToken": OPERATOR_TOKEN}})
    secret = rendered.one("Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"operator-token": OPERATOR_TOKEN}
    env = rendered.env()
    assert env["DRAINER__SERVER__OPERATOR_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": FULLNAME,
        "key": "operator-token",
    }
    assert "DRAINER__SERVER__ADMIN_TOKEN" not in env
    encoded = base64.b64encode(OPERATOR_TOKEN.encode()).decode()
    for template in ("configmap.yaml", "deployment.yaml"):
        assert OPERATOR_TOKEN not in rendered.text[template]
        assert encoded not in rendered.text[template]


def test_existing_secret_is_referenced_by_name(chart: helm.Chart) -> None:
    rendered = render(
        chart,
        {
            "secrets": {
                "existingSecret": "drainer-credentials",
                "databasePasswordKey": "pg-password",
                "adminTokenKey": "token",
                # Ignored when existingSecret is set: must not leak anywhere.
                "databasePassword": PASSWORD,
                "adminToken": ADMIN_TOKEN,
            }
        },
    )
    assert "Secret" not in rendered.kinds()
    env = rendered.env()
    password_ref = env["DRAINER__MASTER_DATABASE__PASSWORD"]["valueFrom"]["secretKeyRef"]
    token_ref = env["DRAINER__SERVER__ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert password_ref == {"name": "drainer-credentials", "key": "pg-password"}
    assert token_ref["name"] == "drainer-credentials"
    assert token_ref["key"] == "token"
    assert_secrets_not_inlined(rendered, PASSWORD, ADMIN_TOKEN)
    for body in rendered.text.values():
        assert PASSWORD not in body
        assert ADMIN_TOKEN not in body


def test_settings_never_carry_a_password_key(chart: helm.Chart) -> None:
    rendered = render(chart, {"secrets": {"databasePassword": PASSWORD}})
    assert "password" not in rendered.settings()["master_database"]


REDIS_PASSWORD = "rpw-Kd9-never-inline"


def test_redis_password_from_existing_secret_reaches_app_and_keda(chart: helm.Chart) -> None:
    rendered = render(
        chart,
        KEDA_REDIS,
        {
            "drainer": {"numPartitions": 2},
            "redis": {"auth": True, "username": "drainer"},
            "secrets": {"existingSecret": "drainer-credentials", "redisPasswordKey": "redis"},
        },
    )
    env = rendered.env()
    assert env["DRAINER__REDIS__PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "drainer-credentials",
        "key": "redis",
    }
    assert env["DRAINER__REDIS__USERNAME"]["value"] == "drainer"
    for trigger in rendered.triggers():
        # KEDA resolves *FromEnv against the scale target's container env.
        assert trigger["metadata"]["passwordFromEnv"] == "DRAINER__REDIS__PASSWORD"
        assert trigger["metadata"]["usernameFromEnv"] == "DRAINER__REDIS__USERNAME"


def test_chart_created_redis_password_is_not_inlined(chart: helm.Chart) -> None:
    rendered = render(chart, KEDA_REDIS, {"secrets": {"redisPassword": REDIS_PASSWORD}})
    secret = rendered.one("Secret")
    assert base64.b64decode(secret["data"]["redis-password"]).decode() == REDIS_PASSWORD
    ref = rendered.env()["DRAINER__REDIS__PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": FULLNAME, "key": "redis-password"}
    for template in ("configmap.yaml", "deployment.yaml", "scaledobject.yaml"):
        assert REDIS_PASSWORD not in rendered.text[template]


# --- the app reads what the chart renders -----------------------------------------------


def app_settings(rendered: Rendered, tmp_path: Path, secrets: dict[str, str]) -> Settings:
    """Load the rendered drainer.toml with the pod's environment, as the container would."""
    config = tmp_path / "drainer.toml"
    config.write_text(rendered.one("ConfigMap")["data"]["drainer.toml"])
    fields = {"metadata.name": POD_NAME, "metadata.namespace": NAMESPACE}
    env: dict[str, str] = {}
    for name, var in rendered.env().items():
        if "value" in var:
            env[name] = var["value"]
        elif "fieldRef" in var["valueFrom"]:
            env[name] = fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            if ref.get("optional") and ref["key"] not in secrets:
                continue  # an optional key the Secret lacks: Kubernetes sets nothing
            env[name] = secrets[ref["key"]]
    return load_settings(config, env=env)


def app_streams(settings: Settings) -> set[str]:
    drainer = settings.drainer
    return {
        stream
        for tenant in settings.tenants()
        for stream in StreamLayout(
            drainer.stream_name, drainer.num_partitions, tenant.redis_key_prefix
        ).all_streams()
    }


@pytest.mark.parametrize(
    "values",
    [{}, TWO_TENANTS, REDIS_CLUSTER, {"drainer": {"numPartitions": 16, "streamName": "OPS"}}],
    ids=["default", "tenants", "cluster", "partitions"],
)
def test_app_loads_the_rendered_settings_and_keda_watches_its_streams(
    chart: helm.Chart, tmp_path: Path, values: dict[str, Any]
) -> None:
    secrets = {"database-password": PASSWORD, "admin-token": ADMIN_TOKEN}
    rendered = render(
        chart,
        KEDA_REDIS,
        values,
        {"secrets": {"existingSecret": "drainer-credentials"}},
    )
    settings = app_settings(rendered, tmp_path, secrets)
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == http_port(rendered.container)
    assert settings.master_database.password.get_secret_value() == PASSWORD
    admin_token = settings.server.admin_token
    assert admin_token is not None
    assert admin_token.get_secret_value() == ADMIN_TOKEN
    assert settings.drainer.consumer_name.startswith(POD_NAME)
    assert (
        settings.drainer.shutdown_timeout_s
        < (rendered.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])
    )
    keda_streams = [t["metadata"]["stream"] for t in rendered.triggers()]
    assert len(keda_streams) == len(set(keda_streams))
    assert set(keda_streams) == app_streams(settings)


# --- KEDA -------------------------------------------------------------------------------


@pytest.mark.parametrize("partitions", [64, 8, 1])
def test_keda_redis_streams_triggers_cover_every_partition_once(
    chart: helm.Chart, partitions: int
) -> None:
    rendered = render(chart, KEDA_REDIS, {"drainer": {"numPartitions": partitions}})
    assert "replicas" not in rendered.deployment["spec"]
    assert "HorizontalPodAutoscaler" not in rendered.kinds()  # KEDA creates its own
    triggers = rendered.triggers()
    streams = [t["metadata"]["stream"] for t in triggers]
    assert len(streams) == partitions
    assert sorted(streams) == sorted(expected_streams(partitions, [""]))
    per_stream = max(1, math.ceil(1000 / partitions))
    for trigger in triggers:
        assert trigger["type"] == "redis-streams"
        assert trigger["metadata"]["address"] == "redis:6379"
        assert trigger["metadata"]["streamLength"] == str(per_stream)
        # With consumerGroup KEDA would measure XPENDING instead of XLEN.
        assert "consumerGroup" not in trigger["metadata"]
        assert all(isinstance(v, str) for v in trigger["metadata"].values())


def test_scaled_object_targets_the_deployment_with_bounds_and_behavior(
    chart: helm.Chart,
) -> None:
    rendered = render(
        chart,
        KEDA_REDIS,
        {"autoscaling": {"minReplicas": 2, "maxReplicas": 12, "keda": {"pollingInterval": 5}}},
    )
    scaled = rendered.one("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": rendered.deployment["metadata"]["name"],
    }
    assert scaled["spec"]["minReplicaCount"] == 2
    assert scaled["spec"]["maxReplicaCount"] == 12
    assert scaled["spec"]["pollingInterval"] == 5
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_keda_triggers_cover_every_tenant_prefix(chart: helm.Chart) -> None:
    rendered = render(chart, KEDA_REDIS, TWO_TENANTS, {"drainer": {"numPartitions": 4}})
    streams = [t["metadata"]["stream"] for t in rendered.triggers()]
    assert len(streams) == len(set(streams)) == 8
    assert set(streams) == set(expected_streams(4, ["acme", "globex"]))
    assert "acme:{shard_3}_DRAINER_STREAM" in streams
    assert all(
        t["metadata"]["streamLength"] == str(math.ceil(1000 / 8)) for t in rendered.triggers()
    )


def test_keda_tenant_without_prefix_gets_unprefixed_streams(chart: helm.Chart) -> None:
    tenants = {
        "multitenancy": {
            "enabled": True,
            "tenants": {
                "public": {"schema": "public", "redisKeyPrefix": ""},
                "acme": {"schema": "acme", "redisKeyPrefix": "acme"},
            },
        }
    }
    rendered = render(chart, KEDA_REDIS, tenants, {"drainer": {"numPartitions": 3}})
    streams = [t["metadata"]["stream"] for t in rendered.triggers()]
    assert sorted(streams) == sorted(expected_streams(3, ["", "acme"]))


def test_keda_stream_length_override_and_redis_url(chart: helm.Chart) -> None:
    rendered = render(
        chart,
        KEDA_REDIS,
        {
            "drainer": {"numPartitions": 2},
            "redis": {"url": "rediss://redis.example:6380/2"},
            "autoscaling": {"keda": {"streamLength": 50, "authenticationRef": "redis-auth"}},
        },
    )
    for trigger in rendered.triggers():
        assert trigger["metadata"]["address"] == "redis.example:6380"
        assert trigger["metadata"]["streamLength"] == "50"
        assert trigger["metadata"]["enableTLS"] == "true"
        assert trigger["metadata"]["databaseIndex"] == "2"
        assert trigger["authenticationRef"] == {"name": "redis-auth"}


def test_keda_metrics_api_trigger_reads_total_from_pending(chart: helm.Chart) -> None:
    rendered = render(chart, KEDA_METRICS_API, {"autoscaling": {"targetBacklogPerReplica": 250}})
    assert "replicas" not in rendered.deployment["spec"]
    (trigger,) = rendered.triggers()
    service = rendered.one("Service")
    assert trigger["type"] == "metrics-api"
    assert trigger["metadata"] == {
        "url": f"http://{service['metadata']['name']}.{NAMESPACE}.svc:8080/pending",
        "format": "json",
        "valueLocation": "total",
        "targetValue": "250",
    }
    assert service["spec"]["ports"][0]["port"] == 8080


# --- HPA --------------------------------------------------------------------------------


def test_hpa_mode_scales_on_the_external_backlog_metric(chart: helm.Chart) -> None:
    rendered = render(
        chart,
        HPA,
        {"autoscaling": {"minReplicas": 2, "maxReplicas": 10, "targetBacklogPerReplica": 400}},
    )
    assert "replicas" not in rendered.deployment["spec"]
    assert "ScaledObject" not in rendered.kinds()
    hpa = rendered.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"]["name"] == rendered.deployment["metadata"]["name"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    (metric,) = spec["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "drainer_pending_entries"
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "400"}
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_hpa_metric_name_and_selector_are_configurable(chart: helm.Chart) -> None:
    selector = {"matchLabels": {"service": "drainer"}}
    rendered = render(
        chart,
        HPA,
        {"autoscaling": {"hpa": {"metricName": "drainer_backlog", "metricSelector": selector}}},
    )
    metric = rendered.one("HorizontalPodAutoscaler")["spec"]["metrics"][0]["external"]["metric"]
    assert metric == {"name": "drainer_backlog", "selector": selector}


# --- Redis Cluster ----------------------------------------------------------------------


def test_redis_cluster_settings_and_keda_cluster_triggers(chart: helm.Chart) -> None:
    rendered = render(chart, KEDA_REDIS, REDIS_CLUSTER, {"drainer": {"numPartitions": 4}})
    redis = rendered.settings()["redis"]
    assert redis["cluster_enabled"] is True
    assert redis["cluster_urls"] == REDIS_CLUSTER["redis"]["clusterUrls"]
    triggers = rendered.triggers()
    assert len(triggers) == 4
    for trigger in triggers:
        assert trigger["type"] == "redis-cluster-streams"
        assert "address" not in trigger["metadata"]
        assert trigger["metadata"]["addresses"] == (
            "redis-cluster-0.redis-cluster:6379,"
            "redis-cluster-1.redis-cluster:6379,"
            "redis-cluster-2.redis-cluster:6380"
        )
    # Every stream key carries its {shard_N} hash tag: one partition, one cluster slot.
    assert {t["metadata"]["stream"] for t in triggers} == set(expected_streams(4, [""]))


# --- ServiceMonitor ---------------------------------------------------------------------


def test_service_monitor_scrapes_metrics_from_the_service(chart: helm.Chart) -> None:
    rendered = render(chart, {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}})
    monitor = rendered.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    service_labels = rendered.one("Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()


# --- rejected values --------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"autoscaling": {"mode": "foo"}},
        {"autoscaling": {"keda": {"triggerType": "prometheus"}}},
        {"drainer": {"numPartitions": 0}},
        {"replicaCount": -1},
        {"autoscaling": {"minReplicas": 0}},
        {"drainer": {"shutdownTimeoutS": "30s"}},
        {"terminationGraceMarginS": 0},
        {"telemetry": {"logFormat": "xml"}},
        {"multitenancy": {"tenants": {"acme": {"schema": "acme"}}}},
        {"redis": {"clusterUrls": ["redis://redis-cluster-0"]}},
        {"drainer": {"numPartitionz": 8}},
    ],
    ids=[
        "mode",
        "trigger-type",
        "partitions",
        "replicas",
        "min-replicas",
        "timeout-type",
        "grace-margin",
        "log-format",
        "tenant-prefix",
        "cluster-url",
        "typo",
    ],
)
def test_schema_rejects_bad_values(chart: helm.Chart, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert helm.lint(CHART, values)["errors"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}},
            "must not exceed",
        ),
        ({"multitenancy": {"enabled": True}}, "tenants is empty"),
        (
            {
                "multitenancy": {
                    "enabled": True,
                    "tenants": {
                        "acme": {"schema": "acme", "redisKeyPrefix": "acme"},
                        "acme_eu": {"schema": "acme_eu", "redisKeyPrefix": "acme"},
                    },
                }
            },
            "share redisKeyPrefix",
        ),
        ({"redis": {"auth": True}}, "redis.auth needs"),
        ({"redis": {"username": "drainer"}}, "needs a Redis password"),
    ],
)
def test_inconsistent_values_fail_the_render(
    chart: helm.Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmError, match=message):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


def test_default_values_pass_the_schema(chart: helm.Chart) -> None:
    chart.validate_schema(chart.values)
