"""The Kubernetes objects of one service, as data: what tools/manifests.py writes to each base.

A service runs as a Deployment whose pods first migrate (an init container, `alembic upgrade
head`, serialized by the migrations' advisory lock), then serve; its schema gates readiness
(`/health/ready`), so a pod whose migration failed never receives traffic and the rollout stops
there. Every pod runs as the image's non-root user, on a read-only root filesystem, with no
capability and no service-account token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kubernetes_pods as pods
from common.settings import METRICS_PORT
from monorepo import ServiceFacts

HTTP_PORT = 8000  # what the images listen on (their CMD)
PGBOUNCER_PORT = 5432  # the pooler's Service: clients use Postgres's usual port
NATS_PORT = 4222
OTLP_HTTP_PORT = 4318  # an OpenTelemetry Collector's OTLP over HTTP
# The OpenTelemetry Collector chart's pods, which receive the traces.
COLLECTOR = "opentelemetry-collector"
# The images' user (services/*/Dockerfile: `USER 10001:10001`).
APP_USER = 10001
# Seconds the pod keeps serving after it is told to stop, while the endpoints controller and every
# node's proxy take it out of the Service: a request routed meanwhile still finds a server.
PRE_STOP_SLEEP_SECONDS = 5
# Between the shutdown's end and the kubelet's SIGKILL.
GRACE_MARGIN_SECONDS = 5
MIN_REPLICAS = 2
MAX_REPLICAS = 6
CPU_TARGET_PERCENT = 70
# Secrets the overlays (or the operator) provide; never committed.
DATABASE_SECRET = "{name}-database"  # keys: url (through PgBouncer), migrate-url (session)
SIGNING_SECRET = "users-svc-signing-keys"  # files: current.pem (+ previous.pem in a rotation)
SIGNING_KEYS_DIR = "/var/run/secrets/signing-keys"
AUTH_CONFIG = "auth"  # token issuer, audience and JWKS URL, shared by every verifier
# Where traces go: empty (no tracing) until an overlay names a collector.
OBSERVABILITY_CONFIG = "observability"
EVENTS_CONFIG = "events"  # the NATS URL every service's events go through
# The annotations Prometheus's usual `kubernetes-pods` job (the community chart's) scrapes by.
SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(METRICS_PORT),
    "prometheus.io/path": "/metrics",
}


@dataclass(frozen=True)
class ServiceRole:
    """What a service does with tokens, read from its settings module."""

    signs_tokens: bool  # users-svc: USERS_SIGNING_KEY_FILE, USERS_PREVIOUS_KEY_FILES
    verifies_tokens: bool  # JwksSettings: <PREFIX>_TOKEN_ISSUER, _TOKEN_AUDIENCE, _JWKS_URL


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def config_env(name: str, config: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": config, "key": key}}}


def environment(facts: ServiceFacts, role: ServiceRole, *, migrate: bool) -> list[dict[str, Any]]:
    """The service's settings: the API's, or the migrator's (the same, production's checks
    included, but on a session of its own instead of the transaction pool)."""
    prefix = facts.env_prefix
    secret = DATABASE_SECRET.format(name=facts.name)
    env: list[dict[str, Any]] = [{"name": "ENVIRONMENT", "value": "production"}]
    if migrate:
        env.append(secret_env(f"{prefix}DATABASE_URL", secret, "migrate-url"))
    else:
        env.append(secret_env(f"{prefix}DATABASE_URL", secret, "url"))
        # The URL goes through PgBouncer in transaction mode (common.settings.Pooler).
        env.append({"name": f"{prefix}DB_POOLER", "value": "pgbouncer"})
    if role.verifies_tokens or role.signs_tokens:
        env.append(config_env(f"{prefix}TOKEN_ISSUER", AUTH_CONFIG, "token-issuer"))
        env.append(config_env(f"{prefix}TOKEN_AUDIENCE", AUTH_CONFIG, "token-audience"))
    if role.verifies_tokens:
        env.append(config_env(f"{prefix}JWKS_URL", AUTH_CONFIG, "jwks-url"))
    # Production requires it (common.events.EventSettings), the migrator's checks included.
    env.append(config_env(f"{prefix}NATS_URL", EVENTS_CONFIG, "nats-url"))
    # The production profile serves metrics on METRICS_PORT; traces go where this says.
    env.append(config_env("OTEL_EXPORTER_OTLP_ENDPOINT", OBSERVABILITY_CONFIG, "otlp-endpoint"))
    # A caller's decision wins, else a share of the traces (docs/observability.md).
    env.append({"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"})
    env.append(config_env("OTEL_TRACES_SAMPLER_ARG", OBSERVABILITY_CONFIG, "traces-sampled"))
    if role.signs_tokens:
        key_file = f"{SIGNING_KEYS_DIR}/current.pem"
        env.append({"name": f"{prefix}SIGNING_KEY_FILE", "value": key_file})
        env.append(config_env(f"{prefix}PREVIOUS_KEY_FILES", AUTH_CONFIG, "previous-key-files"))
    return env


def mounts(role: ServiceRole) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": "/tmp"},
        # The one folder the image lets the service write (a development signing key).
        {"name": "state", "mountPath": "/app/.local"},
    ]
    if role.signs_tokens:
        volumes.append({"name": "signing-keys", "mountPath": SIGNING_KEYS_DIR, "readOnly": True})
    return volumes


def probes() -> dict[str, Any]:
    """Startup and liveness ask the process; readiness asks the database and its schema."""

    def get(path: str, **timing: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, **timing}

    return {
        # Up to 60 s to start; liveness and readiness begin once it answers.
        "startupProbe": get("/health/live", periodSeconds=2, timeoutSeconds=2, failureThreshold=30),
        "livenessProbe": get(
            "/health/live", periodSeconds=10, timeoutSeconds=2, failureThreshold=3
        ),
        # 3 failures 5 s apart: a pod leaves the endpoints 10-15 s after its database does, long
        # enough for the pods of a new release to be ready when its migration moves the schema
        # past the old pods' head (docs/deployment.md: migrations).
        "readinessProbe": get(
            "/health/ready", periodSeconds=5, timeoutSeconds=3, failureThreshold=3
        ),
    }


def migrate_container(facts: ServiceFacts, role: ServiceRole) -> dict[str, Any]:
    """`alembic upgrade head` before the API starts, on a session of its own (PgBouncer's
    session-mode entry): the advisory lock makes concurrent pods wait for each other."""
    return pods.container(
        "migrate",
        facts.name,
        resources=pods.resources(cpu="100m", memory="128Mi", cpu_limit="1", memory_limit="256Mi"),
        command=["alembic", "upgrade", "head"],
        env=environment(facts, role, migrate=True),
        volumeMounts=mounts(role),
    )


def api_container(facts: ServiceFacts, role: ServiceRole) -> dict[str, Any]:
    return pods.container(
        "api",
        facts.name,
        resources=pods.resources(cpu="100m", memory="160Mi", cpu_limit="1", memory_limit="320Mi"),
        ports=[
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        env=environment(facts, role, migrate=False),
        **probes(),
        lifecycle={"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_SECONDS)]}}},
        volumeMounts=mounts(role),
    )


def deployment(facts: ServiceFacts, role: ServiceRole, *, shutdown_seconds: int) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {"name": "state", "emptyDir": {"sizeLimit": "1Mi"}},
    ]
    if role.signs_tokens:
        volumes.append({"name": "signing-keys", "secret": {"secretName": SIGNING_SECRET}})
    grace = PRE_STOP_SLEEP_SECONDS + shutdown_seconds + GRACE_MARGIN_SECONDS
    return pods.workload(
        "Deployment",
        facts.name,
        "api",
        user=APP_USER,
        annotations=SCRAPE_ANNOTATIONS,
        spec={
            # No `replicas`: the HorizontalPodAutoscaler owns the count, and an apply must not
            # reset it.
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 600,
            "strategy": {
                "type": "RollingUpdate",
                # The whole new release at once, the old one kept until it is ready: see
                # docs/deployment.md (migrations) and the connection budget, which counts it.
                "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0},
            },
        },
        pod={
            # Longer than the preStop sleep and uvicorn's graceful shutdown together.
            "terminationGracePeriodSeconds": grace,
            "topologySpreadConstraints": [spread(facts.name)],
            "initContainers": [migrate_container(facts, role)],
            "containers": [api_container(facts, role)],
            "volumes": volumes,
        },
    )


def spread(name: str) -> dict[str, Any]:
    return {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": pods.selector(name)},
    }


def service(name: str, component: str, *, port: int, target: str | int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": pods.metadata(name, component),
        "spec": {
            "type": "ClusterIP",
            "selector": pods.selector(name),
            "ports": [{"name": "main", "port": port, "targetPort": target, "protocol": "TCP"}],
        },
    }


def disruption_budget(name: str, component: str) -> dict[str, Any]:
    # One pod at a time may be evicted (a node drain), whatever the replica count.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": pods.metadata(name, component),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": pods.selector(name)}},
    }


def autoscaler(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": pods.metadata(name, "api"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT},
                    },
                }
            ],
        },
    }


def peer(name: str, port: int, *, any_namespace: bool = False) -> dict[str, Any]:
    """An egress rule to the pods named `name` on `port`."""
    to: dict[str, Any] = {"podSelector": {"matchLabels": pods.selector(name)}}
    if any_namespace:
        to["namespaceSelector"] = {}
    return {"to": [to], "ports": [{"protocol": "TCP", "port": port}]}


def dns_egress() -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def network_policy(facts: ServiceFacts, role: ServiceRole, *, issuer: str) -> dict[str, Any]:
    """Ingress on its HTTP and metrics ports; egress to DNS, PgBouncer, NATS and the
    OpenTelemetry Collector (the charts' pods, in any namespace) and, for a verifier, the
    issuer's JWKS: nothing else."""
    egress = [
        dns_egress(),
        peer("pgbouncer", PGBOUNCER_PORT),
        peer("nats", NATS_PORT, any_namespace=True),
        peer(COLLECTOR, OTLP_HTTP_PORT, any_namespace=True),
    ]
    if role.verifies_tokens:
        egress.append(peer(issuer, HTTP_PORT))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": pods.metadata(facts.name, "api"),
        "spec": {
            "podSelector": {"matchLabels": pods.selector(facts.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "ports": [
                        {"protocol": "TCP", "port": HTTP_PORT},
                        {"protocol": "TCP", "port": METRICS_PORT},
                    ]
                }
            ],
            "egress": egress,
        },
    }


def service_objects(
    facts: ServiceFacts, role: ServiceRole, *, issuer: str, shutdown_seconds: int
) -> dict[str, dict[str, Any]]:
    """File name -> object, for the service's kustomize base."""
    return {
        "serviceaccount.yaml": pods.service_account(facts.name, "api"),
        "deployment.yaml": deployment(facts, role, shutdown_seconds=shutdown_seconds),
        "service.yaml": service(facts.name, "api", port=HTTP_PORT, target="http"),
        "poddisruptionbudget.yaml": disruption_budget(facts.name, "api"),
        "horizontalpodautoscaler.yaml": autoscaler(facts.name),
        "networkpolicy.yaml": network_policy(facts, role, issuer=issuer),
    }
