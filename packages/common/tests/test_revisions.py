"""`expected_heads` reads what Alembic would answer, without importing Alembic."""

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from common.revisions import expected_heads, revision_graph_problem

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


@pytest.mark.parametrize("scripts", [LINEAR, MERGED], ids=["linear", "merged branches"])
def test_a_line_or_merged_branches_have_no_problem(
    tmp_path: Path, scripts: dict[str, tuple[str, str]]
) -> None:
    assert revision_graph_problem(write_migrations(tmp_path / "alembic", scripts)) is None


@pytest.mark.parametrize(
    ("scripts", "problem"),
    [
        (
            {**LINEAR, "c": ("c3", '"f903a9d01171"')},
            "alembic/versions/c.py: revision c3 has down_revision 'f903a9d01171', which no "
            "script in alembic/versions declares: set it to the revision this one follows",
        ),
        (
            BRANCHED,
            "alembic/versions/b.py and alembic/versions/c.py: 2 heads (b2, c3) where one is "
            "expected: set the newer one's down_revision to the other, or join them with "
            "`alembic merge heads`",
        ),
        (
            {"a": ("a1", '"b2"'), "b": ("b2", '"a1"')},
            "alembic/versions/a.py: revision a1 follows itself (a1 -> b2 -> a1): one of these "
            "down_revision values is wrong",
        ),
        (
            {**LINEAR, "c": ("b2", '"a1"')},
            "alembic/versions/b.py and alembic/versions/c.py both declare revision b2: give "
            "one a revision id of its own",
        ),
    ],
    ids=["missing down_revision", "two heads", "cycle", "one revision twice"],
)
def test_a_broken_graph_is_one_line_naming_the_file_and_the_revision(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scripts: dict[str, tuple[str, str]],
    problem: str,
) -> None:
    folder = write_migrations(tmp_path / "alembic", scripts)
    monkeypatch.chdir(tmp_path)

    assert revision_graph_problem(folder) == problem
