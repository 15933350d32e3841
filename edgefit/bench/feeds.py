"""Synthesize valid inputs for any ONNX model from its input descriptions.

Roles decide shapes and values; what the user states always wins:

    --shape NAME=AxBxC                      that input's whole shape (named, unnamed or fixed dims alike)
    --dim NAME=VALUE                        a named symbolic dim, in every input that has it
    --input NAME=VALUE                      a scalar input's value (or every element of the input)

    role (found from dtype, rank, name)     default shape of its dynamic dims     values
    token ids (index an embedding Gather,   batch 1, sequence 16                  random ints in [0, vocab) / zeros
      or named *ids / *token*)
    attention mask / position ids           batch 1, sequence 16 (decoders: past + seq / seq)   ones / 0..n-1
    past KV (decoders)                      from a real prefill's present, or zeros of length ``past``
    seqlens_k / total_sequence_length       GroupQueryAttention's int32 bookkeeping (past + seq - 1, past + seq)
    image: 4-D float, 1 or 3 channels       batch 1; height/width from the file's metadata, else the other
      (NCHW, or NHWC)                       spatial dim when fixed, else 640 for detector-like names, else 224
    audio: 2-D float, last dim dynamic      batch 1; 32 ms of samples at the sample rate (512 at 16 kHz)
    recurrent state (state, h, c, hidden)   declared size, dynamic dims 1 (silero-vad's [2, ?, 128] -> [2, 1, 128])
    sample rate scalar (sr, sample_rate)    16000
    other scalars                           1 (bool: True)
    anything else                           "batch" dims 1, other named dims ``default_dim``, unnamed 1;
                                            ints zeros, floats standard-normal noise

``plan_inputs`` says, per input, the shape used, why, and the flag that changes it: the bench prints it, and an
inference that fails with these inputs quotes it (``failure_hint``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from edgefit.bench.modelinfo import ModelFileInfo, TensorInfo

DEFAULT_DIM = 16
DEFAULT_SEQUENCE = 16  # token inputs of a non-decoder (an encoder, a classifier): a short sentence
DEFAULT_IMAGE_SIZE = 224  # classifiers (ImageNet)
DETECTOR_IMAGE_SIZE = 640  # YOLO, RT-DETR, PP-OCR det, SCRFD ... are trained and exported at 640
DEFAULT_SAMPLE_RATE_HZ = 16000
AUDIO_CHUNK_S = 0.032  # silero-vad's window: 512 samples at 16 kHz, 256 at 8 kHz

_DETECTOR_RE = re.compile(r"det|yolo|ssd|retina|scrfd")
_STATE_RE = re.compile(r"(^|[_.\-/])(state|states|h|c|h0|c0|hx|cx|hn|cn|hidden|cell)($|[_.\-/\d])|state|hidden")
_SAMPLE_RATE_RE = re.compile(r"^(sr|fs|sample_?rate|sampling_?rate|samplerate)$")
_IDS_RE = re.compile(r"ids$|token")

# Roles whose shape a decoder's prompt/depth plan sets: --shape cannot reach them there.
DECODER_ROLES = frozenset({"past", "tokens", "ids", "mask", "positions", "seqlens_k", "total_len"})

ROLE_WORDS = {
    "past": "KV cache",
    "tokens": "token ids",
    "ids": "token ids",
    "mask": "attention mask",
    "positions": "position ids",
    "seqlens_k": "sequence lengths",
    "total_len": "total length",
    "image_nchw": "image, NCHW",
    "image_nhwc": "image, NHWC",
    "audio": "audio chunk",
    "state": "recurrent state",
    "sample_rate": "sample rate",
    "scalar": "scalar",
    "generic": "tensor",
}


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """How to fill inputs: user shapes, dims and scalar values, plus a default for other symbolic dims."""

    dims: dict[str, int] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    default_dim: int = DEFAULT_DIM
    seed: int = 0
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # --shape NAME=AxB: whole input shapes


def _is_batch(name: str) -> bool:
    return "batch" in name.lower()


def past_dim_index(t: TensorInfo) -> int:
    """Which axis of a past-KV input is the sequence: its one non-batch symbolic dim, else the convention
    ([batch, heads, seq, head_dim] -> 2; GPT-2's [2, batch, heads, seq, head_dim] -> 3)."""
    shape = t.shape or ()
    sym = [i for i, d in enumerate(shape) if isinstance(d, str) and not _is_batch(d)]
    if len(sym) == 1:
        return sym[0]
    return 3 if len(shape) == 5 else 2


def input_role(info: ModelFileInfo, t: TensorInfo) -> str:
    """What ``t`` is, as far as its name, dtype and rank tell (see the module table)."""
    low = t.name.lower()
    if t.name in info.past_inputs:
        return "past"
    if t.name in info.token_inputs:
        return "tokens"
    if "mask" in low:
        return "mask"
    if "position" in low:
        return "positions"
    if low.startswith("seqlens_k"):
        return "seqlens_k"
    if low.startswith("total_sequence_length") or low == "total_seq_len":
        return "total_len"
    shape = t.shape
    is_float = t.dtype.startswith(("float", "bfloat")) or t.dtype.startswith("onnx:")
    is_int = t.dtype.startswith(("int", "uint"))
    if shape == ():
        return "sample_rate" if _SAMPLE_RATE_RE.match(low) else "scalar"
    if shape is None:
        return "generic"
    if is_int and len(shape) == 2 and _IDS_RE.search(low):
        return "ids"
    if is_float and len(shape) == 4:
        if shape[1] in (1, 3):
            return "image_nchw"
        if shape[3] in (1, 3) and not isinstance(shape[1], int):
            return "image_nhwc"
    # "hidden_states" / "encoder_hidden_states" are activations (a sequence), not a recurrent state
    if is_float and len(shape) >= 2 and _STATE_RE.search(low) and "hidden_states" not in low:
        return "state"
    if is_float and len(shape) == 2 and not isinstance(shape[-1], int):
        return "audio"
    return "generic"


def _detector_like(info: ModelFileInfo, t: TensorInfo) -> bool:
    return bool(_DETECTOR_RE.search(f"{info.path.stem} {info.graph_name} {t.name}".lower()))


def sample_rate_hz(info: ModelFileInfo, spec: FeedSpec) -> float:
    """The sample rate fed to the model's sample-rate input (--input wins), else 16 kHz."""
    for t in info.inputs:
        if input_role(info, t) == "sample_rate":
            return float(spec.scalars.get(t.name, DEFAULT_SAMPLE_RATE_HZ))
    return float(DEFAULT_SAMPLE_RATE_HZ)


def _image_hw(info: ModelFileInfo, t: TensorInfo, spec: FeedSpec, axes: tuple[int, int]) -> tuple[int, int]:
    shape = t.shape or ()
    known: list[int | None] = []
    for a in axes:
        d = shape[a]
        known.append(d if isinstance(d, int) else spec.dims.get(d) if isinstance(d, str) else None)
    if known[0] is not None and known[1] is not None:
        return known[0], known[1]
    if info.image_size_hint is not None:
        hint = info.image_size_hint
    elif known[0] is not None or known[1] is not None:
        side = known[0] if known[0] is not None else known[1]
        hint = (int(side or 0), int(side or 0))  # a square image: the fixed side names the other
    else:
        size = DETECTOR_IMAGE_SIZE if _detector_like(info, t) else DEFAULT_IMAGE_SIZE
        hint = (size, size)
    return (known[0] if known[0] is not None else hint[0], known[1] if known[1] is not None else hint[1])


def _default_dims(info: ModelFileInfo, t: TensorInfo, spec: FeedSpec, role: str) -> list[int]:
    """Concrete dims of a non-decoder input from its role (user --dim values already win inside)."""
    shape = list(t.shape or ())
    rank = len(shape)
    out: list[int | None] = [
        d if isinstance(d, int) else spec.dims.get(d) if isinstance(d, str) else None for d in shape
    ]
    fill: dict[int, int] = {}
    if role in ("image_nchw", "image_nhwc"):
        axes = (2, 3) if role == "image_nchw" else (1, 2)
        h, w = _image_hw(info, t, spec, axes)
        fill = {0: 1, axes[0]: h, axes[1]: w}
    elif role == "audio":
        fill = {0: 1, rank - 1: max(1, round(sample_rate_hz(info, spec) * AUDIO_CHUNK_S))}
    elif role == "state":
        fill = dict.fromkeys(range(rank), 1)
    elif role in ("tokens", "ids", "mask", "positions"):
        fill = {i: (DEFAULT_SEQUENCE if i == rank - 1 else 1) for i in range(rank)}
    for i, d in enumerate(shape):
        if out[i] is not None:
            continue
        if i in fill:
            out[i] = fill[i]
        elif isinstance(d, str):
            out[i] = 1 if _is_batch(d) else spec.default_dim
        else:
            out[i] = 1
    return [int(v or 0) for v in out]


def resolve_shape(
    info: ModelFileInfo, t: TensorInfo, spec: FeedSpec, *, seq: int | None = None, past: int | None = None
) -> tuple[int, ...]:
    """Concrete shape of input ``t``; ``seq``/``past`` are set when measuring a decoder."""
    role = input_role(info, t)
    if t.name in spec.shapes and (seq is None or role not in DECODER_ROLES):
        return tuple(spec.shapes[t.name])
    if seq is None or past is None:
        return tuple(_default_dims(info, t, spec, role))
    shape = list(t.shape or ())
    out: list[int] = []
    p_idx = past_dim_index(t) if role == "past" else -1
    for i, d in enumerate(shape):
        if isinstance(d, int):
            out.append(d)
            continue
        if isinstance(d, str) and d in spec.dims:
            out.append(spec.dims[d])
            continue
        if isinstance(d, str) and _is_batch(d):
            out.append(1)
            continue
        if role == "past" and i == p_idx:
            out.append(past)
            continue
        if role == "mask" and i == len(shape) - 1:
            out.append(past + seq)
            continue
        if role in ("tokens", "ids", "positions") and i == len(shape) - 1:
            out.append(seq)
            continue
        if i == 0 and role in ("tokens", "ids", "positions", "mask", "seqlens_k"):
            out.append(1)
            continue
        if isinstance(d, str):
            out.append(seq if role in ("tokens", "ids", "positions", "mask") else spec.default_dim)
        else:
            out.append(1)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class InputPlan:
    """One input as it will be fed: the shape, what it was taken for, how it was decided, the flag that sets it."""

    name: str
    dtype: str
    declared: str  # the file's shape, e.g. "[?, 3, p2o.DynamicDimension.1, 640]"
    shape: tuple[int, ...]
    role: str
    source: str  # "--shape", "--input", "fixed", "default"
    value: float | None  # a scalar's value

    @property
    def text(self) -> str:
        """``x[1, 3, 640, 640] (image, NCHW)``, ``sr = 16000 (sample rate)``."""
        what = ROLE_WORDS.get(self.role, self.role)
        if self.value is not None and not self.shape:
            return f"{self.name} = {self.value:g} ({what})"
        return f"{self.name}[{', '.join(str(d) for d in self.shape)}] ({what}, {self.source})"

    def fix_flag(self, named_dims: tuple[str, ...]) -> str:
        if not self.shape:
            return f"--input {self.name}=VALUE"
        flag = f"--shape {self.name}={'x'.join(str(d) for d in self.shape)}"
        if named_dims:
            flag += " or " + " ".join(f"--dim {d}=N" for d in named_dims)
        return flag


def plan_inputs(info: ModelFileInfo, spec: FeedSpec) -> tuple[InputPlan, ...]:
    """Every input of a non-decoder run as it will be fed (decoders size theirs per prompt and depth)."""
    plans = []
    for t in info.inputs:
        shape = resolve_shape(info, t, spec)
        role = input_role(info, t)
        declared = t.shape or ()
        if t.name in spec.shapes:
            source = "--shape"
        elif t.name in spec.scalars:
            source = "--input"
        elif any(isinstance(d, str) and d in spec.dims for d in declared):
            source = "--dim"
        elif t.shape is not None and all(isinstance(d, int) for d in declared):
            source = "fixed"
        else:
            source = "default"
        value = _scalar_value(info, t, spec) if not shape else None
        plans.append(InputPlan(t.name, t.dtype, t.shape_text, shape, role, source, value))
    return tuple(plans)


def failure_hint(info: ModelFileInfo, spec: FeedSpec, shapes: dict[str, tuple[int, ...]]) -> str:
    """Each input as fed (``shapes``: the actual arrays' shapes) with the flag that changes it."""
    parts = []
    by_name = {p.name: p for p in plan_inputs(info, spec)}
    for t in info.inputs:
        shape = shapes.get(t.name, by_name[t.name].shape)
        named = tuple(dict.fromkeys(d for d in (t.shape or ()) if isinstance(d, str)))
        p = by_name[t.name]
        p = InputPlan(p.name, p.dtype, p.declared, tuple(shape), p.role, p.source, p.value)
        parts.append(f"{t.name}[{', '.join(str(d) for d in shape)}] ({p.fix_flag(named)})")
    return "; ".join(parts)


# Tried in order when the default image size fails (at most this many sessions runs): text-line heights first
# (PP-OCR recognizers and classifiers take 48 x W, CRNNs 32 x W), then squares detectors are exported at.
ALTERNATIVE_HEIGHTS = (48, 32, 64)
ALTERNATIVE_SQUARES = (640, 320, 416, 512)


def image_size_alternatives(info: ModelFileInfo, spec: FeedSpec) -> tuple[FeedSpec, ...]:
    """FeedSpecs with other image sizes for inputs whose spatial dims are a default guess; () when none is."""
    guessed: list[tuple[TensorInfo, tuple[int, int]]] = []
    for t in info.inputs:
        role = input_role(info, t)
        if role not in ("image_nchw", "image_nhwc") or t.name in spec.shapes or info.image_size_hint is not None:
            continue
        axes = (2, 3) if role == "image_nchw" else (1, 2)
        shape = t.shape or ()
        if all(isinstance(shape[a], int) or (isinstance(shape[a], str) and shape[a] in spec.dims) for a in axes):
            continue
        guessed.append((t, axes))
    if not guessed:
        return ()
    out = []
    sizes = [(h, None) for h in ALTERNATIVE_HEIGHTS] + [(s, s) for s in ALTERNATIVE_SQUARES]
    for h, w in sizes:
        shapes = dict(spec.shapes)
        for t, axes in guessed:
            dims = list(resolve_shape(info, t, spec))
            declared = t.shape or ()
            if not isinstance(declared[axes[0]], int):
                dims[axes[0]] = h
            if w is not None and not isinstance(declared[axes[1]], int):
                dims[axes[1]] = w
            shapes[t.name] = tuple(dims)
        out.append(FeedSpec(spec.dims, spec.scalars, spec.default_dim, spec.seed, shapes))
    return tuple(out)


def _scalar_value(info: ModelFileInfo, t: TensorInfo, spec: FeedSpec) -> float:
    if t.name in spec.scalars:
        return float(spec.scalars[t.name])
    if input_role(info, t) == "sample_rate":
        return float(DEFAULT_SAMPLE_RATE_HZ)
    return 1.0


def synthesize(
    info: ModelFileInfo,
    spec: FeedSpec,
    *,
    seq: int | None = None,
    past: int | None = None,
    skip: frozenset[str] = frozenset(),
) -> dict[str, np.ndarray]:
    """Feeds for every input of ``info`` except ``skip``; decoders pass ``seq`` and ``past``."""
    rng = np.random.default_rng(spec.seed)
    feeds: dict[str, np.ndarray] = {}
    for t in info.inputs:
        if t.name in skip:
            continue
        feeds[t.name] = _value(info, t, spec, rng, seq=seq, past=past)
    return feeds


def _value(
    info: ModelFileInfo,
    t: TensorInfo,
    spec: FeedSpec,
    rng: np.random.Generator,
    *,
    seq: int | None,
    past: int | None,
) -> np.ndarray:
    dtype = np.dtype(t.dtype) if not t.dtype.startswith("onnx:") else np.dtype("float32")
    shape = resolve_shape(info, t, spec, seq=seq, past=past)
    role = input_role(info, t)
    p = past or 0
    s = seq if seq is not None else (shape[-1] if shape else 1)
    if t.name in spec.scalars:
        return np.full(shape, spec.scalars[t.name], dtype=dtype)
    if role == "sample_rate":
        return np.full(shape, DEFAULT_SAMPLE_RATE_HZ, dtype=dtype)
    if role == "tokens":
        high = max(1, info.vocab_size or 1)
        return rng.integers(0, high, size=shape).astype(dtype)
    if role == "mask":
        return np.ones(shape, dtype=dtype)
    if role == "positions" and dtype.kind in "iu":
        last = shape[-1] if shape else 1
        row = np.arange(p, p + last, dtype=dtype)
        return np.broadcast_to(row, shape).copy() if shape else np.array(p, dtype=dtype)
    if role == "seqlens_k":
        return np.full(shape, p + s - 1, dtype=dtype)
    if role == "total_len":
        return np.full(shape, p + s, dtype=dtype)
    if dtype == np.bool_:
        return np.ones(shape, dtype=np.bool_)
    if dtype.kind in "iu":
        if not shape:
            return np.array(1, dtype=dtype)
        return np.zeros(shape, dtype=dtype)
    if role == "past":
        return np.zeros(shape, dtype=dtype)
    if not shape:
        return np.array(1.0, dtype=dtype)
    return rng.standard_normal(size=shape).astype(dtype)


def dims_used(info: ModelFileInfo, spec: FeedSpec) -> dict[str, int]:
    """The value each symbolic dim got for a plain (non-decoder) run: what the report shows."""
    used: dict[str, int] = {}
    for t in info.inputs:
        shape = resolve_shape(info, t, spec)
        for d, v in zip(t.shape or (), shape, strict=False):
            if isinstance(d, str):
                used.setdefault(d, v)
    return used
