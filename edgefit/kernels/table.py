"""The kernel table: raw chain timings of one host (the record) and the per-class cost model derived from them.

    KernelTable (raw, stored)                         KernelModel (derived, pure function of the table)
    ─────────────────────────                         ──────────────────────────────────────────────────
    host facts, threads, triad samples          ──>   run_s: one session run; tiny_s: one do-nothing node
    per chain: KernelSpec + cold/warm run times ──>   per-node seconds of every chain (estimator below, run_s
                                                      subtracted); linear: per precision and regime, time vs
                                                      weight bytes (M = 1) and vs K*N at M = 16, 128;
                                                      gqa / rotary / norm / eltwise / mul: few-parameter fits
                                                      (fixed cost + per byte / per element / per MAC)

The estimator is the lower quartile over rounds (``estimate``): interference only adds time, so a low quantile
tracks the undisturbed cost, but with many rounds the minimum catches rare lucky ones (a cold chain partly still in
the cache); the quantile was chosen with ``benchmarks/bench_repeatability.py``. The table's noise is the relative
difference between the estimates of the first and of the second half of the rounds, per chain; its median widens
every prediction's interval.

A table may also carry ``calls``: whole decoder files (``edgefit validate``'s models) timed twice per round (first
run, then the run right after it) among the chains, so a model and the kernels that price it are measured under the
same drift and bursts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgefit.errors import PredictError
from edgefit.fitting import LinearFit, nnls_fit
from edgefit.kernels.spec import KernelSpec, linear_weight_bytes

SCHEMA_VERSION = 1
# read-only GEMV streaming beats the triad (which also writes, with write-allocate): 1.4-1.95x measured on this
# project's AMD EPYC VM with 16 MiB nodes, up to 2.3x with 64 MiB ones; far outside = a broken or disturbed measurement
PLAUSIBLE_STREAM_OF_TRIAD = (0.3, 3.0)
# other processes used more CPU than this (cores, on average) while the rounds ran: the table is warned about
DISTURBED_OTHERS_CORES = 0.25


@dataclass(frozen=True, slots=True)
class HostFacts:
    host_fingerprint: str
    host_id: str
    cpu_model: str
    isa: str  # x86_64 | aarch64 | ...
    cores: int
    clock_hz: float  # max clock of the fastest cluster (0 when unknown)
    llc_bytes: int
    onnxruntime_version: str
    int8_dot_path: str = ""  # e.g. avx512-vnni, neon-dotprod (from the host profile when it says)
    # RSS one read through a mapped file costs (probes.mapped_granules), its pages cached / evicted; 0 unknown
    mapped_granule_bytes: int = 0
    mapped_cold_granule_bytes: int = 0

    @property
    def mapped_granules(self) -> tuple[int, int]:
        return self.mapped_granule_bytes, self.mapped_cold_granule_bytes


@dataclass(frozen=True, slots=True)
class KernelSamples:
    spec: KernelSpec
    cold_s: tuple[float, ...]  # whole-chain run times, first run of the chain in its round
    warm_s: tuple[float, ...]  # the run right after it


@dataclass(frozen=True, slots=True)
class CallSamples:
    """One whole-model call timed in the table's rounds: ``tokens`` new tokens on a cache of ``past``."""

    model_id: str
    precision: str
    tokens: int
    past: int
    samples_s: tuple[float, ...]  # one per round: the call's first run in the round (weights evicted by the chains)
    # the run right after it, as `edgefit bench` repeats a call back to back (a model that fits the last-level
    # cache runs from it then: ladder-7m fp32 0.92 ms cold, 0.55 ms warm, 0.38-0.41 ms in bench); () in old tables
    warm_s: tuple[float, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.model_id}|{self.precision}|{self.tokens}|{self.past}"

    @property
    def compared_s(self) -> tuple[float, ...]:
        """The runs a comparison uses: the second of each round, as `edgefit bench` repeats a call; the first in
        tables measured before the second was kept."""
        return self.warm_s or self.samples_s

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_id": self.model_id, "precision": self.precision, "tokens": self.tokens,
                               "past": self.past, "samples_s": list(self.samples_s)}  # fmt: skip
        if self.warm_s:
            out["warm_s"] = list(self.warm_s)
        return out


