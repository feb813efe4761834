"""deploy/kubernetes/ is written by people; these tests hold it to what the services need.

Every overlay renders with `kubectl kustomize` and is valid for the oldest and newest supported
Kubernetes; every workspace service is deployed by every overlay, with the settings production
requires, probes on routes its app serves, a grace period longer than its shutdown, the network
paths it uses and no other, and a connection budget that fits. `make manifests-check` validates
every supported version and lints; `make manifests-checkov` runs checkov.
"""

import base64
import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.auth import JwksSettings
from common.settings import AppBaseSettings
from connection_budget import AVAILABLE, Budget, pools_of
from monorepo import ServiceFacts, Workspace
from render_manifests import KUBERNETES_VERSIONS, OVERLAYS_DIR, invalid, overlays, render

ROOT = Path(__file__).resolve().parents[1]
SERVICES = Workspace.load(ROOT).services()
OVERLAYS = [overlay.name for overlay in overlays()]
PRE_STOP_SLEEP_SECONDS = 5
by_name = [service.name for service in SERVICES]

Document = dict[str, Any]


@cache
def rendered(overlay: str) -> list[Document]:
    return render(OVERLAYS_DIR / overlay)


def find(overlay: str, kind: str, name: str) -> Document:
    found = [
        d
        for d in rendered(overlay)
        if d["kind"] == kind and re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", d["metadata"]["name"])
    ]
    assert len(found) == 1, f"{overlay}: {kind}/{name} rendered {len(found)} times"
    return found[0]


def pod_of(overlay: str, service: ServiceFacts) -> Document:
    spec: Document = find(overlay, "Deployment", service.name)["spec"]["template"]["spec"]
    return spec


def containers(pod: Document) -> Iterator[Document]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def settings_class(service: ServiceFacts) -> type[AppBaseSettings]:
    settings: type[AppBaseSettings] = importlib.import_module(
        f"{service.package}.settings"
    ).Settings
    return settings


def openapi_of(service: ServiceFacts) -> dict[str, Any]:
    document: dict[str, Any] = importlib.import_module(f"{service.package}.main").app.openapi()
    return document


# What an operator's Secret holds, by key, where the overlay does not make the Secret itself.
OPERATORS_SECRETS = {"clients.json": '{"things-svc": {"secret_sha256": ["%s"]}}' % ("0" * 64)}
STRONG_PLACEHOLDER = "postgresql+asyncpg://role:a-Real-passw0rd@pgbouncer:5432/db"


def environment(overlay: str, container: Document) -> dict[str, str]:
    """The container's environment as the cluster would give it: values, and the ConfigMaps'
    and Secrets' entries they reference; a Secret the overlay does not make (the operator does)
    gives a strong placeholder."""
    env = {}
    for variable in container["env"]:
        source = variable.get("valueFrom", {})
        if "configMapKeyRef" in source:
            reference = source["configMapKeyRef"]
            env[variable["name"]] = find(overlay, "ConfigMap", reference["name"])["data"][
                reference["key"]
            ]
        elif "secretKeyRef" in source:
            reference = source["secretKeyRef"]
            made = [
                d
                for d in rendered(overlay)
                if d["kind"] == "Secret"
                and re.fullmatch(rf"{reference['name']}(-[a-z0-9]{{10}})?", d["metadata"]["name"])
            ]
            env[variable["name"]] = (
                base64.b64decode(made[0]["data"][reference["key"]]).decode()
                if made
                else OPERATORS_SECRETS.get(reference["key"], STRONG_PLACEHOLDER)
            )
        else:
            env[variable["name"]] = variable["value"]
    return env


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


