"""Units: constants and the parser for human-written quantities in TOML files.

Machine-facing numbers are base SI (bytes, s, W, Hz, FLOP/s). Humans write ``"8 GiB"``, ``"17.1 GB/s"``,
``"2.7 W"``; decimal (kB, MB, GB, TB = 10^3n) and binary (KiB, MiB, GiB, TiB = 2^10n) prefixes are distinct.
"""

from __future__ import annotations

import math
import re

from edgefit.errors import UnitError
from edgefit.inputfiles import shown as _shown

KB = 10**3
MB = 10**6
GB = 10**9
TB = 10**12
KIB = 2**10
MIB = 2**20
GIB = 2**30
TIB = 2**40

_BYTE_UNITS: dict[str, int] = {
    "B": 1,
    "kB": KB,
    "KB": KB,
    "MB": MB,
    "GB": GB,
    "TB": TB,
    "KiB": KIB,
    "MiB": MIB,
    "GiB": GIB,
    "TiB": TIB,
}
_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}

# kind -> {unit spelling: factor to the base unit}
UNITS: dict[str, dict[str, float]] = {
    "bytes": {u: float(f) for u, f in _BYTE_UNITS.items()},
    "bytes_per_s": {f"{u}/s": float(f) for u, f in _BYTE_UNITS.items()},
    "w": {"W": 1.0, "mW": 1e-3, "kW": 1e3},
    "wh": {"Wh": 1.0, "kWh": 1e3, "mWh": 1e-3},
    "hz": {f"{p}Hz": f for p, f in _SI.items() if p in ("", "k", "K", "M", "G")},
    "flops_per_s": {f"{p}FLOPS": f for p, f in _SI.items()} | {f"{p}FLOP/s": f for p, f in _SI.items()},
    "ops_per_s": {f"{p}OPS": f for p, f in _SI.items()} | {f"{p}OP/s": f for p, f in _SI.items()},
    "s": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0, "h": 3600.0},
    "usd": {"USD": 1.0, "$": 1.0},
}

_QUANTITY = re.compile(r"^\s*(?P<sign>[-+]?)\s*(?P<num>(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*(?P<unit>\S*)\s*$")


def parse_quantity(text: str | int | float, kind: str, *, where: str = "") -> float:
    """Parse ``"8 GiB"`` (kind ``bytes``) into base units. A bare number is taken as already in base units.

    ``where`` names the file and field for the error message.
    """
    if kind not in UNITS:
        raise ValueError(f"unknown quantity kind {kind!r}")  # programming error, not user input
    loc = f"{where}: " if where else ""
    if isinstance(text, bool):
        raise UnitError(f"{loc}expected a number or a quantity like {_example(kind)!r}, found {text!r}")
    if isinstance(text, (int, float)):
        try:
            number = float(text)
        except OverflowError:  # an int beyond float range (TOML and JSON integers are unbounded)
            number = math.inf
        if not math.isfinite(number):
            raise UnitError(f"{loc}expected a finite number like {_example(kind)!r}, found {_shown(text)}")
        return number
    stripped = text.strip()
    if stripped.startswith("$"):  # "$80" is the one prefix unit we accept
        stripped = stripped[1:] + " USD"
    m = _QUANTITY.match(stripped)
    if m is None:
        raise UnitError(f"{loc}expected a quantity like {_example(kind)!r}, found {_shown(text)}")
    value = float(m.group("num")) * (-1.0 if m.group("sign") == "-" else 1.0)
    unit = m.group("unit")
    table = UNITS[kind]
    if unit not in table and unit != "":
        choices = ", ".join(sorted(table))
        raise UnitError(f"{loc}unknown unit {unit!r} in {_shown(text)}; valid units here: {choices}")
    value *= table.get(unit, 1.0)
    if not math.isfinite(value):  # "1e999 GB", or 400 digits
        raise UnitError(f"{loc}expected a finite quantity like {_example(kind)!r}, found {_shown(text)}")
    return value


def _example(kind: str) -> str:
    return {
        "bytes": "8 GiB",
        "bytes_per_s": "17.1 GB/s",
        "w": "2.7 W",
        "wh": "50 Wh",
        "hz": "2.4 GHz",
        "flops_per_s": "150 GFLOPS",
        "ops_per_s": "26 TOPS",
        "s": "1.5 s",
        "usd": "80 USD",
    }[kind]