@dataclass(frozen=True, slots=True)
class KernelTable:
    host: HostFacts
    threads: int
    rounds: int
    kernels: tuple[KernelSamples, ...]
    triad_bytes_per_s: tuple[float, ...]  # one STREAM-triad probe per round
    runtime_rss_bytes: int  # the worker's RSS with onnxruntime loaded and one trivial session run
    measured_at: str  # ISO 8601 UTC
    seconds: float  # wall time of the calibration
    dropped: tuple[str, ...] = ()  # chains left out for memory
    notes: tuple[str, ...] = ()
    others_cores: float = 0.0  # CPU cores other processes used on average while the rounds ran
    calls: tuple[CallSamples, ...] = ()  # whole models timed in the same rounds (``edgefit validate``)
    lead_bytes: int = 0  # untimed weights built before the chains (kernels.worker.lead_sessions); 0 in old tables
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "host": {f: getattr(self.host, f) for f in HostFacts.__slots__},
            "threads": self.threads,
            "rounds": self.rounds,
            "kernels": [
                {"spec": k.spec.to_dict(), "cold_s": list(k.cold_s), "warm_s": list(k.warm_s)} for k in self.kernels
            ],
            "triad_bytes_per_s": list(self.triad_bytes_per_s),
            "runtime_rss_bytes": self.runtime_rss_bytes,
            "measured_at": self.measured_at,
            "seconds": self.seconds,
            "dropped": list(self.dropped),
            "notes": list(self.notes),
            "others_cores": self.others_cores,
            "lead_bytes": self.lead_bytes,
            **({"calls": [c.to_dict() for c in self.calls]} if self.calls else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "kernel table") -> KernelTable:
        """Validate and build; PredictError (one line, naming the field) on anything malformed."""
        try:
            if data.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"schema_version: expected {SCHEMA_VERSION}, found {data.get('schema_version')!r}")
            h = data["host"]
            host = HostFacts(
                host_fingerprint=_str(h["host_fingerprint"]),
                host_id=_str(h["host_id"]),
                cpu_model=_str(h["cpu_model"]),
                isa=_str(h["isa"]),
                cores=_int(h["cores"], 1, 4096),
                clock_hz=_num(h["clock_hz"], 0.0, 1e11),
                llc_bytes=_int(h["llc_bytes"], 0, 2**40),
                onnxruntime_version=_str(h["onnxruntime_version"]),
                int8_dot_path=_str(h.get("int8_dot_path", "")),
                mapped_granule_bytes=_int(h.get("mapped_granule_bytes", 0), 0, 2**30),
                mapped_cold_granule_bytes=_int(h.get("mapped_cold_granule_bytes", 0), 0, 2**30),
            )
            kernels = []
            for raw in data["kernels"]:
                spec_raw = raw["spec"]
                if not isinstance(spec_raw, Mapping):
                    raise ValueError("kernels[].spec: expected an object")
                spec = KernelSpec.from_dict(
                    {k: (_str(v) if k in ("kind", "precision") else _int(v, 0, 2**31)) for k, v in spec_raw.items()}
                )
                cold = tuple(_num(x, 1e-9, 1e4) for x in raw["cold_s"])
                warm = tuple(_num(x, 1e-9, 1e4) for x in raw["warm_s"])
                if not cold or not warm:
                    raise ValueError(f"kernels {spec.id}: no samples")
                kernels.append(KernelSamples(spec, cold, warm))
            return cls(
                host=host,
                threads=_int(data["threads"], 1, 4096),
                rounds=_int(data["rounds"], 1, 10**6),
                kernels=tuple(kernels),
                triad_bytes_per_s=tuple(_num(x, 1.0, 1e14) for x in data["triad_bytes_per_s"]),
                runtime_rss_bytes=_int(data["runtime_rss_bytes"], 0, 2**44),
                measured_at=_str(data["measured_at"]),
                seconds=_num(data["seconds"], 0.0, 1e7),
                dropped=tuple(_str(x) for x in data.get("dropped", ())),
                notes=tuple(_str(x) for x in data.get("notes", ())),
                others_cores=_num(data.get("others_cores", 0.0), 0.0, 4096.0),
                lead_bytes=_int(data.get("lead_bytes", 0), 0, 2**44),
                calls=tuple(
                    CallSamples(
                        _str(c["model_id"]),
                        _str(c["precision"]),
                        _int(c["tokens"], 1, 2**20),
                        _int(c["past"], 0, 2**24),
                        tuple(_num(x, 1e-9, 1e4) for x in c["samples_s"]),
                        tuple(_num(x, 1e-9, 1e4) for x in c.get("warm_s", ())),
                    )
                    for c in data.get("calls", ())
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise PredictError(f"{where}: {what}; re-run `edgefit calibrate` (or re-export the bundle)") from None


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected text, found {type(v).__name__}")
    return v


def _short(v: Any) -> str:
    text = repr(v) if not isinstance(v, int) or abs(v) < 10**30 else "a huge integer"
    return text if len(text) <= 40 else text[:37] + "..."


def _int(v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"expected an integer in {lo}..{hi}, found {_short(v)}")
    return v


def _num(v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or not math.isfinite(v):
        raise ValueError(f"expected a finite number in {lo:g}..{hi:g}, found {_short(v)}")
    return float(v)


# ---------------------------------------------------------------------------------------------- estimators


ESTIMATE_QUANTILE = 0.25


def _quantile(samples: Sequence[float], q: float) -> float:
    xs = sorted(samples)
    return float(xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))])


