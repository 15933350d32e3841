"""The command-line shell: parse arguments, call the stages in order, print, return an exit code.

Exit codes (EXIT_CODES, also in ``edgefit --help`` and the README): 0 ok; 1 "does not fit" where a command is a
gate (``fit --require``); 2 bad input or usage; 3 internal error (a bug: one line naming a saved traceback);
130 interrupted; 141 stdout closed early (``--json | head``: quiet, like a tool killed by SIGPIPE). Library code
raises ``EdgefitError`` subclasses; this is the only place they become codes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import select
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from edgefit import __version__
from edgefit.commands import COMMAND_MODULES
from edgefit.errors import EdgefitError, UsageError, one_line

EXIT_OK, EXIT_NOT_MET, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 3, 130, 141
EXIT_CODES = (
    "exit codes: 0 ok; 1 `fit --require`: a combination does not meet the workload; 2 bad input or usage "
    "(one line says what, where and how to fix it); 3 internal error, a bug (one line names a saved traceback: "
    "please report it); 130 interrupted (measurements already stored are kept); 141 stdout closed early "
    "(`--json | head`), nothing more is printed"
)


class _Parser(argparse.ArgumentParser):
    """argparse exits with code 2 on usage errors already; keep its one-line message, drop nothing."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgefit",
        description=(
            "Which models run on which edge device, how fast, in how much memory, at what power. "
            "Times the kernels decoders are made of here with onnxruntime (a kernel table), prices any model "
            "with it, translates that to every profiled device, and checks itself against real ONNX decoders."
        ),
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"edgefit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"edgefit.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except EdgefitError as exc:
        print(f"edgefit: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgefit: interrupted; results already stored are kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError as exc:
        return EXIT_BROKEN_PIPE if _stdout_closed() else _internal_error(exc, argv)
    except Exception as exc:  # the last resort: a bug must never look like "does not fit" (1) or bad input (2)
        return _internal_error(exc, argv)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    words = list(argv) if argv is not None else sys.argv[1:]
    for i, word in enumerate(words, 1):  # no real command line holds one; a caller in Python can pass any str
        if "\x00" in word:
            raise UsageError(f"argument {i} ({one_line(word)}) contains a NUL byte; no path or value can hold one")
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    return int(args.func(args))


def _stdout_closed() -> bool:
    """True when stdout's reader has gone (``| head`` exited); stdout is then pointed at /dev/null, so nothing
    more (not even Python's flush at exit) complains. A BrokenPipeError from another pipe (a worker's stdin)
    leaves stdout alone and is a bug like any other."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False  # not a file descriptor (a test's capture): cannot be a closed pipe
    try:
        sys.stdout.flush()
        closed = _reader_gone(fd)
    except (BrokenPipeError, ValueError):
        closed = True
    except OSError:
        return False
    if closed:
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
    return closed


def _reader_gone(fd: int) -> bool:
    """A pipe or socket whose other end is closed polls as an error (the buffer of the failed write is gone)."""
    mode = os.fstat(fd).st_mode
    poll = getattr(select, "poll", None)
    if poll is None or not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return False
    p = poll()
    p.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in p.poll(0))


def _internal_error(exc: BaseException, argv: Sequence[str] | None) -> int:
    """One line: what broke, "please report this", and where the full traceback was saved; exit code 3."""
    where = _save_traceback(exc, argv)
    first = one_line((str(exc).splitlines() or [""])[0][:300])
    saved = f"traceback saved in {where}" if isinstance(where, Path) else f"the traceback was not saved ({where})"
    with contextlib.suppress(OSError, ValueError):  # stderr gone too: the exit code still says it
        print(
            f"edgefit: internal error: {type(exc).__name__}: {first}; a bug in edgefit {__version__}: please report "
            f"this with the command you ran; {saved}",
            file=sys.stderr,
        )
    return EXIT_INTERNAL


def _save_traceback(exc: BaseException, argv: Sequence[str] | None) -> Path | str:
    """The traceback with versions and the command line, in the cache folder (else the temp folder). Returns the
    file, or why it could not be written."""
    from edgefit.paths import cache_dir

    text = (
        f"edgefit {__version__}, Python {platform.python_version()} ({sys.executable}), {platform.platform()}\n"
        f"command: edgefit {' '.join(sys.argv[1:] if argv is None else list(argv))}\n"
        f"time: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n\n"
        + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.time_ns() % 10**6:06d}.txt"
    why = "no folder was writable"
    for folder in (cache_dir() / "crashes", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (name if folder.name == "crashes" else f"edgefit-{name}")
            with path.open("x", encoding="utf-8") as f:  # "x": never follow or replace an existing file
                f.write(text)
            return path
        except OSError as err:
            why = f"{folder}: {err.strerror or err}"
    return why


def entry() -> None:
    code = main()
    try:
        sys.stdout.flush()  # what is still buffered meets a closed pipe here, not in Python's exit handler
    except BrokenPipeError:
        _stdout_closed()
        code = EXIT_BROKEN_PIPE
    sys.exit(code)
