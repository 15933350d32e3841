"""Model catalog: architecture cards (``models/catalog/*.toml``) loaded into a frozen ``ModelSpec``, the
precisions edgefit knows, and the accounting (params, bytes, KV cache, FLOPs) as pure functions.

Contract for other stages (names are fixed, see docs/CONTRACTS.md):
  load_spec(ref) -> ModelSpec               catalog id, path to a card .toml, or a HF config.json path
  spec_from_mapping(data, where=...)        a card / ladder rung as a dict
  list_specs() -> tuple[ModelSpec, ...]     built-in catalog, smallest model first
  get_precision(name) -> Precision          fp32, fp16, bf16, int8, int4, q8_0, q6_k, ...
  param_counts(spec) -> ParamCounts         split by part, exact integers
  weight_bytes(spec, precision) -> int      bytes as stored (incl. quantization scales)
  weight_read_bytes_per_token(spec, precision) -> int   what one decoded token reads (MatMuls + LM head)
  kv_cache_bytes_per_token(spec, dtype_bytes=4) -> int
  flops_decode_per_token(spec, context_tokens) -> int
  flops_prompt(spec, prompt_tokens) -> int

One decoder layer, as counted here and as edgefit's ONNX builder lays it out (K x N = MatMul's B)::

    x ─ norm ─┬─ q [h, H*d] (+bias) ─┐
              ├─ k [h, Hkv*d] (+bias)├─ attention ─ o [H*d, h] ─ (+x) ─ norm ─┬─ gate [h, i] ─┐
              └─ v [h, Hkv*d] (+bias)┘                                      └─ up   [h, i] ─┴─ down [i, h] ─ (+)
    Gemma 2 adds a norm after attention and after the MLP (norms_per_layer = 4).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from edgefit.errors import CatalogError
from edgefit.ids import check_id, slug
from edgefit.inputfiles import load_toml
from edgefit.inputfiles import shown as _shown
from edgefit.paths import builtin_catalog_dir


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    name: str
    family: str  # llama, mistral, qwen2, gemma2, phi3, smollm, gpt-4o-mini, ladder, ...
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tied_embeddings: bool
    attention_bias: bool = False  # q/k/v projection biases (Qwen2)
    mlp_bias: bool = False
    norms_per_layer: int = 2  # Gemma 2 has 4 (pre/post attention and MLP)
    max_context: int = 4096
    open_weights: bool = True
    published_params: int | None = None
    published_params_source: str | None = None
    config_source: str | None = None
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    notes: str | None = None
    path: str | None = None  # file it was loaded from

    def __post_init__(self) -> None:
        # the id names built files and stored measurements: one pattern for every id (edgefit.ids)
        check_id(self.id, f"{self.path or 'model card'}: field 'id'", CatalogError, example="my-model-1b")
        where = self.path or f"model {self.id!r}"
        for name in _POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            top = _MAX_INT_FIELDS[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CatalogError(f"{where}: field {name!r}: expected an integer >= 1, found {_shown(value)}")
            if value > top:
                raise CatalogError(
                    f"{where}: field {name!r}: expected an integer >= 1 and at most {top:,} (far above any "
                    f"published model), found {_shown(value)}"
                )
        for name, low, high in (("rope_theta", 0.0, 1e12), ("norm_eps", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
                raise CatalogError(
                    f"{where}: field {name!r}: expected a number in ({low:g}, {high:g}], found {value!r}"
                )
        if self.num_heads % self.num_kv_heads:
            divisors = [d for d in range(1, self.num_heads + 1) if self.num_heads % d == 0]
            raise CatalogError(
                f"{where}: num_kv_heads = {self.num_kv_heads} does not divide num_heads = {self.num_heads} "
                f"(each KV head serves a whole group of query heads); valid num_kv_heads: {divisors}"
            )
        if self.published_params is not None and (
            isinstance(self.published_params, bool)
            or not isinstance(self.published_params, int)
            or not 1 <= self.published_params <= _MAX_PARAMS
        ):
            raise CatalogError(
                f"{where}: field 'published_params': expected an integer 1..{_MAX_PARAMS:.0e}, "
                f"found {_shown(self.published_params)}"
            )


_POSITIVE_INT_FIELDS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "norms_per_layer",
    "max_context",
)


# Upper bounds far above any published model (Llama 3.1 405B: hidden 16384, 126 layers, vocab 128256, 131072
# context) and low enough that byte and FLOP counts stay well inside float range and SQLite's 64-bit integers.
_MAX_INT_FIELDS: dict[str, int] = {
    "hidden_size": 2**20,
    "num_layers": 10_000,
    "num_heads": 2**14,
    "num_kv_heads": 2**14,
    "head_dim": 2**14,
    "intermediate_size": 2**22,
    "vocab_size": 2**24,
    "norms_per_layer": 16,
    "max_context": 2**27,
}
_MAX_PARAMS = 10**14


@dataclass(frozen=True, slots=True)
class Precision:
    """How weights are stored. ``bits_per_weight`` is the effective figure for the quantized matrices,
    scales and zero points included (e.g. int4 with block 32 and fp32 scales: 4 + 32/32 = 5.0); for GGUF formats,
    llama.cpp's whole-file average on Llama-3.1-8B (``gguf_bytes_by_part`` models other shapes).
    ``onnx_buildable``: edgefit can build and run it. ``runtime_note``: what onnxruntime really does with it
    on CPU (e.g. fp16 is upcast to fp32 at load)."""

    name: str
    bits_per_weight: float
    kind: str  # "float", "onnx_int" (MatMulNBits), "gguf"
    block_size: int | None = None
    onnx_buildable: bool = False
    runtime_note: str | None = None
    source: str | None = None  # where bits_per_weight comes from (GGUF) or the layout it follows
    runs_as: str | None = None  # on the CPU provider it gets this precision's memory and speed (fp16 -> fp32)
    prepack_factor: float = 1.0  # RAM after onnxruntime's prepacking / quantized-weight file bytes (measured)
    cpu_runnable: bool = True  # onnxruntime's CPU provider can run it at all


# --- precisions ---------------------------------------------------------------------------------------------

_ORT_NOTES = "/work/shared/ONNXRUNTIME-NOTES.md (measured on this project's host, onnxruntime 1.32)"
# llama.cpp's own figures: tools/quantize/README.md "meta-llama/Llama-3.1-8B" table (bits/weight column) and,
# for Q4_0 and Q3_K_M which that table omits, tools/quantize/quantize.cpp QUANT_OPTIONS file sizes
# "4.34G" / "3.74G @ Llama-3-8B" (GiB) divided by Llama-3-8B's 8,030,261,248 parameters.
_LLAMA_CPP_README = "https://github.com/ggml-org/llama.cpp/blob/master/tools/quantize/README.md (Llama-3.1-8B table)"
_LLAMA_CPP_QUANTIZE = "https://github.com/ggml-org/llama.cpp/blob/master/tools/quantize/quantize.cpp (QUANT_OPTIONS)"
_GGUF_NOTE = (
    "llama.cpp GGUF format, not an onnxruntime precision; bytes modelled per tensor group from llama.cpp's "
    "measured Llama-3.1-8B file (see catalog.gguf_bytes_by_part)"
)


def _gib_file_bpw(gib: float) -> float:
    return round(gib * 2**30 * 8 / 8_030_261_248, 4)


PRECISIONS: tuple[Precision, ...] = (
    Precision("fp32", 32.0, "float", onnx_buildable=True, runtime_note="native on the CPU provider"),
    Precision(
        "fp16",
        16.0,
        "float",
        onnx_buildable=True,
        runs_as="fp32",
        runtime_note=(
            "x86 CPU provider has no fp16 MatMul kernel: Casts are inserted and weights constant-folded to fp32 "
            f"at load, so RAM and speed are fp32's, plus a transient peak ({_ORT_NOTES})"
        ),
    ),
    Precision(
        "bf16",
        16.0,
        "float",
        cpu_runnable=False,
        runtime_note="not runnable on onnxruntime's CPU provider; accounted as a bf16 checkpoint (2 bytes/param)",
    ),
    Precision(
        "int8",
        9.0,
        "onnx_int",
        block_size=32,
        onnx_buildable=True,
        prepack_factor=1.05,
        source="com.microsoft MatMulNBits bits=8, symmetric, fp32 scale per block of 32: 8 + 32/32 bits",
        runtime_note=(
            f"MatMulNBits 8-bit; prepacked to ~1.05x its file bytes in RAM; VNNI/AMX speed up prefill ({_ORT_NOTES})"
        ),
    ),
    Precision(
        "int4",
        5.0,
        "onnx_int",
        block_size=32,
        onnx_buildable=True,
        prepack_factor=1.27,
        source="com.microsoft MatMulNBits bits=4, symmetric, fp32 scale per block of 32: 4 + 32/32 bits",
        runtime_note=(
            "MatMulNBits 4-bit with accuracy_level 4 (int8 compute): prepacked to ~1.27x its file bytes in RAM; "
            f"compute-bound on small CPUs, decodes no faster than int8 on 2 cores ({_ORT_NOTES})"
        ),
    ),
    Precision("q8_0", 8.5008, "gguf", source=_LLAMA_CPP_README, runtime_note=_GGUF_NOTE, cpu_runnable=False),
    Precision("q6_k", 6.5633, "gguf", source=_LLAMA_CPP_README, runtime_note=_GGUF_NOTE, cpu_runnable=False),
    Precision("q5_k_m", 5.7036, "gguf", source=_LLAMA_CPP_README, runtime_note=_GGUF_NOTE, cpu_runnable=False),
    Precision("q4_k_m", 4.8944, "gguf", source=_LLAMA_CPP_README, runtime_note=_GGUF_NOTE, cpu_runnable=False),
    Precision(
        "q4_0", _gib_file_bpw(4.34), "gguf", source=_LLAMA_CPP_QUANTIZE, runtime_note=_GGUF_NOTE, cpu_runnable=False
    ),
    Precision(
        "q3_k_m", _gib_file_bpw(3.74), "gguf", source=_LLAMA_CPP_QUANTIZE, runtime_note=_GGUF_NOTE, cpu_runnable=False
    ),
    Precision("q2_k", 3.1593, "gguf", source=_LLAMA_CPP_README, runtime_note=_GGUF_NOTE, cpu_runnable=False),
)
_PRECISION_BY_NAME = {p.name: p for p in PRECISIONS}
_FLOAT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
_NBITS = {"int8": 8, "int4": 4}

# GGUF, per llama.cpp src/llama-quant.cpp (llama_tensor_get_type): output.weight (or the tied token_embd) is Q6_K
# in every format here but Q8_0; a K-quant tensor whose rows (ne[0] = input dim) are not a multiple of 256 falls
# back (Q2_K, Q3_K -> IQ4_NL 4.5 bpw; Q4_K -> Q5_0 5.5; Q5_K -> Q5_1 6.0; Q6_K -> Q8_0 8.5). bpw of the types:
# ggml block structs (Q6_K 210 B / 256 = 6.5625, Q8_0 34 B / 32 = 8.5). Norms stay F32.
# name -> (row multiple, bulk fallback bpw, output bpw, output fallback bpw)
_GGUF_LAYOUT: dict[str, tuple[int, float, float, float]] = {
    "q8_0": (32, 16.0, 8.5, 16.0),
    "q6_k": (256, 8.5, 6.5625, 8.5),
    "q5_k_m": (256, 6.0, 6.5625, 8.5),
    "q4_k_m": (256, 5.5, 6.5625, 8.5),
    "q4_0": (32, 16.0, 6.5625, 8.5),
    "q3_k_m": (256, 4.5, 6.5625, 8.5),
    "q2_k": (256, 4.5, 6.5625, 8.5),
}
_LLAMA31_8B_PARAMS = 8_030_261_248  # the file llama.cpp measured the whole-file bpw on
_LLAMA31_8B_OUTPUT = 525_336_576  # its untied output.weight [128256 x 4096]
_LLAMA31_8B_NORMS = 266_240  # its F32 norms (65 x 4096)


def get_precision(name: str | Precision, block_size: int | None = None) -> Precision:
    """A precision by name (case-insensitive: ``Q4_K_M`` works). For int8/int4, ``block_size`` (a power of two
    >= 16, MatMulNBits' rule) changes the effective bits: bits + 32/block_size."""
    if isinstance(name, Precision):
        p = name
    else:
        key = str(name).strip().lower()
        if key not in _PRECISION_BY_NAME:
            valid = ", ".join(_PRECISION_BY_NAME)
            raise CatalogError(f"unknown precision {name!r}; valid precisions: {valid}")
        p = _PRECISION_BY_NAME[key]
    if block_size is None or p.kind != "onnx_int" or block_size == p.block_size:
        return p
    _check_block_size(block_size)
    return dataclasses.replace(p, block_size=block_size, bits_per_weight=_NBITS[p.name] + 32 / block_size)


def _check_block_size(block_size: int) -> None:
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int)
        or block_size < 16
        or block_size & (block_size - 1)
    ):
        raise CatalogError(
            f"block size {block_size!r}: expected a power of two >= 16 (MatMulNBits' rule), e.g. 32, 64, 128"
        )


