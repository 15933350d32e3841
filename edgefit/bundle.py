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
from edgefit.ids import check_id
from edgefit.inputfiles import MAX_BUNDLE_BYTES, loads_json, read_text
from edgefit.inputfiles import shown as _shown

BUNDLE_FORMAT = "edgefit-results-bundle"
# A run's life: running -> finished | interrupted (Ctrl-C) | failed; "killed" when a later command finds the
# process of a running run gone (SIGKILL, power loss: edgefit.store.Store.reap_dead_runs).
RUN_STATUSES = ("running", "finished", "interrupted", "failed", "killed")
BUNDLE_SCHEMA_VERSION = 1

_M_FIELDS = tuple(f.name for f in dataclasses.fields(Measurement))
_M_HINTS = typing.get_type_hints(Measurement)

MAX_SAMPLE_S = 1e6  # one sample of one inference: beyond ~11 days it is corrupt, not slow


MAX_INT = 2**63  # SQLite INTEGER is signed 64-bit


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
            # nested values (power readings) know their own JSON form
            value = [v.to_dict() for v in value] if value and hasattr(value[0], "to_dict") else list(value)
        elif hasattr(value, "to_dict"):  # a nested value (the sustained series)
            value = value.to_dict()
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
            try:
                return tuple(map(float, value))  # fast path: raw samples (thousands per measurement)
            except OverflowError:
                raise StoreError(f"{where}: expected finite numbers, found an integer beyond float range") from None
        return tuple(check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise StoreError(f"{where}: expected true/false, found {_shown(value)}")
        return value
    if hint is int:
        # SQLite stores 64-bit integers; every integer field here is a count, a size or tokens: never negative
        if not isinstance(value, int) or isinstance(value, bool):
            raise StoreError(f"{where}: expected an integer, found {_shown(value)}")
        if not 0 <= value < MAX_INT:
            raise StoreError(f"{where}: expected an integer 0..2^63-1, found {_shown(value)}")
        return value
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise StoreError(f"{where}: expected a number, found {_shown(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise StoreError(f"{where}: expected a finite number, found {_shown(value)}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise StoreError(f"{where}: expected a string, found {_shown(value)}")
        return value
    if isinstance(hint, type) and issubclass(hint, (Phase, WarningCode)):
        try:
            return hint(value)
        except (ValueError, TypeError):
            choices = ", ".join(e.value for e in hint)
            raise StoreError(
                f"{where}: unknown {hint.__name__} {_shown(value)}; valid: {choices} "
                "(a newer edgefit wrote it? upgrade)"
            ) from None
    if isinstance(hint, type) and hasattr(hint, "from_dict"):  # PowerReading, SustainedSeries: they check it
        return hint.from_dict(value, where)
    if hint is QualityWarning:
        if not isinstance(value, Mapping):
            raise StoreError(f"{where}: expected an object with code, value, threshold, message; found {_shown(value)}")
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


def measurement_from_dict(data: Mapping[str, Any], *, where: str, strict: bool = False) -> Measurement:
    """Rebuild a Measurement from ``measurement_to_dict`` output, checking every field (StoreError names it).

    ``strict`` (bundles): a key that is no Measurement field is refused too, so a renamed optional field cannot
    drop its value silently; the database passes extras through (a newer edgefit's fields kept in ``extra``)."""
    if not isinstance(data, Mapping):
        raise StoreError(f"{where}: expected a measurement object, found {type(data).__name__}")
    if strict:
        unknown = sorted(str(k) for k in data if k not in _M_FIELDS)
        if unknown:
            raise StoreError(
                f"{where}: unknown field {_shown(unknown[0])} (renamed, or written by a newer edgefit?); "
                f"expected only {', '.join(_M_FIELDS)}"
            )
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
        bad = [x for x in kwargs[name] if not (math.isfinite(x) and 0.0 <= x <= MAX_SAMPLE_S)]
        if bad:
            raise StoreError(
                f"{where}.{name}: expected latencies from 0 to {MAX_SAMPLE_S:.0e} s, found {_shown(bad[0])}"
            )
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
        text = read_text(p, max_bytes=MAX_BUNDLE_BYTES)  # a regular file: never /dev/zero or a FIFO
    except FileNotFoundError:
        raise StoreError(f"{p}: no such bundle file; export one with `edgefit results export --out FILE`") from None
    except OSError as exc:
        raise StoreError(
            f"{p}: cannot read the bundle ({exc.strerror or exc}); is it an edgefit results bundle?"
        ) from None
    except UnicodeDecodeError as exc:
        raise StoreError(
            f"{p}: cannot read the bundle (not UTF-8: {exc.reason}); is it an edgefit results bundle?"
        ) from None
    try:
        data = loads_json(text)
    except json.JSONDecodeError as exc:
        raise StoreError(
            f"{p}: not a JSON results bundle ({exc.msg} at line {exc.lineno}); "
            "export one with `edgefit results export --out FILE`"
        ) from None
    except ValueError as exc:  # NaN/Infinity, an integer past 4300 digits, nesting too deep
        raise StoreError(f"{p}: refused: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        found = _shown(data.get("format")) if isinstance(data, dict) else type(data).__name__
        raise StoreError(f"{p}: format: expected {BUNDLE_FORMAT!r}, found {found}; not an edgefit results bundle")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StoreError(f"{p}: schema_version: expected an integer >= 1, found {_shown(version)}")
    if version > BUNDLE_SCHEMA_VERSION:
        raise StoreError(
            f"{p}: schema_version {version} is newer than this edgefit {__version__} reads "
            f"({BUNDLE_SCHEMA_VERSION}); upgrade edgefit to import it"
        )
    raw_runs = data.get("runs")
    if not isinstance(raw_runs, list):
        raise StoreError(f"{p}: runs: expected a list of runs, found {type(raw_runs).__name__}")
    out: list[tuple[dict[str, Any], list[Measurement]]] = []
    seen_ids: set[str] = set()
    for i, raw in enumerate(raw_runs):
        where = f"{p}: runs[{i}]"
        if not isinstance(raw, dict):
            raise StoreError(f"{where}: expected a run object, found {type(raw).__name__}")
        run: dict[str, Any] = {}
        for name, hint in _RUN_FIELDS.items():
            if name not in raw:
                raise StoreError(f"{where}: missing field {name!r}")
            run[name] = check_value(raw[name], hint, f"{where}.{name}")
        # ids name stored rows (and, through a run id, a later `results export`): one pattern for every id
        check_id(run["id"], f"{where}.id", StoreError, example="3f2c9a1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f")
        check_id(run["host_fingerprint"], f"{where}.host_fingerprint", StoreError, example="9c1f0a7e3b5d2468")
        if run["status"] not in RUN_STATUSES:
            raise StoreError(
                f"{where}.status: expected one of {', '.join(RUN_STATUSES)}, found {_shown(run['status'])}"
            )
        if run["id"] in seen_ids:
            raise StoreError(f"{where}.id: run {run['id']!r} appears twice in the bundle; expected each run once")
        seen_ids.add(run["id"])
        if not isinstance(raw.get("environment"), dict):
            raise StoreError(f"{where}.environment: expected an object, found {_shown(raw.get('environment'))}")
        run["environment"] = raw["environment"]
        raw_ms = raw.get("measurements")
        if not isinstance(raw_ms, list):
            raise StoreError(f"{where}.measurements: expected a list, found {type(raw_ms).__name__}")
        ms = []
        for j, rm in enumerate(raw_ms):
            if isinstance(rm, dict):
                rm = {**rm, "run_id": run["id"]}
            ms.append(measurement_from_dict(rm, where=f"{where}.measurements[{j}]", strict=True))
        if "kernel_table" in raw:  # optional: a run of kind "kernels" carries its table
            run["kernel_table"] = _kernel_table(raw["kernel_table"], run["host_fingerprint"], f"{where}.kernel_table")
        out.append((run, ms))
    return out


def _kernel_table(raw: Any, host_fingerprint: str, where: str) -> dict[str, Any]:
    """A bundled kernel table must load as one (every number finite and in range) and belong to its run's host."""
    from edgefit.errors import EdgefitError
    from edgefit.kernels.table import KernelTable

    if not isinstance(raw, dict):
        raise StoreError(f"{where}: expected an object, found {_shown(raw)}")
    try:
        table = KernelTable.from_dict(raw, where=where)
    except EdgefitError as exc:
        what = str(exc).split("; re-run")[0]
        raise StoreError(f"{what}; re-export the bundle on the machine that measured it") from None
    if table.host.host_fingerprint != host_fingerprint:
        raise StoreError(
            f"{where}.host.host_fingerprint: expected the run's host {host_fingerprint!r}, found "
            f"{table.host.host_fingerprint!r}; a kernel table belongs to the host that measured it"
        )
    return raw
