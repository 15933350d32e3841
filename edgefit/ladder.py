"""The benchmark ladder (``models/ladder.toml``): Llama-shaped rungs edgefit builds and measures on this host.

``load_ladder(name) -> tuple[Rung, ...]``: the rungs of the ``quick`` or ``full`` set, smallest first, each with
the precisions it is measured at. A rung also says how much memory building and running it needs, so the
benchmarker can skip what would not fit this host's free RAM (``fits``/``split_by_memory``).

File format: ``[defaults]`` (card fields every rung shares), ``[[rung]]`` tables (card fields, ``id`` required;
same fields as a catalog card, read by ``catalog.spec_from_mapping``), and ``[sets.<name>]`` with one list of
rung ids per precision.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefit import catalog
from edgefit.catalog import ModelSpec
from edgefit.errors import CatalogError
from edgefit.inputfiles import load_toml
from edgefit.paths import ladder_path
from edgefit.units import MIB

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

LADDER_NAMES: tuple[str, ...] = ("quick", "full")
LADDER_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "int4")  # what onnxbuild can build

# Memory estimates (ONNXRUNTIME-NOTES.md and benchmarks/bench_build.py, this host):
# - a Python process with numpy, onnx and onnxruntime imported: ~64 MiB RSS;
# - building holds at most the largest tensor in float32 plus a few 4 MiB chunks (quantized matrices: only their
#   quantized bytes); 2 x the largest float32 tensor is a safe bound (measured: 1.6x for the quick ladder);
# - running holds the prepacked weights (file bytes x Precision.prepack_factor; fp16 runs as fp32), plus about
#   the largest tensor while prepacking, plus the KV cache (past in + present out) and logits.
BASE_PROCESS_BYTES = 64 * MIB


@dataclass(frozen=True, slots=True)
class Rung:
    spec: ModelSpec
    precisions: tuple[str, ...]

    @property
    def params(self) -> int:
        return catalog.param_counts(self.spec).total

    def weight_file_bytes(self, precision: str) -> int:
        return catalog.weight_bytes(self.spec, precision)

    def weight_read_bytes_per_token(self, precision: str) -> int:
        return catalog.weight_read_bytes_per_token(self.spec, precision)

    def largest_tensor_bytes(self) -> int:
        """The embedding / LM head in float32 (larger than any layer matrix in every ladder shape)."""
        s = self.spec
        layer_max = max(s.hidden_size * s.intermediate_size, s.hidden_size * s.num_heads * s.head_dim)
        return 4 * max(s.vocab_size * s.hidden_size, layer_max)

    def estimated_build_bytes(self, precision: str) -> int:
        """Peak RSS of a process building this rung (``onnxbuild`` streams tensors: ~ one tensor at a time)."""
        del precision  # the same bound for every precision: see BASE_PROCESS_BYTES' comment
        return BASE_PROCESS_BYTES + 2 * self.largest_tensor_bytes()

    def estimated_run_bytes(self, precision: str, context_tokens: int = 512, prompt_tokens: int = 128) -> int:
        """Peak RSS of an onnxruntime session running this rung at ``context_tokens`` of KV cache."""
        p = catalog.get_precision(precision)
        runs_as = p.runs_as or p.name
        held = catalog.weight_bytes(self.spec, runs_as) * catalog.get_precision(runs_as).prepack_factor
        tokens = max(context_tokens + 1, prompt_tokens)
        kv = 2 * catalog.kv_cache_bytes_per_token(self.spec) * tokens
        logits = 4 * self.spec.vocab_size * tokens
        return int(BASE_PROCESS_BYTES + held + self.largest_tensor_bytes() + kv + logits)

    def fits(self, precision: str, available_bytes: int, context_tokens: int = 512) -> bool:
        need = max(self.estimated_build_bytes(precision), self.estimated_run_bytes(precision, context_tokens))
        return need <= available_bytes


def load_ladder(name: str = "quick", path: Path | str | None = None) -> tuple[Rung, ...]:
    """Rungs of ladder set ``name`` (smallest first) with the precisions each is measured at. Raises CatalogError."""
    file = Path(path) if path is not None else ladder_path()
    data = _read(file)
    sets = data.get("sets")
    if not isinstance(sets, Mapping) or not sets:
        raise CatalogError(f"{file}: missing [sets.quick] / [sets.full] tables listing rung ids per precision")
    if name not in sets:
        raise CatalogError(f"unknown ladder {name!r}; ladders in {file}: {', '.join(sorted(sets))}")
    specs = _rung_specs(file, data)
    chosen = sets[name]
    if not isinstance(chosen, Mapping) or not chosen:
        raise CatalogError(f"{file}: [sets.{name}]: expected lists of rung ids per precision, e.g. fp32 = [...]")
    per_rung: dict[str, list[str]] = {}
    for precision, ids in chosen.items():
        where = f"{file}: [sets.{name}].{precision}"
        if precision not in LADDER_PRECISIONS:
            catalog.get_precision(precision)  # unknown: CatalogError listing every precision
            raise CatalogError(
                f"{where}: {precision} cannot be built as ONNX; use one of {', '.join(LADDER_PRECISIONS)}"
            )
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise CatalogError(f"{where}: expected a list of rung ids, found {ids!r}")
        for rung_id in ids:
            if rung_id not in specs:
                raise CatalogError(f"{where}: unknown rung {rung_id!r}; rungs: {', '.join(specs)}")
            if precision not in per_rung.setdefault(rung_id, []):
                per_rung[rung_id].append(precision)
    order = {p: i for i, p in enumerate(LADDER_PRECISIONS)}
    rungs = [Rung(specs[r], tuple(sorted(ps, key=order.__getitem__))) for r, ps in per_rung.items()]
    return tuple(sorted(rungs, key=lambda r: (r.params, r.spec.id)))


def split_by_memory(
    rungs: Iterable[Rung], available_bytes: int, context_tokens: int = 512
) -> tuple[tuple[tuple[Rung, str], ...], tuple[tuple[Rung, str], ...]]:
    """(rung, precision) pairs that fit ``available_bytes`` to build and run, and those that do not."""
    keep: list[tuple[Rung, str]] = []
    skip: list[tuple[Rung, str]] = []
    for rung in rungs:
        for precision in rung.precisions:
            (keep if rung.fits(precision, available_bytes, context_tokens) else skip).append((rung, precision))
    return tuple(keep), tuple(skip)


def _read(file: Path) -> dict[str, Any]:
    try:
        return load_toml(file)  # a regular file of at most 16 MiB, finite numbers, bounded nesting
    except FileNotFoundError:
        raise CatalogError(f"{file}: ladder file not found (it ships with edgefit as models/ladder.toml)") from None
    except OSError as exc:
        raise CatalogError(f"{file}: cannot read the ladder ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{file}: cannot read the ladder (not UTF-8 text: {exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{file}: not valid TOML ({exc})") from None
    except ValueError as exc:
        raise CatalogError(f"{file}: {exc}") from None


def _rung_specs(file: Path, data: Mapping[str, Any]) -> dict[str, ModelSpec]:
    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise CatalogError(f"{file}: [defaults] must be a table of card fields")
    tables = data.get("rung")
    if not isinstance(tables, list) or not tables:
        raise CatalogError(f"{file}: no [[rung]] tables")
    specs: dict[str, ModelSpec] = {}
    for i, table in enumerate(tables):
        if not isinstance(table, Mapping) or not isinstance(table.get("id"), str):
            raise CatalogError(f"{file}: [[rung]] #{i + 1}: expected a table with a string id")
        where = f"{file}: rung {table['id']!r}"
        if table["id"] in specs:
            raise CatalogError(f"{where}: duplicate rung id")
        spec = catalog.spec_from_mapping({**defaults, **table}, where=where, path=str(file))
        _check_buildable(spec)
        specs[spec.id] = spec
    return specs


def _check_buildable(spec: ModelSpec) -> None:
    # imported here: onnxbuild pulls in onnx, which a caller that only reads the ladder does not need
    from edgefit.errors import BuildError
    from edgefit.onnxbuild import check_buildable

    try:
        check_buildable(spec)
    except BuildError as exc:
        raise CatalogError(str(exc)) from None  # the message names the file and the rung
