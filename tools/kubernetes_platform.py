"""What the services share in Kubernetes, as data: PgBouncer, the namespace's baseline, and the
development overlay's own Postgres and NATS (production references managed ones).

PgBouncer runs in transaction mode in front of Postgres (a Service named `postgres`: the managed
server's address in production, the in-cluster one in `dev`). Each service database has two
entries: `<database>` pooled per transaction for the API, and `<database>_migrate` in session mode
for the migrations, which need one session for their advisory lock and may run longer than the
API's statement timeout.
"""

from __future__ import annotations

from typing import Any

import kubernetes_pods as pods
from devstack.pgbouncer import SERVER_LOGIN_RETRY_SECONDS, query_wait_timeout
from kubernetes_objects import (
    PGBOUNCER_PORT,
    disruption_budget,
    dns_egress,
    service,
)

PGBOUNCER = "pgbouncer"
# CloudNativePG's PgBouncer image: Debian's pgbouncer, maintained with the operator.
PGBOUNCER_IMAGE = "ghcr.io/cloudnative-pg/pgbouncer:1.25.2"
PGBOUNCER_LISTEN_PORT = 6432
PGBOUNCER_REPLICAS = 2
PGBOUNCER_USER = 10002
MIGRATE_POOL_SIZE = 2
POSTGRES_PORT = 5432
# The development overlay's own servers, pinned as the CI workflows pin theirs.
POSTGRES_IMAGE = "postgres:18.1"
NATS_IMAGE = "nats:2.11.9-alpine"
POSTGRES_USER = 10003
NATS_USER = 10004


def pgbouncer_ini(
    databases: list[str],
    *,
    pool_size: int,
    session_timeouts: dict[str, str],
    auth_type: str,
    server_tls: str,
) -> str:
    """PgBouncer's configuration file for the service databases."""
    settings = "; ".join(f"SET {name} = {value}" for name, value in session_timeouts.items())
    server = f"host=postgres port={POSTGRES_PORT}"
    lines = ["[databases]"]
    for database in databases:
        lines.append(
            f"{database} = {server} dbname={database} pool_size={pool_size} "
            f"connect_query='{settings}'"
        )
        lines.append(
            f"{database}_migrate = {server} dbname={database} pool_mode=session "
            f"pool_size={MIGRATE_POOL_SIZE}"
        )
    options = {
        "listen_addr": "0.0.0.0",
        "listen_port": str(PGBOUNCER_LISTEN_PORT),
        "unix_socket_dir": "",
        "auth_type": auth_type,
        "auth_file": "/etc/pgbouncer/userlist/userlist.txt",
        "pool_mode": "transaction",
        "max_client_conn": "2000",
        "default_pool_size": str(pool_size),
        "reserve_pool_size": "0",
        # A query waits for a server connection as long as a request waits for its own pool's
        # (db_pool_timeout_seconds), then fails: the service answers 503.
        "query_wait_timeout": str(query_wait_timeout()),
        # After a failed login to a restarting server, try again within a second (default 15):
        # the services answer 503 until then.
        "server_login_retry": str(SERVER_LOGIN_RETRY_SECONDS),
        "server_tls_sslmode": server_tls,
        "ignore_startup_parameters": "extra_float_digits",
        "log_connections": "0",
        "log_disconnections": "0",
    }
    lines += ["", "[pgbouncer]", *(f"{name} = {value}" for name, value in options.items())]
    return "\n".join(lines) + "\n"


def pgbouncer_deployment(config_map: str) -> dict[str, Any]:
    main = pods.container(
        PGBOUNCER,
        PGBOUNCER_IMAGE,
        resources=pods.resources(cpu="50m", memory="32Mi", cpu_limit="1", memory_limit="128Mi"),
        command=["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"],
        ports=[{"name": "postgres", "containerPort": PGBOUNCER_LISTEN_PORT, "protocol": "TCP"}],
        readinessProbe={"tcpSocket": {"port": "postgres"}, "periodSeconds": 5},
        livenessProbe={"tcpSocket": {"port": "postgres"}, "periodSeconds": 10},
        # Kept in the endpoints a few seconds after it is told to stop (as the services).
        lifecycle={"preStop": {"exec": {"command": ["sleep", "5"]}}},
        volumeMounts=[
            {
                "name": "config",
                "mountPath": "/etc/pgbouncer/pgbouncer.ini",
                "subPath": "pgbouncer.ini",
                "readOnly": True,
            },
            {"name": "userlist", "mountPath": "/etc/pgbouncer/userlist", "readOnly": True},
        ],
    )
    return pods.workload(
        "Deployment",
        PGBOUNCER,
        "pooler",
        user=PGBOUNCER_USER,
        spec={"replicas": PGBOUNCER_REPLICAS, "revisionHistoryLimit": 5},
        pod={
            "terminationGracePeriodSeconds": 30,
            "containers": [main],
            "volumes": [
                {"name": "config", "configMap": {"name": config_map}},
                # userlist.txt: each service role and its password (or SCRAM secret).
                {"name": "userlist", "secret": {"secretName": "pgbouncer-userlist"}},
            ],
        },
    )


def pgbouncer_network_policy() -> dict[str, Any]:
    """From the services (and their migrations) in; to Postgres and DNS out."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": pods.metadata(PGBOUNCER, "pooler"),
        "spec": {
            "podSelector": {"matchLabels": pods.selector(PGBOUNCER)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "api"}}}
                    ],
                    "ports": [{"protocol": "TCP", "port": PGBOUNCER_LISTEN_PORT}],
                }
            ],
            # The managed Postgres is outside the cluster, at an address only the operator
            # knows: narrow this to its CIDR in your overlay (docs/deployment.md).
            "egress": [dns_egress(), {"ports": [{"protocol": "TCP", "port": POSTGRES_PORT}]}],
        },
    }


def pgbouncer_objects(config_map: str) -> dict[str, dict[str, Any]]:
    return {
        "serviceaccount.yaml": pods.service_account(PGBOUNCER, "pooler"),
        "deployment.yaml": pgbouncer_deployment(config_map),
        "service.yaml": service(PGBOUNCER, "pooler", port=PGBOUNCER_PORT, target="postgres"),
        "poddisruptionbudget.yaml": disruption_budget(PGBOUNCER, "pooler"),
        "networkpolicy.yaml": pgbouncer_network_policy(),
    }


def default_deny() -> dict[str, Any]:
    """Every pod of the namespace starts with no traffic at all: each policy opens its own."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            # The restricted Pod Security Standard, enforced: every pod here meets it.
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
        },
    }


def external_postgres(host: str) -> dict[str, Any]:
    """The managed Postgres, by its DNS name, under the name PgBouncer's configuration uses."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": pods.metadata("postgres", "database"),
        "spec": {"type": "ExternalName", "externalName": host},
    }
