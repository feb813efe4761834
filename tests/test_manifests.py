"""deploy/kubernetes/, proven offline: generated from the workspace (no drift), every overlay
rendered by `kubectl kustomize` and valid for the oldest and newest supported Kubernetes, and
each service deployed as docs/deployment.md says (probes, shutdown, security, network, secrets).

`make manifests-check` validates every supported version and lints; `make manifests-checkov`
runs checkov.
"""

import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import manifests
from connection_budget import Budget
from kubernetes_objects import (
    MAX_REPLICAS,
    PRE_STOP_SLEEP_SECONDS,
)
from monorepo import ServiceFacts, Workspace
from render_manifests import KUBERNETES_VERSIONS, invalid, overlays, render

ROOT = Path(__file__).resolve().parents[1]
SERVICES = Workspace.load(ROOT).services()
OVERLAYS = [overlay.name for overlay in overlays()]


@cache
def rendered(overlay: str) -> list[dict[str, Any]]:
    return render(ROOT / manifests.DEPLOY_DIR / "overlays" / overlay)


def find(overlay: str, kind: str, name: str) -> dict[str, Any]:
    found = [d for d in rendered(overlay) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: {kind}/{name} rendered {len(found)} times"
    return found[0]


def containers(deployment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def test_the_manifests_are_what_the_workspace_generates() -> None:
    result = subprocess.run(
        [sys.executable, "tools/manifests.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def test_the_overlays_are_dev_and_prod() -> None:
    assert OVERLAYS == ["dev", "prod"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", [KUBERNETES_VERSIONS[0], KUBERNETES_VERSIONS[-1]])
def test_every_overlay_renders_and_is_valid_strictly(overlay: str, version: str) -> None:
    documents = rendered(overlay)

    assert documents
    assert invalid(documents, version) == []


def test_a_field_kubernetes_does_not_know_is_refused() -> None:
    deployment = find("prod", "Deployment", SERVICES[0].name)
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}

    assert invalid([broken], KUBERNETES_VERSIONS[-1])


def test_the_manifests_pass_yamllint() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "deploy/", ".yamllint.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_runs_restricted_with_probes_and_a_graceful_stop(
    service: ServiceFacts,
) -> None:
    deployment = find("prod", "Deployment", service.name)
    pod = deployment["spec"]["template"]["spec"]
    api = pod["containers"][0]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for container in containers(deployment):
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]) == {"requests", "limits"}
    assert api["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(PRE_STOP_SLEEP_SECONDS)]
    shutdown = manifests.shutdown_seconds(service)
    assert pod["terminationGracePeriodSeconds"] > PRE_STOP_SLEEP_SECONDS + shutdown
    assert pod["initContainers"][0]["command"] == ["alembic", "upgrade", "head"]
    assert "replicas" not in deployment["spec"]  # the autoscaler's to set
    assert find("prod", "ServiceAccount", service.name)["automountServiceAccountToken"] is False
    for kind in ("Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"):
        find("prod", kind, service.name)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_goes_through_pgbouncer_and_migrates_on_a_session(
    service: ServiceFacts,
) -> None:
    pod = find("prod", "Deployment", service.name)["spec"]["template"]["spec"]
    api = {e["name"]: e for e in pod["containers"][0]["env"]}
    migrate = {e["name"]: e for e in pod["initContainers"][0]["env"]}
    url = f"{service.env_prefix}DATABASE_URL"

    assert api[f"{service.env_prefix}DB_POOLER"]["value"] == "pgbouncer"
    assert api[url]["valueFrom"]["secretKeyRef"]["key"] == "url"
    assert migrate[url]["valueFrom"]["secretKeyRef"]["key"] == "migrate-url"
    assert f"{service.env_prefix}DB_POOLER" not in migrate
    ini = (ROOT / manifests.DEPLOY_DIR / "base/pgbouncer/pgbouncer.ini").read_text()
    assert f"\n{service.database} = host=postgres " in ini
    assert f"\n{service.database}_migrate = host=postgres " in ini


def test_things_svc_reaches_users_svc_pgbouncer_and_nats_and_nothing_else() -> None:
    policy = find("prod", "NetworkPolicy", "things-svc")["spec"]
    destinations = set()
    for rule in policy["egress"]:
        ports = {port["port"] for port in rule["ports"]}
        for peer in rule["to"]:
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            destinations.add((labels.get("app.kubernetes.io/name", labels.get("k8s-app")), *ports))

    assert destinations == {
        ("kube-dns", 53),
        ("pgbouncer", 5432),
        ("nats", 4222),
        ("opentelemetry-collector", 4318),
        ("users-svc", 8000),
    }
    assert policy["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_is_scraped_on_its_metrics_port_and_traces_where_the_overlay_says(
    service: ServiceFacts,
) -> None:
    template = find("prod", "Deployment", service.name)["spec"]["template"]
    api = template["spec"]["containers"][0]
    env = {e["name"]: e for e in api["env"]}
    ingress = find("prod", "NetworkPolicy", service.name)["spec"]["ingress"]
    observability = find("prod", "ConfigMap", "observability")["data"]

    assert {"name": "metrics", "containerPort": 9000, "protocol": "TCP"} in api["ports"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "9000"
    assert {"protocol": "TCP", "port": 9000} in ingress[0]["ports"]
    endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]["valueFrom"]["configMapKeyRef"]
    assert (endpoint["name"], endpoint["key"]) == ("observability", "otlp-endpoint")
    assert observability["otlp-endpoint"] == ""  # no traces sent until an overlay says where


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_and_its_migrator_read_the_nats_url_its_settings_name(
    service: ServiceFacts, overlay: str
) -> None:
    pod = find(overlay, "Deployment", service.name)["spec"]["template"]["spec"]
    events = find(overlay, "ConfigMap", "events")["data"]
    nats = find(overlay, "Service", "nats") if overlay == "dev" else None

    for container in (pod["containers"][0], pod["initContainers"][0]):
        env = {e["name"]: e for e in container["env"]}
        reference = env[f"{service.env_prefix}NATS_URL"]["valueFrom"]["configMapKeyRef"]
        assert (reference["name"], reference["key"]) == ("events", "nats-url")
    assert events["nats-url"] == "nats://nats:4222"
    if nats is not None:  # the dev overlay's own NATS answers at that name and port
        assert [port["port"] for port in nats["spec"]["ports"]] == [4222]


def test_prod_references_its_secrets_and_commits_none() -> None:
    documents = rendered("prod")
    referenced = {
        ref["secretKeyRef"]["name"]
        for d in documents
        if d["kind"] == "Deployment"
        for c in containers(d)
        for ref in (e.get("valueFrom", {}) for e in c.get("env", []))
        if "secretKeyRef" in ref
    }

    assert not [d for d in documents if d["kind"] == "Secret"]
    assert referenced == {f"{s.name}-database" for s in SERVICES}


def test_the_connection_budget_holds_through_pgbouncer_at_the_autoscalers_maximum() -> None:
    budget = Budget.for_services(len(SERVICES))

    assert budget.fits()
    assert budget.pooled_server() <= budget.available
    # Without the pooler the same deployment would not fit: the reason it is there.
    assert budget.direct(MAX_REPLICAS, rollout=False) > budget.available
