"""Discovery walks folders with `os.scandir` on strings; these pin what it must keep doing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbpoollint.cli import _planned_files
from dbpoollint.config import Settings
from dbpoollint.discovery import Excludes, discover, forget_file_system, parts_below, stem
from tests.test_cli import write


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    forget_file_system()
    return tmp_path


def found(*targets: str, patterns: tuple[str, ...] = (), gitignore: bool = True) -> list[str]:
    excludes = Excludes(list(patterns), Path.cwd())
    return [f.path for f, _ in discover([Path(t) for t in targets], excludes, gitignore)]


def test_a_folders_files_come_sorted_before_its_sub_folders_in_name_order(project: Path) -> None:
    for name in ("b/z.py", "b/a.py", "a/y.py", "a/c/x.py", "m.py", "a.py", "a/b.py"):
        write(project / name, "")
    assert found(".") == ["a.py", "m.py", "a/b.py", "a/y.py", "a/c/x.py", "b/a.py", "b/z.py"]
    assert found("./a/") == ["a/b.py", "a/y.py", "a/c/x.py"]


def test_files_below_an_absolute_target_keep_its_spelling(project: Path) -> None:
    write(project / "pkg" / "db.py", "")
    assert found(str(project)) == [str(project / "pkg" / "db.py")]


def test_a_symlinked_folder_is_not_entered(project: Path) -> None:
    write(project / "outside" / "real.py", "")
    write(project / "app" / "db.py", "")
    (project / "app" / "linked").symlink_to(project / "outside", target_is_directory=True)
    assert found("app") == ["app/db.py"]


def test_a_symlinked_file_is_checked_once_under_the_name_found_first(project: Path) -> None:
    write(project / "b_real.py", "")
    (project / "a_link.py").symlink_to("b_real.py")
    (project / "dangling.py").symlink_to("nowhere.py")
    assert found(".") == ["a_link.py", "dangling.py"]
    # Its real path names it: the target's module.
    (planned,) = [p for p in _planned_files([Path(".")], Settings(root=project), False)][:1]
    assert (planned.display, planned.module) == ("a_link.py", "b_real")


def test_excluded_folders_by_default_name_pattern_and_path_below_the_root(project: Path) -> None:
    for name in ("build/x.py", "node_modules/y.py", "gen/one/g.py", "src/gen/keep.py", "src/a.py"):
        write(project / name, "")
    assert found(".", patterns=("gen/one",)) == ["src/a.py", "src/gen/keep.py"]
    assert found(".", patterns=("gen",)) == ["src/a.py"]
    # Below another folder the pattern still sees the path from the configuration's root.
    assert found("src", patterns=("src/gen/",)) == ["src/a.py"]


def test_gitignore_of_a_sub_folder_counts_without_a_repository(project: Path) -> None:
    write(project / "pkg" / ".gitignore", "*_gen.py\n!keep_gen.py\nout/\n")
    for name in ("a_gen.py", "keep_gen.py", "out/x.py", "b.py"):
        write(project / "pkg" / name, "")
    write(project / "top_gen.py", "")
    assert found(".") == ["top_gen.py", "pkg/b.py", "pkg/keep_gen.py"]
    assert len(found(".", gitignore=False)) == 5


def test_gitignore_above_the_target_counts_up_to_the_repository_root(project: Path) -> None:
    (project / ".git").mkdir()
    write(project / ".gitignore", "src/skip/\nignored.py\n")
    for name in ("skip/x.py", "ignored.py", "kept.py"):
        write(project / "src" / name, "")
    assert found("src") == ["src/kept.py"]


def test_paths_below_a_folder() -> None:
    assert parts_below("/a/b/c", "/a") == ("b", "c")
    assert parts_below("/a", "/a") == ()
    assert parts_below("/ab/c", "/a") is None
    assert parts_below("/a/b", "/") == ("a", "b")


@pytest.mark.parametrize("name", ["db.py", "a.b.py", ".hidden", ".hidden.py", "x.", "plain"])
def test_stem_is_pathlibs(name: str) -> None:
    assert stem(name) == Path(name).stem
