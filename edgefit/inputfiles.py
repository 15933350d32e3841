"""Reading files a user (or another host) hands us: profiles, cards, the ladder, config.json, results bundles.

Every such file goes through here before any field is looked at, so the checks that do not depend on the format
happen once, where the bytes enter:

    path ──open──> regular file?  (a device such as /dev/zero, a FIFO or a socket would be read forever: refused)
         ──size──> at most ``max_bytes`` (16 MiB for TOML/JSON, more for bundles)
         ──decode─> UTF-8
         ──parse──> TOML / JSON with every number finite (NaN, Infinity and 1e999 refused), integers of at most
                    4300 digits (Python's int/str conversion limit), nesting at most MAX_DEPTH levels

Failures are raised as the standard exceptions the loaders already handle, so each keeps its own one-line
message naming the file: ``OSError`` (with ``strerror``) for what is not a readable regular file of a sane size,
``UnicodeDecodeError``, and ``ValueError`` for anything wrong with the text (``tomllib.TOMLDecodeError`` and
``json.JSONDecodeError`` are ValueErrors too).
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MIB = 2**20
MAX_TEXT_BYTES = 16 * MIB  # profiles, cards, the ladder, config.json: kilobytes in practice
MAX_BUNDLE_BYTES = 1024 * MIB  # a results bundle of a full ladder run is ~12 MB
# Deeper than any real file (a profile nests 4 levels); shallow enough that no loader or repr() recurses too far.
MAX_DEPTH = 32


def shown(value: object) -> str:
    """A user's value for an error message: cut short, containers by type, never an int too long for repr()."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = type(value).__name__ if isinstance(value, (dict, list)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_text(path: str | os.PathLike[str], *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes.

    Raises FileNotFoundError, OSError (``strerror`` says what: a directory, not a regular file, too large) or
    UnicodeDecodeError. The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a
    FIFO cannot block the open and a file swapped after a check cannot slip past it.
    """
    p = Path(path)
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, expected a file", str(p))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a device, FIFO or socket); expected a text file", str(p))
        if st.st_size > max_bytes:
            raise OSError(
                errno.EFBIG, f"file of {st.st_size:,} bytes is larger than the {max_bytes // MIB} MiB allowed", str(p)
            )
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:  # a file growing while we read is capped too
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise OSError(errno.EFBIG, f"file grew past the {max_bytes // MIB} MiB allowed while reading", str(p))
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text!r} is not finite; expected a finite number (NaN and Infinity are refused)")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"number {text!r} is not finite; expected a finite number (NaN and Infinity are refused)")


def check_depth(data: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """ValueError if tables/arrays nest deeper than ``max_depth`` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise ValueError(f"tables/arrays nest more than {max_depth} levels deep; no edgefit file needs that")
        stack.extend((c, depth + 1) for c in children)


def _limits_message(exc: ValueError) -> str:
    text = str(exc)
    if "integer string conversion" in text:  # Python's int/str conversion limit (sys.get_int_max_str_digits)
        return "an integer with more than 4300 digits; expected a number of plausible size"
    return text


def loads_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` with finite floats, bounded nesting; every failure is a ValueError."""
    try:
        data = tomllib.loads(text, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"tables/arrays nest too deep (more than {MAX_DEPTH} levels allowed)") from None
    except tomllib.TOMLDecodeError:
        raise
    except ValueError as exc:
        raise ValueError(_limits_message(exc)) from None
    check_depth(data)
    return data


def loads_json(text: str) -> Any:
    """``json.loads`` refusing NaN/Infinity/1e999, integers past Python's digit limit and deep nesting (ValueError;
    ``json.JSONDecodeError`` for syntax, which is a ValueError)."""
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"objects/arrays nest too deep (more than {MAX_DEPTH} levels allowed)") from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise ValueError(_limits_message(exc)) from None
    check_depth(data)
    return data


def load_toml(path: str | os.PathLike[str], *, max_bytes: int = MAX_TEXT_BYTES) -> dict[str, Any]:
    return loads_toml(read_text(path, max_bytes=max_bytes))


def load_json(path: str | os.PathLike[str], *, max_bytes: int = MAX_TEXT_BYTES) -> Any:
    return loads_json(read_text(path, max_bytes=max_bytes))


def dumps_json(data: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes NaN/Infinity (invalid JSON): a ValueError instead, the last guard at writers."""
    return json.dumps(data, allow_nan=False, **kwargs)
