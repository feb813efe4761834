"""Render every overlay of deploy/kubernetes/ with `kubectl kustomize`, and validate what it
renders against the schemas of each supported Kubernetes version, strictly (unknown fields
refused), offline (kubernetes-validate bundles the schemas).

    uv run python tools/render_manifests.py                 # render and validate every overlay
    uv run python tools/render_manifests.py --out DIR       # also write DIR/<overlay>.yaml
    uv run python tools/render_manifests.py --versions 1.32.0 1.37.0

`make manifests-check` runs it; `make manifests-checkov` runs checkov on what `--out` wrote.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
OVERLAYS_DIR = ROOT / "deploy" / "kubernetes" / "overlays"
# The Kubernetes minor versions the manifests support: the releases still maintained upstream or
# in the managed clouds' extended support when they were written (each schema is bundled).
KUBERNETES_VERSIONS = ("1.32.0", "1.33.0", "1.34.0", "1.35.0", "1.36.0", "1.37.0")
# The overlays use kustomize's `patches` and directories as `resources`: kustomize 5 (kubectl
# 1.27 and later) renders them; Debian bookworm's kubectl (1.20, kustomize 2) does not.
MIN_KUSTOMIZE = (5, 0)


class RenderError(RuntimeError):
    """An overlay that does not render or validate; the message says where and why."""


def overlays() -> list[Path]:
    return sorted(
        path for path in OVERLAYS_DIR.iterdir() if (path / "kustomization.yaml").is_file()
    )


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise RenderError("kubectl not found: install it (kubectl 1.27 or later, for kustomize 5)")
    output = subprocess.run(
        [found, "version", "--client", "--output=json"], capture_output=True, text=True, check=True
    ).stdout
    kustomize = str(json.loads(output).get("kustomizeVersion", ""))
    numbers = tuple(int(n) for n in re.findall(r"\d+", kustomize)[:2])
    if numbers < MIN_KUSTOMIZE:
        raise RenderError(
            f"kubectl's kustomize is {kustomize or 'missing'}: the overlays need kustomize 5 "
            "(kubectl 1.27 or later)"
        )
    return found


def render(overlay: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize <overlay>`, as documents."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RenderError(f"{overlay.name}: kubectl kustomize failed:\n{result.stderr.strip()}")
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def invalid(documents: list[dict[str, Any]], version: str) -> list[str]:
    """What the schemas of Kubernetes `version` refuse in `documents`, one line each."""
    problems = []
    for document in documents:
        name = f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{name} (Kubernetes {version}): {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name} (Kubernetes {version}): no schema ({exc})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write each rendered overlay here")
    parser.add_argument("--versions", nargs="+", default=list(KUBERNETES_VERSIONS))
    args = parser.parse_args(argv)
    failures = 0
    for overlay in overlays():
        started = time.monotonic()
        try:
            documents = render(overlay)
        except RenderError as exc:
            print(exc, file=sys.stderr)
            return 1
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            text = yaml.safe_dump_all(documents, sort_keys=False)
            (args.out / f"{overlay.name}.yaml").write_text(text, encoding="utf-8")
        problems = [line for version in args.versions for line in invalid(documents, version)]
        for line in problems:
            print(f"{overlay.name}: {line}", file=sys.stderr)
        failures += len(problems)
        print(
            f"{overlay.name}: {len(documents)} objects rendered, "
            f"{'valid' if not problems else f'{len(problems)} problems'} for Kubernetes "
            f"{', '.join(v.rsplit('.', 1)[0] for v in args.versions)} (strict), "
            f"{time.monotonic() - started:.1f}s"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
