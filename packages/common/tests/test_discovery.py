from pathlib import Path

import pytest

from common.discovery import DiscoveryError, discover_routers, load_models

ROUTES = "from fastapi import APIRouter\nrouter = APIRouter(prefix='/{name}')\n"


def make_domains(root: Path, package: str, domains: dict[str, str]) -> None:
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    for name, init in domains.items():
        (root / package / name).mkdir()
        (root / package / name / "__init__.py").write_text(init.format(name=name))


def test_routers_are_found_in_alphabetical_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_domains(
        tmp_path, "ordered_domains", {"zebras": ROUTES, "apples": ROUTES, "mangos": ROUTES}
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    routers = discover_routers("ordered_domains")

    assert [router.prefix for router in routers] == ["/apples", "/mangos", "/zebras"]


def test_a_domain_without_router_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_domains(tmp_path, "routerless_domains", {"orphans": "x = 1\n"})
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(DiscoveryError, match=r"routerless_domains\.orphans"):
        discover_routers("routerless_domains")


def test_a_domain_that_fails_to_import_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_domains(tmp_path, "broken_domains", {"broken": "import not_a_module_anywhere\n"})
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(ModuleNotFoundError, match="not_a_module_anywhere"):
        discover_routers("broken_domains")


def test_models_modules_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_domains(tmp_path, "model_domains", {"cats": ROUTES, "dogs": ROUTES})
    (tmp_path / "model_domains" / "dogs" / "models.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    modules = load_models("model_domains")

    assert [module.__name__ for module in modules] == ["model_domains.dogs.models"]
