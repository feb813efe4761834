"""What every pod of the deployment is made of, whoever runs it (the services, PgBouncer, the
dev overlay's Postgres and NATS): its labels, a restricted container, a workload that runs its
pods as a non-root user with no service-account token."""

from __future__ import annotations

from typing import Any

PART_OF = "fastapi-services"


def labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
    }


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def metadata(name: str, component: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "labels": labels(name, component), **extra}


def restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security(user: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(*, cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def service_account(name: str, component: str) -> dict[str, Any]:
    # No pod of this project talks to the Kubernetes API: no token is mounted.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(name, component),
        "automountServiceAccountToken": False,
    }


def container(name: str, image: str, *, resources: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A container that pulls its image at each start and runs restricted: not as root, no
    privilege to gain, nothing written outside its volumes."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Always",
        **fields,
        "resources": resources,
        "securityContext": restricted_container_security(),
    }


def workload(
    kind: str,
    name: str,
    component: str,
    *,
    user: int,
    pod: dict[str, Any],
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment or StatefulSet of `name`'s pods: run as `user`, under the service account of
    the same name, with no Kubernetes API token; `spec` and `pod` add what this one needs."""
    template_metadata: dict[str, Any] = {"labels": labels(name, component)}
    if annotations:
        template_metadata["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": metadata(name, component),
        "spec": {
            **spec,
            "selector": {"matchLabels": selector(name)},
            "template": {
                "metadata": template_metadata,
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(user),
                    **pod,
                },
            },
        },
    }
