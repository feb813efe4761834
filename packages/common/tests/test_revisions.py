"""`expected_heads` reads what Alembic would answer, without importing Alembic."""

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from common.revisions import expected_heads

SAMPLE = Path(__file__).parent / "sample" / "alembic"

# name -> (revision, down_revision as written in the script)
LINEAR = {"a": ("a1", "None"), "b": ("b2", '"a1"')}
BRANCHED = {**LINEAR, "c": ("c3", '"a1"')}
MERGED = {**BRANCHED, "d": ("d4", '("b2", "c3")')}


def write_migrations(folder: Path, scripts: dict[str, tuple[str, str]]) -> Path:
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text("")
    (folder / "script.py.mako").write_text("")
    for name, (revision, down) in scripts.items():
        (folder / "versions" / f"{name}.py").write_text(
            "from collections.abc import Sequence\n\n"
            f'revision: str = "{revision}"\n'
            f"down_revision: str | Sequence[str] | None = {down}\n"
            "branch_labels = None\n"
        )
    return folder


@pytest.mark.parametrize(
    "scripts", [LINEAR, BRANCHED, MERGED], ids=["linear", "two heads", "merge"]
)
def test_the_heads_are_alembics(tmp_path: Path, scripts: dict[str, tuple[str, str]]) -> None:
    folder = write_migrations(tmp_path / "alembic", scripts)

    assert expected_heads(folder) == frozenset(ScriptDirectory(str(folder)).get_heads())


def test_the_sample_services_head() -> None:
    assert expected_heads(SAMPLE) == frozenset(ScriptDirectory(str(SAMPLE)).get_heads())


def test_a_folder_without_alembic_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MIGRATIONS_DIR"):
        expected_heads(tmp_path)
