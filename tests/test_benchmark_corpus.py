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
