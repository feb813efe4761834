"""The `dev` overlay's own objects: one Postgres and one NATS in the cluster, for trying it out.

Postgres runs the very init script Compose runs (infra/postgres/, made a ConfigMap by the
kustomization beside it, which the overlay includes), and trusts the connections its
NetworkPolicy lets in (PgBouncer's alone): a development cluster's throwaway database needs no
password, so none is committed. NATS runs one JetStream server.
"""

from __future__ import annotations

from typing import Any

import kubernetes_pods as pods
from kubernetes_objects import (
    NATS_PORT,
    SIGNING_KEYS_DIR,
    service,
)
from kubernetes_platform import (
    NATS_IMAGE,
    NATS_USER,
    PGBOUNCER,
    POSTGRES_IMAGE,
    POSTGRES_PORT,
    POSTGRES_USER,
)

POSTGRES = "postgres"
NATS = "nats"
INIT_SCRIPTS = "postgres-init"


def ingress_only(
    name: str, component: str, *, port: int, sources: dict[str, str]
) -> dict[str, Any]:
    """A server that answers on `port` to the pods matching `sources` and reaches nothing."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": pods.metadata(name, component),
        "spec": {
            "podSelector": {"matchLabels": pods.selector(name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": sources}}],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
            "egress": [],
        },
    }


def probe(command: list[str], period: int) -> dict[str, Any]:
    return {"exec": {"command": command}, "periodSeconds": period, "timeoutSeconds": 3}


def postgres_statefulset(databases: list[str]) -> dict[str, Any]:
    env = [
        {"name": "POSTGRES_HOST_AUTH_METHOD", "value": "trust"},
        {"name": "SERVICE_DATABASES", "value": " ".join(databases)},
        # The init script sets each role's password; with `trust` it is never asked for.
        *({"name": f"{d.upper()}_DB_PASSWORD", "value": f"unused-{d}"} for d in databases),
    ]
    ready = probe(["pg_isready", "--username=postgres", "--dbname=postgres"], 5)
    main = pods.container(
        POSTGRES,
        POSTGRES_IMAGE,
        resources=pods.resources(cpu="100m", memory="256Mi", cpu_limit="1", memory_limit="512Mi"),
        ports=[{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        env=env,
        readinessProbe=ready,
        livenessProbe={**ready, "periodSeconds": 10, "failureThreshold": 6},
        volumeMounts=[
            {"name": "data", "mountPath": "/var/lib/postgresql"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "init", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True},
        ],
    )
    return pods.workload(
        "StatefulSet",
        POSTGRES,
        "database",
        # The image runs as any user: it makes its data folder inside the volume.
        user=POSTGRES_USER,
        spec={
            "serviceName": POSTGRES,
            "replicas": 1,
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
        pod={
            "containers": [main],
            "volumes": [
                {"name": "run", "emptyDir": {}},
                {"name": "tmp", "emptyDir": {}},
                {"name": "init", "configMap": {"name": INIT_SCRIPTS}},
            ],
        },
    )


def nats_deployment() -> dict[str, Any]:
    main = pods.container(
        NATS,
        NATS_IMAGE,
        resources=pods.resources(cpu="50m", memory="64Mi", cpu_limit="1", memory_limit="256Mi"),
        args=["--jetstream", "--store_dir=/data", f"--port={NATS_PORT}", "--http_port=8222"],
        ports=[
            {"name": "client", "containerPort": NATS_PORT, "protocol": "TCP"},
            {"name": "monitor", "containerPort": 8222, "protocol": "TCP"},
        ],
        readinessProbe={"httpGet": {"path": "/healthz", "port": "monitor"}, "periodSeconds": 5},
        livenessProbe={"httpGet": {"path": "/healthz", "port": "monitor"}, "periodSeconds": 10},
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
    )
    return pods.workload(
        "Deployment",
        NATS,
        "events",
        user=NATS_USER,
        spec={"replicas": 1, "strategy": {"type": "Recreate"}},
        pod={
            "containers": [main],
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}],
        },
    )


def postgres_objects(databases: list[str]) -> dict[str, dict[str, Any]]:
    return {
        "serviceaccount.yaml": pods.service_account(POSTGRES, "database"),
        "statefulset.yaml": postgres_statefulset(databases),
        "service.yaml": service(POSTGRES, "database", port=POSTGRES_PORT, target="postgres"),
        "networkpolicy.yaml": ingress_only(
            POSTGRES, "database", port=POSTGRES_PORT, sources=pods.selector(PGBOUNCER)
        ),
    }


def nats_objects() -> dict[str, dict[str, Any]]:
    return {
        "serviceaccount.yaml": pods.service_account(NATS, "events"),
        "deployment.yaml": nats_deployment(),
        "service.yaml": service(NATS, "events", port=NATS_PORT, target="client"),
        "networkpolicy.yaml": ingress_only(
            NATS, "events", port=NATS_PORT, sources={"app.kubernetes.io/component": "api"}
        ),
    }


def service_patch(name: str, *, signs_tokens: bool) -> list[dict[str, Any]]:
    """The dev overlay's changes to a service: development mode, local images, one replica of
    a signer (development keys are per process), and no signing-key Secret to mount."""
    development = {"name": "ENVIRONMENT", "value": "development"}
    api: dict[str, Any] = {"name": "api", "imagePullPolicy": "IfNotPresent", "env": [development]}
    migrate: dict[str, Any] = {
        "name": "migrate",
        "imagePullPolicy": "IfNotPresent",
        "env": [development],
    }
    pod: dict[str, Any] = {"initContainers": [migrate], "containers": [api]}
    if signs_tokens:
        for container in (api, migrate):
            container["env"].append({"name": "USERS_SIGNING_KEY_FILE", "$patch": "delete"})
            container["volumeMounts"] = [{"mountPath": SIGNING_KEYS_DIR, "$patch": "delete"}]
        pod["volumes"] = [{"name": "signing-keys", "$patch": "delete"}]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "annotations": {
                "checkov.io/skip1": "CKV_K8S_15=dev runs images built and loaded on the cluster's "
                "nodes (kind load): there is no registry to pull them from"
            },
        },
        "spec": {"template": {"spec": pod}},
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"minReplicas": 1, "maxReplicas": 1 if signs_tokens else 2},
    }
    return [deployment, autoscaler]