def estimate(samples: Sequence[float]) -> float:
    """The time a chain stands for: the lower quartile over rounds. Chosen with
    ``benchmarks/bench_repeatability.py`` (two calibrations back to back, 75 answers): with ~80 rounds the minimum
    catches rare lucky rounds (a cold chain partly left in the last-level cache) and moved answers by a median
    19 %, the median takes interference in and moved them 2.8 %, the lower quartile 1.8 % (worst 3.3 %)."""
    return _quantile(samples, ESTIMATE_QUANTILE)


def split_half_noise(samples: Sequence[float]) -> float:
    """|estimate(first half) - estimate(second half)| / the smaller: how far the estimate moves with half the
    rounds."""
    if len(samples) < 4:
        return 0.0
    half = len(samples) // 2
    a, b = estimate(samples[:half]), estimate(samples[half:])
    return abs(a - b) / max(min(a, b), 1e-12)


# ---------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Curve:
    """Per-node seconds vs a size (bytes or MACs): piecewise linear in log-log between measured points, made
    non-decreasing; below the smallest point the smallest time (a node never costs less than its dispatch),
    above the largest proportional to size (a GEMV reads every weight once; a GEMM does every MAC)."""

    sizes: tuple[float, ...]
    seconds: tuple[float, ...]

    def __call__(self, size: float) -> float:
        xs, ys = self.sizes, self.seconds
        if size <= xs[0]:
            return ys[0]
        if size >= xs[-1]:
            return ys[-1] * size / xs[-1]
        lx = math.log(size)
        for i in range(1, len(xs)):
            if size <= xs[i]:
                x0, x1 = math.log(xs[i - 1]), math.log(xs[i])
                y0, y1 = math.log(ys[i - 1]), math.log(ys[i])
                return math.exp(y0 + (y1 - y0) * (lx - x0) / (x1 - x0))
        return ys[-1]

    @classmethod
    def from_points(cls, points: Sequence[tuple[float, float]]) -> Curve:
        merged: dict[float, list[float]] = {}
        for x, y in points:
            merged.setdefault(float(x), []).append(max(float(y), 1e-9))
        xs = sorted(merged)
        ys = [statistics.median(merged[x]) for x in xs]
        for i in range(1, len(ys)):  # isotonic: more bytes never cost less
            ys[i] = max(ys[i], ys[i - 1])
        return cls(tuple(xs), tuple(ys))


