"""Where the built-in packs live: apart from `packs`, so the cache can fingerprint them without
importing the pack loader (a warm run that replays its result never loads the packs)."""

from __future__ import annotations

from pathlib import Path


def builtin_pack_dir() -> Path:
    """Packs ship inside the wheel as dbpoollint/rules; a source checkout keeps them in rules/."""
    installed = Path(__file__).with_name("rules")
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "rules"
