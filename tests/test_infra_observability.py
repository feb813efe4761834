"""The observability profile's files, proven without Docker: the Compose services, the
scrape configuration, the collector's pipeline and the Grafana dashboard."""

import json
import re
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from common import metrics
from common.settings import METRICS_PORT
from compose import COLLECTOR_ENDPOINT, COMPOSE_FILE, INFRA_DIR
from stack_services import Service, discover_services

SERVICES = discover_services({})
PROFILE_SERVICES = ("prometheus", "otel-collector", "jaeger", "grafana")
PROMETHEUS_CONFIG = INFRA_DIR / "prometheus" / "prometheus.yml"
DASHBOARD = INFRA_DIR / "grafana" / "dashboards" / "services.json"
DATASOURCES = INFRA_DIR / "grafana" / "provisioning" / "datasources" / "datasources.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def exported_series() -> set[str]:
    """Every series name common.metrics can export."""
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, Histogram):
            names |= {f"{value._name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        elif isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Gauge):
            names.add(value._name)
    return names


def test_prometheus_scrapes_every_service_on_its_metrics_port() -> None:
    # A file people own: `make new-service` adds a service's job, this keeps every service's.
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs == {s.name: [f"{s.name}:{METRICS_PORT}"] for s in SERVICES}


@pytest.mark.parametrize("name", PROFILE_SERVICES)
def test_the_profile_runs_official_images_pinned_by_tag_only_when_asked(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]

    assert service["profiles"] == ["observability"]
    tag = service["image"].rpartition(":")[2]
    assert tag != "latest"
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), service["image"]
    for published in service.get("ports", []):
        assert published.startswith("127.0.0.1:")  # the host's loopback only


def test_prometheus_reads_the_scrape_configuration(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["prometheus"]["volumes"]

    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_service_serves_metrics_inside_the_network_only(
    compose: dict[str, Any], service: Service
) -> None:
    api = compose["services"][service.name]

    assert api["environment"][f"{service.env_prefix}METRICS_PORT"] == str(METRICS_PORT)
    assert not any(str(METRICS_PORT) in published for published in api["ports"])
    # Traces go to the collector when the profile's endpoint is set, and nowhere otherwise.
    assert api["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"


def test_the_collector_receives_what_the_services_send_and_passes_traces_on() -> None:
    config = yaml.safe_load((INFRA_DIR / "otel-collector" / "config.yaml").read_text())
    port = COLLECTOR_ENDPOINT.rsplit(":", 1)[1]

    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(f":{port}")
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert set(pipeline["exporters"]) <= set(config["exporters"])
    assert set(pipeline["processors"]) <= set(config["processors"])


def test_the_dashboard_is_grafana_json_on_the_provisioned_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {source["uid"] for source in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]

    assert dashboard["uid"]
    assert dashboard["title"]
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] in uids
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_the_dashboard_shows_rate_errors_duration_and_the_pools_from_what_common_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    used = {name for expr in expressions for name in re.findall(r"\b([a-z_]+)\{", expr)}

    assert used <= exported_series()
    assert {
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_bucket",
        "db_pool_connections",
        "db_pool_waiting",
        "db_pool_timeouts_total",
    } <= used
    assert any('status=~"5.."' in expr for expr in expressions)