def _fit(rows: list[list[float]], y: list[float], names: tuple[str, ...]) -> LinearFit:
    return nnls_fit(rows, y, names, relative=True)


def constant_fit(seconds: float) -> LinearFit:
    return LinearFit(("c",), (seconds,), 1.0, 0.0, (), ())


@dataclass(frozen=True, slots=True)
class KernelModel:
    """Per-node costs of this host, derived from a KernelTable. ``regime``: "cold" (weights from DRAM) or "warm"."""

    table: KernelTable
    run_s: float
    tiny_s: float
    gemv: Mapping[tuple[str, str], Curve]  # (precision, regime) -> seconds vs weight bytes, M = 1
    gemm: Mapping[tuple[str, int], Curve]  # (precision, rows) -> seconds vs K*N, cold/warm min
    gemv_overhead_s: Mapping[str, float]  # precision -> fixed cost of one node (smallest chain's per-node time)
    stream_bytes_per_s: float  # the fastest cold fp32 GEMV streaming rate (weights read once)
    triad_bytes_per_s: float  # the STREAM triad reference measured in the same rounds (upper quartile of rates)
    fp32_gemm_macs_per_s: float  # compute references: the largest M = 128 chain of each class
    int8_gemm_macs_per_s: float
    gqa_decode: Mapping[str, LinearFit]  # regime -> c + kv_bytes + macs
    gqa_prefill: LinearFit  # c + kv_bytes + macs (quadratic in S)
    small: Mapping[str, LinearFit]  # rotary | norm | eltwise | mul -> c + elements
    noise_rel: float  # median split-half noise over chains
    per_node_s: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # chain id -> (cold, warm)
    # arithmetic rate per class (precision): the fastest MAC rate of its GEMM chains. A GEMV does the same MACs
    # with no reuse, so MACs / this rate is the least compute it needs: the compute part of a memory-bound GEMV,
    # which the host cannot show directly (its warm runs are limited by the cache's bandwidth, not arithmetic)
    gemv_macs_per_s: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    # -- costs ---------------------------------------------------------------------------------------------
    def linear_s(self, precision: str, m: int, k: int, n: int, regime: str) -> float:
        """One MatMul / MatMulNBits node of M rows, K x N weights."""
        gemv = self.gemv[(precision, regime)](linear_weight_bytes(precision, k, n))
        if m <= 1:
            return gemv
        rows = sorted(r for p, r in self.gemm if p == precision)
        kn = float(k * n)
        if not rows:  # no GEMM measured: every row a GEMV (an upper bound)
            return gemv * m
        prev_m, prev_t = 1, gemv
        fixed = self.gemv_overhead_s.get(precision, 0.0)
        for r in rows:
            c = self.gemm[(precision, r)]
            t = c(kn)
            if kn < c.sizes[0]:  # below the smallest GEMM measured: its MACs shrink with K x N, its dispatch not
                t = fixed + max(c.seconds[0] - fixed, 0.0) * kn / c.sizes[0]
            if m <= r:
                # log-log between the neighbouring measured row counts
                f = math.log(m / prev_m) / math.log(r / prev_m)
                return math.exp(math.log(prev_t) + f * (math.log(max(t, 1e-12)) - math.log(prev_t)))
            prev_m, prev_t = r, t
        return prev_t * m / prev_m  # beyond the largest measured M: compute scales with rows

    def gqa_s(self, *, s: int, past: int, heads: int, kv_heads: int, head_dim: int, regime: str) -> float:
        x = gqa_features(s=s, past=past, heads=heads, kv_heads=kv_heads, head_dim=head_dim)
        fit = self.gqa_decode[regime] if s == 1 else self.gqa_prefill
        return fit.evaluate(x)

    def small_s(self, kind: str, elements: int) -> float:
        return self.small[kind].evaluate({"elements": float(elements)})


