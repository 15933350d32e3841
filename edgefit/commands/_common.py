"""Options and output helpers shared by the command modules."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from edgefit.paths import default_db_path


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine output on stdout (base SI units), nothing else")


def add_db_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help=f"SQLite results database (default: $EDGEFIT_DB or {default_db_path()})",
    )


def db_path(args: argparse.Namespace) -> Path:
    return args.db if getattr(args, "db", None) is not None else default_db_path()


def print_json(obj: Any) -> None:
    # allow_nan=False: a NaN/Infinity that slipped past the input checks fails here instead of printing invalid JSON
    text = json.dumps(obj, indent=2, sort_keys=False, default=_default, allow_nan=False)
    sys.stdout.write(text)
    sys.stdout.write("\n")


def _default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def console() -> Console:
    """Console for humans on stdout. Respects NO_COLOR; never wraps in a pipe."""
    return Console(highlight=False, soft_wrap=not sys.stdout.isatty())


def err_console() -> Console:
    return Console(stderr=True, highlight=False)