# --- loading ------------------------------------------------------------------------------------------------

_CARD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "name": (str,),
    "family": (str,),
    "hidden_size": (int,),
    "num_layers": (int,),
    "num_heads": (int,),
    "num_kv_heads": (int,),
    "head_dim": (int,),
    "intermediate_size": (int,),
    "vocab_size": (int,),
    "tied_embeddings": (bool,),
    "attention_bias": (bool,),
    "mlp_bias": (bool,),
    "norms_per_layer": (int,),
    "max_context": (int,),
    "open_weights": (bool,),
    "published_params": (int,),
    "published_params_source": (str,),
    "config_source": (str,),
    "rope_theta": (int, float),
    "norm_eps": (int, float),
    "notes": (str,),
}
_REQUIRED = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "vocab_size", "tied_embeddings")


def spec_from_mapping(
    data: Mapping[str, Any], *, where: str, default_id: str | None = None, path: str | None = None
) -> ModelSpec:
    """Build a ModelSpec from a card's fields (a TOML table, a ladder rung). Field names are ModelSpec's;
    ``num_kv_heads`` defaults to ``num_heads``, ``head_dim`` to hidden_size / num_heads (which must then divide),
    ``id`` to ``default_id``, ``name`` to the id, ``family`` to "custom". Raises CatalogError naming ``where``."""
    if not isinstance(data, Mapping):
        raise CatalogError(f"{where}: expected a table of card fields, found {type(data).__name__}")
    for key, value in data.items():
        if key not in _CARD_TYPES:
            close = difflib.get_close_matches(str(key), list(_CARD_TYPES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid fields: {', '.join(_CARD_TYPES)}"
            raise CatalogError(f"{where}: unknown field {key!r}{hint}")
        types = _CARD_TYPES[key]
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        if not ok:
            expected = " or ".join("boolean" if t is bool else t.__name__ for t in types)
            raise CatalogError(f"{where}: field {key!r}: expected {expected}, found {_shown(value)}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CatalogError(f"{where}: missing required field(s) {', '.join(missing)}")
    spec_id = data.get("id", default_id)
    if spec_id is None:
        raise CatalogError(f"{where}: missing field 'id' (e.g. id = \"my-model-1b\")")
    hidden, heads = data["hidden_size"], data["num_heads"]
    head_dim = data.get("head_dim")
    if heads < 1:
        raise CatalogError(f"{where}: field 'num_heads': expected an integer >= 1, found {heads}")
    if head_dim is None:
        if hidden % heads:
            raise CatalogError(
                f"{where}: num_heads = {heads} does not divide hidden_size = {hidden}; "
                "fix the shape or give head_dim explicitly (Gemma-style heads)"
            )
        head_dim = hidden // heads
    if data.get("published_params") is not None and not data.get("published_params_source"):
        raise CatalogError(f"{where}: published_params needs published_params_source (a model card or paper URL)")
    fields: dict[str, Any] = {k: v for k, v in data.items() if k not in ("head_dim", "id")}
    fields.setdefault("num_kv_heads", heads)
    fields.setdefault("name", spec_id)
    fields.setdefault("family", "custom")
    for key in ("rope_theta", "norm_eps"):
        if key in fields:
            try:
                fields[key] = float(fields[key])
            except OverflowError:  # an integer beyond float range
                raise CatalogError(
                    f"{where}: field {key!r}: expected a plausible number, found {_shown(data[key])}"
                ) from None
    return ModelSpec(id=spec_id, head_dim=head_dim, path=path, **fields)


def load_card(path: str | Path) -> ModelSpec:
    """A card .toml (fields = ModelSpec's); ``id`` defaults to the file name without ``.toml``."""
    p = Path(path)
    try:
        data = load_toml(p)  # a regular file of at most 16 MiB, finite numbers, bounded nesting
    except FileNotFoundError:
        raise CatalogError(f"{p}: model card not found") from None
    except OSError as exc:
        raise CatalogError(f"{p}: cannot read the model card ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{p}: cannot read the model card (not UTF-8 text: {exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{p}: not valid TOML ({exc}); see models/README.md for the card format") from None
    except ValueError as exc:
        raise CatalogError(f"{p}: {exc}") from None
    return spec_from_mapping(data, where=str(p), default_id=slug(p.stem) or p.stem, path=str(p))


@functools.lru_cache(maxsize=4)
def _load_catalog(directory: str) -> tuple[ModelSpec, ...]:
    specs = []
    seen: dict[str, str] = {}
    for card in sorted(Path(directory).glob("*.toml")):
        spec = load_card(card)
        if spec.id != card.stem:
            raise CatalogError(f"{card}: id {spec.id!r} must equal the file name {card.stem!r} in the catalog")
        if spec.id in seen:
            raise CatalogError(f"{card}: duplicate id {spec.id!r} (also in {seen[spec.id]})")
        seen[spec.id] = str(card)
        specs.append(spec)
    return tuple(sorted(specs, key=lambda s: (param_counts(s).total, s.id)))


def list_specs() -> tuple[ModelSpec, ...]:
    """The built-in catalog, smallest model first."""
    return _load_catalog(str(builtin_catalog_dir()))


def load_spec(ref: str | Path, *, model_id: str | None = None) -> ModelSpec:
    """A catalog id, a card ``.toml``, a HF ``config.json`` (or a folder holding one). ``model_id`` overrides the
    id of a config.json (default: its folder's name). Unknown id -> CatalogError with the closest ids."""
    text = str(ref)
    p = Path(text)
    if p.is_dir() and (p / "config.json").is_file():
        p = p / "config.json"
    if p.suffix == ".json":
        from edgefit.hfconfig import load_hf_config  # imports this module: a late import avoids the cycle

        return load_hf_config(p, model_id)
    if p.suffix == ".toml":
        spec = load_card(p)
        return dataclasses.replace(spec, id=model_id) if model_id else spec
    if "/" in text or "\\" in text or p.exists():
        raise CatalogError(f"{text}: expected a catalog id, a card .toml or a config.json")
    specs = {s.id: s for s in list_specs()}
    key = text.strip().lower()
    if key in specs:
        return specs[key]
    close = difflib.get_close_matches(key, list(specs), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise CatalogError(f"unknown model {text!r}{hint} (`edgefit models list` shows all; a card path works too)")


def truncated(spec: ModelSpec, layers: int) -> ModelSpec:
    """The same width with only the first ``layers`` decoder layers (what ``--layers N`` builds)."""
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= spec.num_layers:
        raise CatalogError(f"--layers: expected 1..{spec.num_layers} for {spec.id!r}, found {layers!r}")
    if layers == spec.num_layers:
        return spec
    return dataclasses.replace(
        spec,
        id=f"{spec.id}-l{layers}",
        name=f"{spec.name} (first {layers} of {spec.num_layers} layers)",
        num_layers=layers,
        published_params=None,
        published_params_source=None,
    )


def spec_to_dict(spec: ModelSpec) -> dict[str, Any]:
    """JSON-able card fields (``spec_from_mapping`` reads them back, minus ``path``)."""
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}


# --- accounting ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParamCounts:
    """Exact parameter counts. ``lm_head`` is 0 when tied (the embedding is reused and counted once)."""

    embeddings: int
    attention: int  # q, k, v, o weights + q/k/v biases, all layers
    mlp: int  # gate, up, down weights (+ biases), all layers
    norms: int  # per-layer norms + the final norm
    lm_head: int
    total: int

    def __post_init__(self) -> None:
        parts = self.embeddings + self.attention + self.mlp + self.norms + self.lm_head
        if parts != self.total:
            raise ValueError(f"ParamCounts parts sum to {parts}, total is {self.total}")  # programming error


def _layer_matrices(spec: ModelSpec) -> tuple[tuple[int, int], ...]:
    """(K, N) of every MatMul weight in one layer: q, k, v, o, gate, up, down."""
    h, i = spec.hidden_size, spec.intermediate_size
    q, kv = spec.num_heads * spec.head_dim, spec.num_kv_heads * spec.head_dim
    return ((h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h))


def _attention_bias_params(spec: ModelSpec) -> int:
    return (spec.num_heads + 2 * spec.num_kv_heads) * spec.head_dim if spec.attention_bias else 0


def _mlp_bias_params(spec: ModelSpec) -> int:
    return 2 * spec.intermediate_size + spec.hidden_size if spec.mlp_bias else 0


def param_counts(spec: ModelSpec) -> ParamCounts:
    mats = _layer_matrices(spec)
    attention = spec.num_layers * (sum(k * n for k, n in mats[:4]) + _attention_bias_params(spec))
    mlp = spec.num_layers * (sum(k * n for k, n in mats[4:]) + _mlp_bias_params(spec))
    norms = (spec.num_layers * spec.norms_per_layer + 1) * spec.hidden_size
    embeddings = spec.vocab_size * spec.hidden_size
    lm_head = 0 if spec.tied_embeddings else embeddings
    total = embeddings + attention + mlp + norms + lm_head
    return ParamCounts(embeddings, attention, mlp, norms, lm_head, total)


def matmul_params(spec: ModelSpec) -> int:
    """Weights multiplied once per token: every projection plus the LM head (the embedding, if tied)."""
    return spec.num_layers * sum(k * n for k, n in _layer_matrices(spec)) + spec.hidden_size * spec.vocab_size


def _nbits_matrix_bytes(k: int, n: int, bits: int, block_size: int) -> int:
    """MatMulNBits B uint8 [n, ceil(k/block), block*bits/8] + float32 scales [n, ceil(k/block)]."""
    blocks = -(-k // block_size)
    return n * blocks * (block_size * bits // 8) + n * blocks * 4


@dataclass(frozen=True, slots=True)
class WeightBytes:
    """Bytes of a built file by part (ONNX precisions). ``lm_head`` is the quantized copy when tied."""

    embeddings: int
    layers: int  # projections (+ scales), biases, norms of all layers
    final_norm: int
    lm_head: int

    @property
    def total(self) -> int:
        return self.embeddings + self.layers + self.final_norm + self.lm_head


def weight_bytes_by_part(spec: ModelSpec, precision: str | Precision, block_size: int = 32) -> WeightBytes:
    """The layout of docs/CONTRACTS.md: embedding float32 (fp16 build: float16), norms float32, projections and
    LM head in the precision (int8/int4: MatMulNBits, fp32 scales, no zero points), biases float32 (fp16: float16);
    tied fp32/fp16 reuse the embedding as LM head, tied int8/int4 store a quantized LM-head copy."""
    p = get_precision(precision)
    if p.kind == "gguf" or not p.onnx_buildable:
        raise CatalogError(f"precision {p.name!r} has no edgefit ONNX layout; use weight_bytes() for its size")
    h, v = spec.hidden_size, spec.vocab_size
    if p.kind == "onnx_int":
        _check_block_size(block_size)
        bits = _NBITS[p.name]
        mats = sum(_nbits_matrix_bytes(k, n, bits, block_size) for k, n in _layer_matrices(spec))
        elem = bias_elem = 4
        lm_head = _nbits_matrix_bytes(h, v, bits, block_size)
    else:
        elem = bias_elem = _FLOAT_BYTES[p.name]
        mats = sum(k * n for k, n in _layer_matrices(spec)) * elem
        lm_head = 0 if spec.tied_embeddings else h * v * elem
    biases = (_attention_bias_params(spec) + _mlp_bias_params(spec)) * bias_elem
    layer = mats + biases + spec.norms_per_layer * h * 4
    return WeightBytes(v * h * elem, spec.num_layers * layer, h * 4, lm_head)


def gguf_bytes_by_part(spec: ModelSpec, precision: str | Precision) -> WeightBytes:
    """A GGUF file's tensor bytes, modelled from what llama.cpp measured and its type rules::

        output tensor (LM head, or the embedding when tied)  at the output type (Q6_K; Q8_0 for q8_0)
        every other matrix, embedding included               at the "bulk" bpw: Llama-3.1-8B's whole-file bpw
                                                             with its output.weight and F32 norms taken out
                                                             (this keeps the K-quant mix of attn_v/ffn_down)
        a matrix whose input dim is not a multiple of 256    at the K-quant's fallback type (Qwen2.5-0.5B: 896)
        norms                                                F32

    Against llama.cpp-reported sizes of public files: gemma-2-2b Q4_K_M +0.6 %, Mistral-7B-v0.3 Q4_K_M -0.3 %,
    TinyLlama Q4_0 +0.1 %, Qwen2.5-0.5B Q2_K -2 % (tests/test_catalog_accounting.py)."""
    p = get_precision(precision)
    if p.kind != "gguf":
        raise CatalogError(f"precision {p.name!r} is not a GGUF format")
    row_multiple, bulk_fallback, out_bpw, out_fallback = _GGUF_LAYOUT[p.name]
    bulk_bits = p.bits_per_weight * _LLAMA31_8B_PARAMS - out_bpw * _LLAMA31_8B_OUTPUT - 32 * _LLAMA31_8B_NORMS
    bulk_bpw = bulk_bits / (_LLAMA31_8B_PARAMS - _LLAMA31_8B_OUTPUT - _LLAMA31_8B_NORMS)

    def matrix_bits(k: int, n: int, bpw: float, fallback: float) -> float:
        return k * n * (bpw if k % row_multiple == 0 else fallback)

    h, v = spec.hidden_size, spec.vocab_size
    output = matrix_bits(h, v, out_bpw, out_fallback)
    embedding = output if spec.tied_embeddings else matrix_bits(h, v, bulk_bpw, bulk_fallback)
    layer = sum(matrix_bits(k, n, bulk_bpw, bulk_fallback) for k, n in _layer_matrices(spec))
    layer += (_attention_bias_params(spec) + _mlp_bias_params(spec) + spec.norms_per_layer * h) * 32
    return WeightBytes(
        embeddings=math.ceil(embedding / 8),
        layers=math.ceil(spec.num_layers * layer / 8),
        final_norm=h * 4,
        lm_head=0 if spec.tied_embeddings else math.ceil(output / 8),
    )


def weight_bytes(spec: ModelSpec, precision: str | Precision, block_size: int = 32) -> int:
    """Bytes of the weights as stored: exactly the file edgefit builds (fp32, fp16, int8, int4), a bf16
    checkpoint (2 bytes/param), or a GGUF file by llama.cpp's effective bits per weight (embedding included)."""
    p = get_precision(precision)
    if p.kind == "gguf":
        return gguf_bytes_by_part(spec, p).total
    if p.name == "bf16":
        return 2 * param_counts(spec).total
    return weight_bytes_by_part(spec, p, block_size).total


def weight_read_bytes_per_token(spec: ModelSpec, precision: str | Precision, block_size: int = 32) -> int:
    """Bytes one decoded token streams from memory: every layer's weights (projections, biases, norms) plus the
    LM head. The embedding is a Gather of one row (ignored), unless it is also the LM head (tied fp32/fp16/GGUF)."""
    p = get_precision(precision)
    pc = param_counts(spec)
    if p.kind == "gguf":
        g = gguf_bytes_by_part(spec, p)
        return g.layers + g.final_norm + (g.embeddings if spec.tied_embeddings else g.lm_head)
    if p.name == "bf16":
        return 2 * (pc.total - pc.embeddings + (pc.embeddings if spec.tied_embeddings else 0))
    parts = weight_bytes_by_part(spec, p, block_size)
    lm_head = parts.embeddings if spec.tied_embeddings and p.kind == "float" else parts.lm_head
    return parts.layers + parts.final_norm + lm_head


def kv_cache_bytes_per_token(spec: ModelSpec, dtype_bytes: int = 4) -> int:
    """K and V, all layers: 2 x layers x kv_heads x head_dim x dtype_bytes (fp32 on onnxruntime's CPU provider)."""
    return 2 * spec.num_layers * spec.num_kv_heads * spec.head_dim * dtype_bytes


def flops_decode_per_token(spec: ModelSpec, context_tokens: int) -> int:
    """FLOPs of one decoded token that attends to ``context_tokens`` positions (itself included):
    2 x MatMul params (multiply + add) + attention 4 x layers x heads x head_dim x context (QK^T and AV)."""
    if context_tokens < 0:
        raise CatalogError(f"context tokens: expected >= 0, found {context_tokens}")
    attention = 4 * spec.num_layers * spec.num_heads * spec.head_dim * context_tokens
    return 2 * matmul_params(spec) + attention


def flops_prompt(spec: ModelSpec, prompt_tokens: int) -> int:
    """FLOPs of a prefill of ``prompt_tokens``: the sum over positions 1..n of ``flops_decode_per_token``, so the
    attention term is quadratic (n(n+1)/2). Logits are computed for every position, as edgefit's graph does."""
    if prompt_tokens < 0:
        raise CatalogError(f"prompt tokens: expected >= 0, found {prompt_tokens}")
    n = prompt_tokens
    attention = 4 * spec.num_layers * spec.num_heads * spec.head_dim * (n * (n + 1) // 2)
    return 2 * matmul_params(spec) * n + attention