def gqa_features(*, s: int, past: int, heads: int, kv_heads: int, head_dim: int) -> dict[str, float]:
    """What a GroupQueryAttention node moves and computes: the cache read and copied into the present output
    (past + s rows of K and V, fp32) and the score/value MACs (heads x s x (past + s) x head_dim x 2)."""
    total = past + s
    return {
        "kv_bytes": float(2 * 4 * kv_heads * head_dim * total),
        "macs": float(2 * heads * s * total * head_dim),
    }


def fit_gqa(points: Sequence[tuple[KernelSpec, float]]) -> LinearFit:
    """GroupQueryAttention chains' per-node seconds as c + a x kv_bytes + b x macs (non-negative, relative
    residuals), labelled ``heads/kv_heads/head_dim@past``."""
    rows, y, labels = [], [], []
    for s, t in points:
        x = gqa_features(s=s.m, past=s.past, heads=s.heads, kv_heads=s.kv_heads, head_dim=s.head_dim)
        rows.append([1.0, x["kv_bytes"], x["macs"]])
        y.append(t)
        labels.append(f"{s.heads}/{s.kv_heads}/{s.head_dim}@{s.past}")
    return nnls_fit(rows, y, ("c", "kv_bytes", "macs"), labels, relative=True)


def _small_elements(spec: KernelSpec) -> int:
    if spec.kind == "rotary":
        return spec.m * spec.heads * spec.head_dim
    return spec.m * spec.k


