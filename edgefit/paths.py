"""Where edgefit finds its built-in data and keeps its cache and database.

Built-in profiles and catalog: ``edgefit/data/...`` inside an installed wheel (see pyproject's force-include),
otherwise the repository's top-level ``device_profiles/`` and ``models/`` (editable install, source checkout).
Cache (generated .onnx files): ``$XDG_CACHE_HOME/edgefit`` or ``~/.cache/edgefit``; ``EDGEFIT_CACHE_DIR``
overrides. Database: ``$XDG_DATA_HOME/edgefit/edgefit.sqlite`` or ``~/.local/share/edgefit/...``;
``EDGEFIT_DB`` overrides.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(*parts: str) -> Path:
    installed = _PACKAGE_DIR.joinpath("data", *parts)
    if installed.exists():
        return installed
    return _PACKAGE_DIR.parent.joinpath(*parts)


def builtin_profiles_dir() -> Path:
    return _data_dir("device_profiles")


def builtin_catalog_dir() -> Path:
    return _data_dir("models", "catalog")


def ladder_path() -> Path:
    return _data_dir("models", "ladder.toml")


def cache_dir() -> Path:
    env = os.environ.get("EDGEFIT_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgefit"


def default_db_path() -> Path:
    env = os.environ.get("EDGEFIT_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "edgefit" / "edgefit.sqlite"
