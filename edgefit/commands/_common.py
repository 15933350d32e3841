"""Options and output helpers shared by the command modules."""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from edgefit.errors import UsageError
from edgefit.ids import id_problem
from edgefit.paths import default_db_path

# Flag ranges: far beyond any real use, small enough that every product of them stays a sane number.
MAX_TOKENS = 2**24  # --context / --prompt / --generate: 16M tokens, 128x the longest context of a catalog model
MAX_THREADS = 1024
MAX_BUDGET_S = 3600.0


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


class _Console(Console):
    """rich answers a closed stdout (``| head``) with ``SystemExit(1)``, which is the "does not fit" code: raise
    BrokenPipeError instead, which ``cli.main`` turns into a quiet exit (141)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "stdout closed by its reader")


def console() -> Console:
    """Console for humans on stdout. Respects NO_COLOR; wraps at a terminal's width, never in a pipe.

    ``markup=False``: names, ids, paths and messages come from files and users, and a ``[/bold]`` (or a
    backslash before it, which defeats escaping) must print as itself, never crash or restyle the output. Styled
    output is built as ``rich.text.Text``, strings are always literal."""
    out = _Console(highlight=False, markup=False)
    out.soft_wrap = not out.is_terminal  # a terminal wraps lines at its width; a pipe or file gets them whole
    return out


def err_console() -> Console:
    """Console for humans on stderr; literal strings, as ``console``."""
    return _Console(stderr=True, highlight=False, markup=False)


def check_int_flag(flag: str, value: int | None, *, low: int, high: int) -> None:
    """UsageError naming ``flag`` unless ``value`` is None or an int in low..high (bool is not an int)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{flag} {value}: expected an integer from {low:,} to {high:,}")


def check_float_flag(flag: str, value: float | None, *, low: float, high: float, low_open: bool = True) -> None:
    """UsageError naming ``flag`` unless ``value`` is None or a finite number in (low, high] (or [low, high])."""
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise UsageError(f"{flag} {value}: expected a finite number in {bracket}{low:g}, {high:g}]")


def check_workload_flags(args: argparse.Namespace, *, default_prompt: int) -> None:
    """The one check of the workload flags ``predict`` and ``fit`` share (each has a subset of them): tokens are
    1..MAX_TOKENS and the prompt fits in the context; threads 1..MAX_THREADS; rates, times, caps finite and > 0.
    A ``--prompt`` not given (None) becomes ``default_prompt``, or the context when that is smaller."""
    if getattr(args, "prompt", 0) is None:
        context = getattr(args, "context", None)
        args.prompt = min(default_prompt, context) if isinstance(context, int) and context >= 1 else default_prompt
    for flag, name in (("--context", "context"), ("--prompt", "prompt"), ("--generate", "generate")):
        check_int_flag(flag, getattr(args, name, None), low=1, high=MAX_TOKENS)
    context, prompt = getattr(args, "context", None), getattr(args, "prompt", None)
    if context is not None and prompt is not None and prompt > context:
        raise UsageError(
            f"--prompt {prompt} exceeds --context {context}: the prompt is held in the KV cache; "
            "raise --context or lower --prompt"
        )
    check_int_flag("--threads", getattr(args, "threads", None), low=1, high=MAX_THREADS)
    check_float_flag("--min-tps", getattr(args, "min_tps", None), low=0.0, high=1e9, low_open=False)
    for flag, name in (("--max-ttft", "max_ttft"), ("--power-cap", "power_cap"), ("--price-cap", "price_cap")):
        check_float_flag(flag, getattr(args, name, None), low=0.0, high=1e9)


def check_output_file(flag: str, path: Path | None) -> None:
    """An output file path must not be an existing directory, nor sit under a path that is a file. Checked before
    any work, so a long run never ends in a failed write."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; expected a file path such as {path / 'out.json'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{flag} {path}: {parent} is a file, not a folder; choose another path")
            break


def id_arg(value: str) -> str:
    """argparse ``type=`` for a flag that names an id (``--id``): one pattern for every id (edgefit.ids), so a
    ``../../x`` is refused at the flag, before anything is built or written."""
    problem = id_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return value