def fit_model(table: KernelTable) -> KernelModel:
    """Derive the per-class costs. PredictError when the table lacks what every prediction needs."""
    by_id = {k.spec.id: k for k in table.kernels}
    if "empty" not in by_id or "tiny" not in by_id:
        raise PredictError("kernel table: no 'empty'/'tiny' chains (run overhead unknown); re-run `edgefit calibrate`")
    run_s = min(estimate(by_id["empty"].cold_s), estimate(by_id["empty"].warm_s))
    per_node: dict[str, tuple[float, float]] = {}
    for k in table.kernels:
        if k.spec.kind == "empty":
            continue
        cold = max(estimate(k.cold_s) - run_s, 1e-9) / k.spec.nodes
        warm = max(estimate(k.warm_s) - run_s, 1e-9) / k.spec.nodes
        per_node[k.spec.id] = (cold, min(warm, cold))  # a rerun never reads from further away than the first
    tiny_s = per_node["tiny"][1]
    gemv_points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    gemm_points: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for k in table.kernels:
        s = k.spec
        if s.kind != "linear":
            continue
        cold, warm = per_node[s.id]
        if s.m == 1:
            b = float(s.weight_bytes_per_node())
            gemv_points.setdefault((s.precision, "cold"), []).append((b, cold))
            gemv_points.setdefault((s.precision, "warm"), []).append((b, warm))
        else:
            gemm_points.setdefault((s.precision, s.m), []).append((float(s.k * s.n), warm))
    if not gemv_points:
        raise PredictError("kernel table: no linear (MatMul) chains; re-run `edgefit calibrate`")
    gemv = {key: Curve.from_points(pts) for key, pts in gemv_points.items()}
    gemm = {key: Curve.from_points(pts) for key, pts in gemm_points.items()}
    overhead = {p: c.seconds[0] for (p, regime), c in gemv.items() if regime == "warm"}
    # the arithmetic rate of each class: the fastest MAC rate of its GEMM chains (several chains, long enough to
    # be compute-bound; one chain disturbed in every round cannot move it)
    gemv_rates: dict[str, float] = {}
    for (p, m_rows), c in gemm.items():
        for kn, t in zip(c.sizes, c.seconds, strict=True):
            gemv_rates[p] = max(gemv_rates.get(p, 0.0), m_rows * kn / t)
    warnings: list[str] = []
    # the triad's rate at the same quantile as the kernels' times (the upper quartile of rates)
    triad = _quantile(table.triad_bytes_per_s, 1.0 - ESTIMATE_QUANTILE) if table.triad_bytes_per_s else 0.0
    # streaming: bytes / (t - fixed cost) of the larger cold fp32 GEMV nodes, the fastest of them
    rates = [
        b / max(t - overhead.get("fp32", 0.0), 1e-9)
        for (p, regime), c in gemv.items()
        if p == "fp32" and regime == "cold"
        for b, t in zip(c.sizes, c.seconds, strict=True)
        if b >= 4 * 2**20
    ]
    stream = max(rates) if rates else 0.0
    if triad > 0 and stream > 0:
        lo, hi = PLAUSIBLE_STREAM_OF_TRIAD
        if not lo <= stream / triad <= hi:
            warnings.append(
                f"fp32 GEMV streamed {stream / 1e9:.1f} GB/s against a {triad / 1e9:.1f} GB/s triad probe "
                f"({stream / triad:.2f}x, plausible {lo}-{hi}): the host was disturbed; the streaming rate is "
                "clamped to that range"
            )
            stream = min(max(stream, lo * triad), hi * triad)
    # compute references: the fastest MAC rate of any GEMM chain of the class (several chains, so one chain hit
    # by interference in every round cannot move the reference)
    refs = {
        p: max((r * kn / t for (q, r), c in gemm.items() if q == p for kn, t in zip(c.sizes, c.seconds, strict=True)),
               default=0.0)
        for p in ("fp32", "int8")
    }  # fmt: skip
    gqa_dec: dict[str, LinearFit] = {}
    decode_chains = [k.spec for k in table.kernels if k.spec.kind == "gqa" and k.spec.m == 1]
    for ri, regime in enumerate(("cold", "warm")):
        points = [(s, per_node[s.id][ri]) for s in decode_chains]
        gqa_dec[regime] = fit_gqa(points) if points else constant_fit(tiny_s)
    prefill = [(k.spec, per_node[k.spec.id][1]) for k in table.kernels if k.spec.kind == "gqa" and k.spec.m > 1]
    gqa_pre = fit_gqa(prefill) if prefill else gqa_dec["warm"]
    small: dict[str, LinearFit] = {}
    for kind in ("rotary", "norm", "eltwise", "mul"):
        pts = [(float(_small_elements(k.spec)), per_node[k.spec.id][1]) for k in table.kernels if k.spec.kind == kind]
        rows3 = [[1.0, e] for e, _ in pts]
        small[kind] = _fit(rows3, [t for _, t in pts], ("c", "elements")) if pts else constant_fit(tiny_s)
    if table.others_cores > DISTURBED_OTHERS_CORES:
        warnings.append(
            f"other processes used {table.others_cores:.1f} cores on average while the kernel table was measured: "
            "its times may be high; re-run `edgefit calibrate` on a quiet machine"
        )
    noise = statistics.median(
        [split_half_noise(k.cold_s) for k in table.kernels] + [split_half_noise(k.warm_s) for k in table.kernels]
    )
    return KernelModel(
        table=table,
        run_s=run_s,
        tiny_s=tiny_s,
        gemv=gemv,
        gemm=gemm,
        gemv_overhead_s=overhead,
        stream_bytes_per_s=stream,
        triad_bytes_per_s=triad,
        fp32_gemm_macs_per_s=refs["fp32"],
        int8_gemm_macs_per_s=refs["int8"],
        gqa_decode=gqa_dec,
        gqa_prefill=gqa_pre,
        small=small,
        noise_rel=float(noise),
        per_node_s=per_node,
        gemv_macs_per_s=gemv_rates,
        warnings=tuple(warnings),
    )


