"""Typed errors. Library code raises these; only ``edgefit.cli.main`` turns them into exit codes.

Every message names what is wrong, where (file, field), what was expected, what was found and how to fix it,
on one line.
"""

from __future__ import annotations

import re


class EdgefitError(Exception):
    """Base class. ``exit_code`` is what ``cli.main`` returns for it."""

    exit_code: int = 2


class UsageError(EdgefitError, ValueError):
    """Bad command-line arguments or combinations."""


class UnitError(EdgefitError, ValueError):
    """A quantity string with an unknown or wrong unit ("8 GiB" expected, "8 gigs" found)."""


class ProfileError(EdgefitError, ValueError):
    """A malformed or inconsistent device profile, or an unknown device id."""


class CatalogError(EdgefitError, ValueError):
    """A malformed model card / config.json, an unknown model id or precision."""


class BuildError(EdgefitError, RuntimeError):
    """The ONNX builder could not build a model."""


class ModelFileError(EdgefitError, ValueError):
    """A user .onnx file that is not ONNX, truncated, or whose external data is missing or escapes its folder."""


class MemoryGuardError(EdgefitError, RuntimeError):
    """A model would not fit in the RAM this process may use; refused before loading."""


class BenchError(EdgefitError, RuntimeError):
    """A measurement failed (worker crashed, timed out)."""


class StoreError(EdgefitError, RuntimeError):
    """The results database or a results bundle is unreadable or from an incompatible schema."""


class PredictError(EdgefitError, ValueError):
    """Prediction impossible: no measurements for the precision, or a fit that cannot be made."""


class FleetError(EdgefitError, RuntimeError):
    """`edgefit fleet`: ansible-core missing, an inventory Ansible cannot read, a wheel that cannot be built.
    (A host that fails is not an error: it is reported with its reason and the others carry on.)"""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """``text`` safe to print as one terminal line: control characters (a newline, an ESC that would start a
    terminal escape sequence from a hostile file name) are shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
