"""Results bundles: versioned JSON files of runs (with their environments) and measurements (with raw samples).

Also the JSON form of a Measurement, shared by the database (edgefit.store) and ``--json`` output. Reading
checks every field against the Measurement's type hints and names the first bad one, so a bundle written by
hand, truncated, or written by a newer edgefit is refused before anything is stored.

```
{"format": "edgefit-results-bundle", "schema_version": 1, "edgefit_version": ..., "exported_at": ...,
 "runs": [{"id", "kind", "started_at", "finished_at", "status", "host_fingerprint", "edgefit_version",
           "onnxruntime_version", "environment": {...}, "measurements": [{every Measurement field but run_id}]}]}
```
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgefit import __version__
from edgefit.bench.measurement import Measurement, Phase, QualityWarning, WarningCode
from edgefit.errors import StoreError

BUNDLE_FORMAT = "edgefit-results-bundle"
BUNDLE_SCHEMA_VERSION = 1

_M_FIELDS = tuple(f.name for f in dataclasses.fields(Measurement))
_M_HINTS = typing.get_type_hints(Measurement)


def measurement_to_dict(m: Measurement) -> dict[str, Any]:
    """JSON-able dict of every Measurement field, base units; enums as their values."""
    out: dict[str, Any] = {}
    for name in _M_FIELDS:
        value = getattr(m, name)
        if name == "warnings":
            value = [
                {"code": w.code.value, "value": w.value, "threshold": w.threshold, "message": w.message} for w in value
            ]
        elif isinstance(value, Phase):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def check_value(value: Any, hint: Any, where: str) -> Any:
    """Validate one JSON value against a Measurement field's type hint and convert it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return check_value(value, inner, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise StoreError(f"{where}: expected a list, found {type(value).__name__}")
        if args[0] is float and all(type(v) is float or type(v) is int for v in value):
            return tuple(map(float, value))  # fast path: raw samples (thousands per measurement)
        return tuple(check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise StoreError(f"{where}: expected true/false, found {value!r}")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise StoreError(f"{where}: expected an integer, found {value!r}")
        return value
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise StoreError(f"{where}: expected a number, found {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise StoreError(f"{where}: expected a string, found {value!r}")
        return value
    if isinstance(hint, type) and issubclass(hint, (Phase, WarningCode)):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(e.value for e in hint)
            raise StoreError(
                f"{where}: unknown {hint.__name__} {value!r}; valid: {choices} (a newer edgefit wrote it? upgrade)"
            ) from None
    if hint is QualityWarning:
        if not isinstance(value, Mapping):
            raise StoreError(f"{where}: expected an object with code, value, threshold, message; found {value!r}")
        missing = [k for k in ("code", "value", "threshold", "message") if k not in value]
        if missing:
            raise StoreError(f"{where}: missing {', '.join(missing)}")
        return QualityWarning(
            code=check_value(value["code"], WarningCode, f"{where}.code"),
            value=check_value(value["value"], float, f"{where}.value"),
            threshold=check_value(value["threshold"], float, f"{where}.threshold"),
            message=check_value(value["message"], str, f"{where}.message"),
        )
    return value  # a field type this store does not know: pass through as stored


def measurement_from_dict(data: Mapping[str, Any], *, where: str) -> Measurement:
    """Rebuild a Measurement from ``measurement_to_dict`` output, checking every field (StoreError names it)."""
    if not isinstance(data, Mapping):
        raise StoreError(f"{where}: expected a measurement object, found {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(Measurement):
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if f.name not in data:
            if has_default:
                continue
            raise StoreError(f"{where}: missing field {f.name!r}; the bundle or database is incomplete")
        kwargs[f.name] = check_value(data[f.name], _M_HINTS[f.name], f"{where}.{f.name}")
    samples = kwargs["samples_s"]
    if not samples:
        raise StoreError(f"{where}.samples_s: expected at least one sample, found none")
    for name in ("samples_s", "warmup_samples_s"):
        bad = [x for x in kwargs[name] if not (math.isfinite(x) and x >= 0.0)]
        if bad:
            raise StoreError(f"{where}.{name}: expected finite latencies >= 0 s, found {bad[0]!r}")
    return Measurement(**kwargs)


# ---------------------------------------------------------------------------------------------- bundles

_RUN_FIELDS: dict[str, Any] = {
    "id": str,
    "kind": str,
    "started_at": str,
    "finished_at": str | None,
    "status": str,
    "host_fingerprint": str,
    "edgefit_version": str,
    "onnxruntime_version": str | None,
}


def load_bundle(path: str | os.PathLike[str]) -> list[tuple[dict[str, Any], list[Measurement]]]:
    """Read and validate a bundle: [(run fields, [Measurement, ...]), ...]. StoreError names what is wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoreError(f"{p}: no such bundle file; export one with `edgefit results export --out FILE`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"{p}: cannot read the bundle ({exc}); is it an edgefit results bundle?") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(
            f"{p}: not a JSON results bundle ({exc.msg} at line {exc.lineno}); "
            "export one with `edgefit results export --out FILE`"
        ) from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise StoreError(f"{p}: format: expected {BUNDLE_FORMAT!r}, found {found!r}; not an edgefit results bundle")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StoreError(f"{p}: schema_version: expected an integer >= 1, found {version!r}")
    if version > BUNDLE_SCHEMA_VERSION:
        raise StoreError(
            f"{p}: schema_version {version} is newer than this edgefit {__version__} reads "
            f"({BUNDLE_SCHEMA_VERSION}); upgrade edgefit to import it"
        )
    raw_runs = data.get("runs")
    if not isinstance(raw_runs, list):
        raise StoreError(f"{p}: runs: expected a list of runs, found {type(raw_runs).__name__}")
    out: list[tuple[dict[str, Any], list[Measurement]]] = []
    for i, raw in enumerate(raw_runs):
        where = f"{p}: runs[{i}]"
        if not isinstance(raw, dict):
            raise StoreError(f"{where}: expected a run object, found {type(raw).__name__}")
        run: dict[str, Any] = {}
        for name, hint in _RUN_FIELDS.items():
            if name not in raw:
                raise StoreError(f"{where}: missing field {name!r}")
            run[name] = check_value(raw[name], hint, f"{where}.{name}")
        if not isinstance(raw.get("environment"), dict):
            raise StoreError(f"{where}.environment: expected an object, found {raw.get('environment')!r}")
        run["environment"] = raw["environment"]
        raw_ms = raw.get("measurements")
        if not isinstance(raw_ms, list):
            raise StoreError(f"{where}.measurements: expected a list, found {type(raw_ms).__name__}")
        ms = []
        for j, rm in enumerate(raw_ms):
            if isinstance(rm, dict):
                rm = {**rm, "run_id": run["id"]}
            ms.append(measurement_from_dict(rm, where=f"{where}.measurements[{j}]"))
        out.append((run, ms))
    return out