def test_no_file_people_deploy_or_edit_says_it_is_generated() -> None:
    files = [
        path
        for folder in ("deploy", ".github", "infra")
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
    ]
    claims = [
        str(path.relative_to(ROOT))
        for path in files
        if re.search(r"do not edit|generated by", path.read_text(errors="replace"), re.IGNORECASE)
    ]

    assert files
    assert claims == []


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_is_deployed_by_every_overlay(overlay: str, service: ServiceFacts) -> None:
    pod = pod_of(overlay, service)
    pools = pools_of(find(overlay, "ConfigMap", "pgbouncer-config")["data"]["pgbouncer.ini"])

    assert {c["image"].split(":")[0] for c in containers(pod)} == {service.name}
    assert pod["serviceAccountName"] == service.name
    for kind in ("Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"):
        find(overlay, kind, service.name)
    assert {service.database, f"{service.database}_migrate"} <= set(pools)


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_container_has_every_setting_the_overlays_environment_requires(
    overlay: str, service: ServiceFacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    for container in containers(pod_of(overlay, service)):
        env = environment(overlay, container)
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            settings = settings_class(service)(_env_file=None)

        assert settings.environment == ("production" if overlay == "prod" else "development")
        assert settings.database_url == env[f"{service.env_prefix}DATABASE_URL"]


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_api_believes_forwarded_addresses_from_its_overlays_ingress_only(
    overlay: str, service: ServiceFacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = pod_of(overlay, service)["containers"][0]
    with monkeypatch.context() as patch:
        for name, value in environment(overlay, api).items():
            patch.setenv(name, value)
        settings = settings_class(service)(_env_file=None)

    # A private network (the pod network), never the whole internet.
    assert settings.trusted_proxies
    assert all(network.is_private for network in settings.trusted_proxies)


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
def test_the_selectors_pick_the_services_own_pods(service: ServiceFacts) -> None:
    pod_labels = find("prod", "Deployment", service.name)["spec"]["template"]["metadata"]["labels"]
    own = {"app.kubernetes.io/name": service.name}
    selectors = [
        find("prod", "Deployment", service.name)["spec"]["selector"]["matchLabels"],
        find("prod", "Service", service.name)["spec"]["selector"],
        find("prod", "PodDisruptionBudget", service.name)["spec"]["selector"]["matchLabels"],
        find("prod", "NetworkPolicy", service.name)["spec"]["podSelector"]["matchLabels"],
        *(
            constraint["labelSelector"]["matchLabels"]
            for constraint in pod_of("prod", service)["topologySpreadConstraints"]
        ),
    ]

    assert pod_labels["app.kubernetes.io/component"] == "api"
    assert all(selector == own for selector in selectors)
    assert (
        find("prod", "HorizontalPodAutoscaler", service.name)["spec"]["scaleTargetRef"]["name"]
        == service.name
    )


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
def test_each_service_runs_restricted_with_probes_on_routes_its_app_serves(
    service: ServiceFacts,
) -> None:
    deployment = find("prod", "Deployment", service.name)
    pod = deployment["spec"]["template"]["spec"]
    api = pod["containers"][0]
    paths = openapi_of(service)["paths"]
    ports = {port["name"] for port in api["ports"]}

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for container in containers(pod):
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]) == {"requests", "limits"}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "get" in paths[api[probe]["httpGet"]["path"]]
        assert api[probe]["httpGet"]["port"] in ports
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert pod["initContainers"][0]["command"] == ["alembic", "upgrade", "head"]
    assert "replicas" not in deployment["spec"]  # the autoscaler's to set
    assert find("prod", "ServiceAccount", service.name)["automountServiceAccountToken"] is False


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_grace_period_outlasts_the_services_shutdown(
    overlay: str, service: ServiceFacts
) -> None:
    dockerfile = (service.directory / "Dockerfile").read_text()
    command = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1))  # type: ignore[union-attr]
    shutdown = int(command[command.index("--timeout-graceful-shutdown") + 1])
    pod = pod_of(overlay, service)
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]

    assert pre_stop == ["sleep", str(PRE_STOP_SLEEP_SECONDS)]
    assert pod["terminationGracePeriodSeconds"] > PRE_STOP_SLEEP_SECONDS + shutdown