def median_table(tables: Sequence[KernelTable]) -> KernelTable:
    """One table from several calibrations of the same host (oldest first), each chain's samples those of the table
    whose estimate of that chain is the median (cold and warm runs chosen apart; the upper middle of an even number):
    every chain then costs the median over the calibrations of its lower quartile over rounds. The STREAM triad's
    samples come from the table with the median triad rate; host facts, whole-model calls and lead from the latest.
    Chains that not every table measured with the same spec (node count included) are left out."""
    if not tables:
        raise PredictError("no kernel tables to take the median of")
    latest = tables[-1]
    if any(t.host.host_fingerprint != latest.host.host_fingerprint for t in tables):
        raise PredictError("kernel tables of two different hosts cannot be pooled")
    by_spec = [{k.spec: k for k in t.kernels} for t in tables]

    def middle(runs: Sequence[tuple[float, ...]]) -> tuple[float, ...]:
        return sorted(runs, key=estimate)[len(runs) // 2]

    kernels = tuple(
        KernelSamples(
            k.spec,
            middle([b[k.spec].cold_s for b in by_spec]),
            middle([b[k.spec].warm_s for b in by_spec]),
        )
        for k in latest.kernels
        if all(k.spec in b for b in by_spec)
    )
    triads = [t.triad_bytes_per_s for t in tables if t.triad_bytes_per_s]
    triad = sorted(triads, key=lambda xs: _quantile(xs, 1.0 - ESTIMATE_QUANTILE))[len(triads) // 2] if triads else ()
    return KernelTable(
        host=latest.host,
        threads=latest.threads,
        rounds=min(t.rounds for t in tables),
        kernels=kernels,
        triad_bytes_per_s=tuple(triad),
        runtime_rss_bytes=max(t.runtime_rss_bytes for t in tables),
        measured_at=latest.measured_at,
        seconds=sum(t.seconds for t in tables),
        dropped=tuple(sorted({d for t in tables for d in t.dropped})),
        notes=(*latest.notes, f"the median of {len(tables)} tables measured from {tables[0].measured_at}"),
        others_cores=statistics.median(t.others_cores for t in tables),
        calls=latest.calls,
        lead_bytes=min(t.lead_bytes for t in tables),
    )


def merge_tables(before: KernelTable, after: KernelTable) -> KernelTable:
    """One table from two calibrations of the same host taken around a measurement (``edgefit validate`` brackets
    the models with them): every chain both measured keeps the rounds of both, so slow drift between them is
    averaged by the estimator instead of taken from one end. Only chains of the same spec (node count included:
    the plan shortens chains on a host short of memory) merge; a chain's samples are whole-chain times."""
    if before.host.host_fingerprint != after.host.host_fingerprint:
        raise PredictError("kernel tables of two different hosts cannot be merged")
    first = {k.spec: k for k in before.kernels}
    kernels = tuple(
        KernelSamples(k.spec, first[k.spec].cold_s + k.cold_s, first[k.spec].warm_s + k.warm_s)
        for k in after.kernels
        if k.spec in first
    )
    return KernelTable(
        host=after.host,
        threads=after.threads,
        rounds=before.rounds + after.rounds,
        kernels=kernels,
        triad_bytes_per_s=before.triad_bytes_per_s + after.triad_bytes_per_s,
        runtime_rss_bytes=max(before.runtime_rss_bytes, after.runtime_rss_bytes),
        measured_at=after.measured_at,
        seconds=before.seconds + after.seconds,
        dropped=tuple(sorted(set(before.dropped) | set(after.dropped))),
        notes=(*after.notes, f"merged with the table measured at {before.measured_at}"),
        others_cores=(before.others_cores + after.others_cores) / 2,
        calls=before.calls + after.calls,
        lead_bytes=min(before.lead_bytes, after.lead_bytes),
    )
