"""The benchmark's synthetic corpus: its multi-module projects hold the cross-module shapes,
and dbpoollint finds every finding planted in them (the recall the benchmark prints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.synthetic import CROSS_MODULE_KINDS, cross_module_recall, generate
from tests.conftest import check_json


def test_every_cross_module_shape_is_planted_and_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = generate(tmp_path / "corpus", 60, 0.1, 0)
    (corpus.root / "pyproject.toml").write_text("")
    assert sum(1 for _ in corpus.root.rglob("*.py")) == 60
    planted = [item for item in corpus.expected if item.kind in CROSS_MODULE_KINDS]
    assert {item.kind for item in planted} == set(CROSS_MODULE_KINDS)
    assert {item.code for item in planted} == {"DPL101", "DPL103", "DPL302"}
    monkeypatch.chdir(corpus.root)
    findings = check_json(".", extra=["--no-cache"])
    total = len(planted)
    assert cross_module_recall(corpus, findings) == f"cross-module recall {total}/{total} (100%)"
    in_projects = {
        (Path(f["filename"]).resolve(), f["location"]["row"], f["code"])
        for f in findings
        if "proj_" in f["filename"]
    }
    assert in_projects == {(item.path.resolve(), item.line, item.code) for item in planted}


def test_the_parse_only_baseline_lists_the_second_pass_files_too(tmp_path: Path) -> None:
    """P2's yardstick parses what dbpoollint parses: a module that only names a helper which
    builds a client is parsed in the second pass, and listed."""
    from benchmarks.baselines import parsed_by_dbpoollint, prefiltered

    (tmp_path / "db.py").write_text(
        "import redis\n\n\ndef get_cache():\n    return redis.Redis()\n", encoding="utf-8"
    )
    (tmp_path / "jobs.py").write_text(
        "from db import get_cache\n\n\ndef run():\n    get_cache().ping()\n", encoding="utf-8"
    )
    (tmp_path / "other.py").write_text("x = 1\n", encoding="utf-8")
    listed = {path.name for path in parsed_by_dbpoollint(tmp_path)}
    assert listed == {"db.py", "jobs.py"}
    assert {path.name for path in prefiltered(tmp_path)} == {"db.py"}
