"""The command-line shell: parse arguments, call the stages in order, print, return an exit code.

Exit codes: 0 ok; 1 "does not fit" where a command is a gate (``fit --require``); 2 bad input or usage;
130 interrupted. Library code raises ``EdgefitError`` subclasses; this is the only place they become codes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edgefit import __version__
from edgefit.commands import COMMAND_MODULES
from edgefit.errors import EdgefitError


class _Parser(argparse.ArgumentParser):
    """argparse exits with code 2 on usage errors already; keep its one-line message, drop nothing."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgefit",
        description=(
            "Which models run on which edge device, how fast, in how much memory, at what power. "
            "Measures small real ONNX decoders here with onnxruntime, fits calibrated scaling laws, "
            "and predicts any model on any profiled device."
        ),
    )
    parser.add_argument("--version", action="version", version=f"edgefit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"edgefit.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except EdgefitError as exc:
        print(f"edgefit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgefit: interrupted; results already stored are kept", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