def destinations(policy: Document) -> set[tuple[str, int]]:
    """(the peer's app name, port) for every egress rule of a NetworkPolicy."""
    found = set()
    for rule in policy["spec"].get("egress", []):
        for port in rule["ports"]:
            for peer in rule.get("to", [{}]):
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                name = labels.get("app.kubernetes.io/name", labels.get("k8s-app", "anywhere"))
                found.add((name, port["port"]))
    return found


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_reaches_exactly_what_its_settings_use(
    overlay: str, service: ServiceFacts
) -> None:
    settings = settings_class(service)
    pod = pod_of(overlay, service)
    variables = {v["name"] for c in containers(pod) for v in c["env"]}
    policy = find(overlay, "NetworkPolicy", service.name)
    expected = {("kube-dns", 53), ("pgbouncer", 5432), ("opentelemetry-collector", 4318)}
    if "nats_url" in settings.model_fields:
        expected.add(("nats", 4222))
        assert f"{service.env_prefix}NATS_URL" in variables
        # As its own NATS user, its password from its own Secret (never inlined).
        env = {v["name"]: v for c in containers(pod) for v in c["env"]}
        assert env[f"{service.env_prefix}NATS_USER"]["value"] == service.name
        password = env[f"{service.env_prefix}NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert re.fullmatch(rf"{service.name}-nats(-[a-z0-9]{{10}})?", password["name"])
    if issubclass(settings, JwksSettings):
        expected.add(("users-svc", 8000))
        assert f"{service.env_prefix}JWKS_URL" in variables

    assert destinations(policy) == expected
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == [8000, 9000]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_pgbouncer_reaches_postgres_and_every_namespace_denies_by_default(
    overlay: str,
) -> None:
    pgbouncer = find(overlay, "NetworkPolicy", "pgbouncer")
    default_deny = find(overlay, "NetworkPolicy", "default-deny")["spec"]

    assert destinations(pgbouncer) == {("kube-dns", 53), ("anywhere", 5432)}
    assert default_deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    if overlay == "dev":
        postgres = find(overlay, "NetworkPolicy", "postgres")["spec"]["ingress"]
        peers = [peer["podSelector"]["matchLabels"] for rule in postgres for peer in rule["from"]]
        assert peers == [{"app.kubernetes.io/name": "pgbouncer"}]


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
def test_each_service_is_scraped_on_its_metrics_port(service: ServiceFacts) -> None:
    template = find("prod", "Deployment", service.name)["spec"]["template"]
    api = template["spec"]["containers"][0]

    assert {"name": "metrics", "containerPort": 9000, "protocol": "TCP"} in api["ports"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "9000"
    assert environment("prod", api)["OTEL_EXPORTER_OTLP_ENDPOINT"] == ""  # until an overlay says


@pytest.mark.parametrize("service", SERVICES, ids=by_name)
def test_the_dev_overlay_makes_each_services_database_and_its_urls(service: ServiceFacts) -> None:
    postgres = find("dev", "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]
    env = {v["name"]: v.get("value") for v in postgres["env"]}
    secret = find("dev", "Secret", f"{service.name}-database")

    assert service.database in env["SERVICE_DATABASES"].split()
    assert f"{service.database.upper()}_DB_PASSWORD" in env
    assert set(secret["data"]) == {"url", "migrate-url"}


def test_prod_references_its_secrets_and_commits_none() -> None:
    documents = rendered("prod")
    referenced = {
        ref["secretKeyRef"]["name"]
        for d in documents
        if d["kind"] == "Deployment"
        for c in containers(d["spec"]["template"]["spec"])
        for ref in (e.get("valueFrom", {}) for e in c.get("env", []))
        if "secretKeyRef" in ref
    }

    own = {f"{s.name}-{secret}" for s in SERVICES for secret in ("database", "nats")}
    # A service that calls others has a client secret; users-svc lists them by their SHA-256.
    callers = {
        f"{s.name}-client" for s in SERVICES if "client_secret" in settings_class(s).model_fields
    }
    assert not [d for d in documents if d["kind"] == "Secret"]
    assert referenced == own | callers | {"users-svc-service-clients"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_connection_budget_fits_through_pgbouncer(overlay: str) -> None:
    budget = Budget.of(rendered(overlay))

    assert [s.name for s in budget.services] == by_name
    assert budget.pooled() <= AVAILABLE
    if overlay == "prod":  # without the pooler the same deployment would not fit: why it is there
        assert budget.direct(at_max=True, rollout=False) > AVAILABLE


def test_the_budget_refuses_pools_that_do_not_fit() -> None:
    config = find("prod", "ConfigMap", "pgbouncer-config")
    ini = re.sub(
        r"default_pool_size = \d+", "default_pool_size = 50", config["data"]["pgbouncer.ini"]
    )
    documents = [
        {**d, "data": {"pgbouncer.ini": ini}} if d is config else d for d in rendered("prod")
    ]

    assert not Budget.of(documents).fits()


NATS_CONFIG = ROOT / "infra" / "nats" / "nats.conf"
EXTERNAL = ROOT / "deploy" / "kubernetes" / "external"
NATS_CLIENT_LABEL = "fastapi-services/nats-client"


def nats_grants(config: str) -> dict[str, set[str]]:
    """What each user of a NATS configuration file may publish and subscribe to, as
    `{user: {"pub events.user.*", "sub _INBOX.users-svc.>", ...}}`."""
    grants: dict[str, set[str]] = {}
    for block in re.split(r"\n\s*user: ", config)[1:]:
        user = block.split()[0]
        publish, _, subscribe = block.partition("subscribe:")
        grants[user] = {f"pub {s}" for s in re.findall(r'"([^"]+)"', publish)}
        grants[user] |= {f"sub {s}" for s in re.findall(r'"([^"]+)"', subscribe)}
    return grants


def test_the_charts_nats_grants_exactly_what_the_stacks_does() -> None:
    values = yaml_load(EXTERNAL / "nats-values.yaml")
    users = values["config"]["merge"]["authorization"]["users"]
    chart = {
        user["user"]: {
            f"{verb[:3]} {subject}"
            for verb in ("publish", "subscribe")
            for subject in user["permissions"][verb]["allow"]
        }
        for user in users
    }
    stack = nats_grants(NATS_CONFIG.read_text())

    assert chart == stack
    assert {"users-svc", "things-svc"} <= set(stack)
    assert "pub events.user.*" in stack["users-svc"]
    assert not any(grant.startswith("pub events.user") for grant in stack["things-svc"])
    for user in users:
        variable = f"{user['user'].removesuffix('-svc').upper()}_NATS_PASSWORD"
        assert user["password"] == f"<< ${variable} >>"
        # From the operator's Secret, never inlined.
        secret = values["container"]["env"][variable]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "nats-users", "key": user["user"]}


def test_the_dev_nats_runs_the_stacks_configuration_with_the_services_passwords() -> None:
    copy = OVERLAYS_DIR / "dev" / "nats" / "nats.conf"
    deployment = find("dev", "Deployment", "nats")["spec"]["template"]["spec"]
    nats = deployment["containers"][0]
    config = find("dev", "ConfigMap", "nats-config")
    env = {v["name"]: v["valueFrom"]["secretKeyRef"]["name"] for v in nats["env"]}

    assert copy.read_text() == NATS_CONFIG.read_text()
    assert config["data"]["nats.conf"] == NATS_CONFIG.read_text()
    assert "--config=/etc/nats/nats.conf" in nats["args"]
    assert {"mountPath": "/etc/nats", "name": "config", "readOnly": True} in nats["volumeMounts"]
    for user in nats_grants(NATS_CONFIG.read_text()):
        variable = f"{user.removesuffix('-svc').upper()}_NATS_PASSWORD"
        assert re.fullmatch(rf"{user}-nats-[a-z0-9]{{10}}", env[variable])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_services_that_use_events_carry_the_label_natss_policies_let_in(
    overlay: str,
) -> None:
    labelled = {
        d["metadata"]["name"]
        for d in rendered(overlay)
        if d["kind"] == "Deployment"
        and d["spec"]["template"]["metadata"]["labels"].get(NATS_CLIENT_LABEL) == "true"
    }
    users = {s.name for s in SERVICES if "nats_url" in settings_class(s).model_fields}

    assert labelled == users
    if overlay == "dev":
        ingress = find("dev", "NetworkPolicy", "nats")["spec"]["ingress"]
        assert ingress == [
            {
                "from": [{"podSelector": {"matchLabels": {NATS_CLIENT_LABEL: "true"}}}],
                "ports": [{"protocol": "TCP", "port": 4222}],
            }
        ]


@pytest.mark.parametrize("version", [KUBERNETES_VERSIONS[0], KUBERNETES_VERSIONS[-1]])
def test_the_nats_namespace_lets_in_only_the_services_that_use_events(version: str) -> None:
    policy = yaml_load(EXTERNAL / "nats-networkpolicy.yaml")
    prod_namespace = find("prod", "Namespace", "fastapi-services")["metadata"]["name"]
    clients, routes = policy["spec"]["ingress"]

    assert invalid([policy], version) == []
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "nats"}}
    assert clients == {
        "from": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": prod_namespace}
                },
                "podSelector": {"matchLabels": {NATS_CLIENT_LABEL: "true"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 4222}],
    }
    assert routes["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats"}}}]
    assert routes["ports"] == [{"protocol": "TCP", "port": 6222}]


def yaml_load(path: Path) -> Document:
    document: Document = yaml.safe_load(path.read_text())
    return document
