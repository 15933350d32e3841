"""Micro-probes of this machine: memory bandwidth (STREAM-like triad and copy, GEMV read) and fp32 GEMM.

They give the host's own reference figures that the predictor expresses model efficiencies against, and a short
bandwidth probe the benchmarker interleaves with measurements to normalise drift on a shared machine.

How bytes are counted (as STREAM does, write-allocate traffic not counted):

    triad  a[i] = b[i] + s * c[i]     3 arrays x 8 B per element  (reads b, c; writes a)
    copy   a[i] = b[i]                2 arrays x 8 B per element
    gemv   y = A @ x (fp32)           rows x cols x 4 B           (the matrix read once; x and y are noise)

A CPU without non-temporal stores also reads each written line before writing it (write-allocate), so the DRAM
traffic of triad is up to 4/3 and of copy up to 3/2 of the counted bytes; STREAM figures in datasheets and
reviews count the same way, so the numbers compare.

numpy's elementwise ufuncs run on one thread but release the GIL, so the arrays are split into one contiguous
chunk per thread and run from a thread pool. Each chunk is walked in blocks small enough to stay in L2, so the
two ufunc calls of a triad block (``a = s*c`` then ``a += b``) touch DRAM once per array, as a fused loop would.
"""

from __future__ import annotations

import functools
import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from edgefit.units import GB, MIB

_F64 = 8
_F32 = 4
_BLOCK_ELEMENTS = 32 * 1024  # 256 KiB per float64 block: three of them fit in any L2 we target
_MIN_TOTAL_BYTES = 256 * MIB
_LLC_FACTOR = 4  # working set >= 4x the last-level cache
_MAX_TOTAL_BYTES = 2 * 2**30  # beyond 2 GiB nothing changes but the time to allocate
_RAM_FRACTION = 0.25  # never more than a quarter of the RAM available now (a 2 GB Pi stays safe)
_FALLBACK_LLC_BYTES = 32 * MIB


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A probe's figure. ``value`` is the median of ``samples`` (one per timed pass, in ``unit``), the first,
    warm-up pass excluded; ``method`` says what was run and how bytes or FLOPs were counted."""

    value: float
    unit: str  # "bytes_per_s" or "flops_per_s"
    samples: tuple[float, ...]
    method: str
    working_set_bytes: int = 0
    threads: int = 0

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)


# --- sizing --------------------------------------------------------------------------------------------------


def last_level_cache_bytes() -> int | None:
    """Size of the largest cache level from sysfs (Linux) or sysctl (macOS); None when unreadable."""
    best_level, best_size = 0, 0
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = int((index / "level").read_text().strip())
            kind = (index / "type").read_text().strip()
            size = _parse_sysfs_size((index / "size").read_text().strip())
        except (OSError, ValueError):
            continue
        if kind != "Instruction" and (level, size) > (best_level, best_size):
            best_level, best_size = level, size
    if best_size:
        return best_size
    return _sysctl_llc_bytes()


def _parse_sysfs_size(text: str) -> int:
    factors = {"K": 2**10, "M": 2**20, "G": 2**30}
    if text and text[-1] in factors:
        return int(text[:-1]) * factors[text[-1]]
    return int(text)


def _sysctl_llc_bytes() -> int | None:
    import subprocess

    for key in ("hw.l3cachesize", "hw.perflevel0.l2cachesize", "hw.l2cachesize"):
        try:
            out = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=2, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode == 0 and out.stdout.strip().isdigit() and int(out.stdout.strip()) > 0:
            return int(out.stdout.strip())
    return None


MAPPED_PROBE_BYTES = 16 * MIB


def mapped_granules(folder: Path) -> tuple[int, int]:
    """(hot, cold): bytes of resident memory one read through a memory-mapped file costs this process. Hot: the
    file's pages are in the page cache because it was just written or read (a model right after its download or
    build): a page (4-16 KiB) on most kernels, a whole large folio (2 MiB on this VM's ext4 and Linux 6.18) where
    the filesystem caches files in them. Cold: the pages were evicted (after a reboot, under memory pressure) and
    the read faults them in: fault-around, 64 KiB here. onnxruntime maps a model's external data, so each token id
    the embedding Gather reads costs this much. Measured with a 16 MiB file in ``folder``; (0, 0) when it cannot be
    (no /proc RssFile, e.g. macOS; a read-only folder); cold = hot where pages cannot be evicted (no fadvise)."""
    import mmap
    import tempfile

    from edgefit.memory import self_status_bytes

    def touch(f: Any) -> int:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            costs = []
            for offset in (MAPPED_PROBE_BYTES // 3 + 123, 2 * MAPPED_PROBE_BYTES // 3 + 456):
                before = self_status_bytes("RssFile") or 0
                _ = m[offset]
                costs.append((self_status_bytes("RssFile") or 0) - before)
        return int(min(max(max(costs), 0), MAPPED_PROBE_BYTES // 4))

    if self_status_bytes("RssFile") is None:
        return 0, 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as f:
            f.write(os.urandom(MIB) * (MAPPED_PROBE_BYTES // MIB))
            f.flush()
            f.seek(0)
            while f.read(4 * MIB):  # in the page cache, as a model's data is after loading
                pass
            hot = touch(f)
            if not hasattr(os, "posix_fadvise"):
                return hot, hot
            os.fsync(f.fileno())  # clean pages can be dropped
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            cold = touch(f)
    except (OSError, ValueError):
        return 0, 0
    return hot, min(cold, hot)


def working_set_bytes(llc_bytes: int | None = None, available_bytes: int | None = None) -> int:
    """Total bytes of the probe arrays: >= 4x LLC and >= 256 MiB, capped at 2 GiB and at 1/4 of available RAM."""
    llc = llc_bytes if llc_bytes is not None else (last_level_cache_bytes() or _FALLBACK_LLC_BYTES)
    avail = available_bytes if available_bytes is not None else psutil.virtual_memory().available
    want = min(max(_LLC_FACTOR * llc, _MIN_TOTAL_BYTES), _MAX_TOTAL_BYTES)
    return int(max(min(want, _RAM_FRACTION * avail), 16 * MIB))


def default_threads() -> int:
    """Cores this process may run on (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


# --- STREAM-like kernels -------------------------------------------------------------------------------------


class _StreamArrays:
    """Three float64 arrays split into per-thread chunks; pages touched by the thread that will use them."""

    def __init__(self, total_bytes: int, threads: int, pool: ThreadPoolExecutor) -> None:
        n = max(total_bytes // (3 * _F64), threads * _BLOCK_ELEMENTS)
        self.n = n
        self.a = np.empty(n, dtype=np.float64)
        self.b = np.empty(n, dtype=np.float64)
        self.c = np.empty(n, dtype=np.float64)
        edges = np.linspace(0, n, threads + 1).astype(np.int64)
        self.chunks = [(int(lo), int(hi)) for lo, hi in itertools.pairwise(edges)]
        self.pool = pool
        self.run(self._init_chunk)

    def _init_chunk(self, lo: int, hi: int) -> None:
        self.a[lo:hi] = 1.0
        self.b[lo:hi] = 2.0
        self.c[lo:hi] = 0.5

    def run(self, fn: Callable[[int, int], None]) -> float:
        """Run ``fn`` on every chunk in parallel; wall seconds."""
        t0 = time.perf_counter()
        futures = [self.pool.submit(fn, lo, hi) for lo, hi in self.chunks]
        for f in futures:
            f.result()
        return time.perf_counter() - t0

    def triad_chunk(self, lo: int, hi: int) -> None:
        a, b, c = self.a, self.b, self.c
        for s in range(lo, hi, _BLOCK_ELEMENTS):
            e = min(s + _BLOCK_ELEMENTS, hi)
            np.multiply(c[s:e], 3.0, out=a[s:e])
            np.add(a[s:e], b[s:e], out=a[s:e])

    def copy_chunk(self, lo: int, hi: int) -> None:
        np.copyto(self.a[lo:hi], self.b[lo:hi])


def _timed_passes(one_pass: Callable[[], float], bytes_per_pass: float, duration_s: float) -> tuple[float, ...]:
    """Warm-up pass (dropped), then passes until ``duration_s`` is spent, at least 3; bytes/s per pass."""
    one_pass()
    samples: list[float] = []
    deadline = time.perf_counter() + duration_s
    while len(samples) < 3 or time.perf_counter() < deadline:
        samples.append(bytes_per_pass / one_pass())
    return tuple(samples)


def stream_probes(
    duration_s: float = 2.5,
    threads: int | None = None,
    total_bytes: int | None = None,
    kernels: tuple[str, ...] = ("triad", "copy"),
) -> dict[str, ProbeResult]:
    """Run the STREAM-like ``kernels`` on one set of arrays (allocated once), ``duration_s`` split evenly."""
    nthreads = threads or default_threads()
    total = total_bytes or working_set_bytes()
    results: dict[str, ProbeResult] = {}
    with ThreadPoolExecutor(max_workers=nthreads) as pool:
        arrays = _StreamArrays(total, nthreads, pool)
        working = 3 * _F64 * arrays.n
        for kernel in kernels:
            if kernel not in _KERNELS:
                raise ValueError(f"unknown STREAM kernel {kernel!r}")  # programming error
            fn, counted, how = _KERNELS[kernel]
            bytes_per_pass = float(counted * _F64 * arrays.n)
            one_pass = functools.partial(arrays.run, getattr(arrays, fn))
            samples = _timed_passes(one_pass, bytes_per_pass, duration_s / len(kernels))
            method = (
                f"STREAM-like {kernel} ({how}) with numpy, float64, {nthreads} threads on per-thread chunks, "
                f"arrays {working / MIB:.0f} MiB total; counted {counted} x 8 B per element as STREAM does "
                f"(write-allocate not counted); median of {len(samples)} passes after 1 warm-up"
            )
            results[kernel] = ProbeResult(
                value=statistics.median(samples),
                unit="bytes_per_s",
                samples=samples,
                method=method,
                working_set_bytes=working,
                threads=nthreads,
            )
    return results


# kernel -> (method of _StreamArrays, arrays counted per element, what it computes)
_KERNELS: dict[str, tuple[str, int, str]] = {
    "triad": ("triad_chunk", 3, "a = b + 3*c, L2-sized blocks"),
    "copy": ("copy_chunk", 2, "a = b, numpy copyto i.e. memcpy, which may use non-temporal stores"),
}


def stream_bandwidth(
    duration_s: float = 1.5, threads: int | None = None, total_bytes: int | None = None
) -> ProbeResult:
    """STREAM-like triad bandwidth in bytes/s on arrays far larger than the LLC, all cores by default."""
    return stream_probes(duration_s, threads, total_bytes, kernels=("triad",))["triad"]


def copy_bandwidth(duration_s: float = 1.0, threads: int | None = None, total_bytes: int | None = None) -> ProbeResult:
    """STREAM-like copy bandwidth in bytes/s (2 x 8 B counted per element)."""
    return stream_probes(duration_s, threads, total_bytes, kernels=("copy",))["copy"]


# The benchmarker calls quick_bandwidth between measurements: keep its arrays so each call costs only the
# probe itself, not allocating and faulting in hundreds of MiB. release_buffers() gives the memory back.
_QUICK: dict[str, tuple[_StreamArrays, ThreadPoolExecutor]] = {}


def quick_bandwidth(duration_s: float = 0.15, threads: int | None = None, total_bytes: int | None = None) -> float:
    """A short triad probe (bytes/s, median of the passes that fit in ``duration_s``, at least 3) for drift
    normalisation, on the same working set as ``stream_bandwidth`` unless ``total_bytes`` says otherwise.
    The arrays (``working_set_bytes()``: 1.2 GiB on a host with a 300 MiB L3) stay allocated in this process
    and are reused; call it from a process whose peak RSS is not being measured, and ``release_buffers()``
    when done."""
    arrays, _ = _kept_arrays(total_bytes or working_set_bytes(), threads or default_threads())
    samples = _timed_passes(lambda: arrays.run(arrays.triad_chunk), float(3 * _F64 * arrays.n), duration_s)
    return statistics.median(samples)


def _kept_arrays(total_bytes: int, nthreads: int) -> tuple[_StreamArrays, bool]:
    """The kept triad arrays of this size and thread count (any others freed first); True when made just now."""
    key = f"triad-{nthreads}-{total_bytes}"
    made = key not in _QUICK
    if made:
        release_buffers()
        pool = ThreadPoolExecutor(max_workers=nthreads)
        _QUICK[key] = (_StreamArrays(total_bytes, nthreads, pool), pool)
    return _QUICK[key][0], made


def release_buffers() -> None:
    """Free the arrays and threads kept by ``quick_bandwidth``."""
    for _arrays, pool in _QUICK.values():
        pool.shutdown(wait=True)
    _QUICK.clear()


# --- GEMV (read-bound, like batch-1 decode) and GEMM (compute-bound, like prefill) -------------------------


@contextmanager
def _blas_threads(threads: int | None) -> Iterator[str]:
    """Limit BLAS threads when threadpoolctl is installed (optional); yield a description for the method text."""
    if threads is None:
        yield f"BLAS default threads ({_blas_default_description()})"
        return
    try:
        from threadpoolctl import threadpool_limits  # optional, not a dependency
    except ImportError:
        yield f"{threads} threads requested but not enforceable without threadpoolctl; BLAS default used"
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield f"BLAS limited to {threads} threads"


def _blas_default_description() -> str:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            return f"{var}={os.environ[var]}"
    return f"{default_threads()} cores available"


def gemv_bandwidth(duration_s: float = 1.0, threads: int | None = None, total_bytes: int | None = None) -> ProbeResult:
    """Read bandwidth of an fp32 matrix-vector product ``A @ x`` with A far larger than the LLC, in bytes/s
    (rows x cols x 4 B counted per product). Batch-1 decode is this access pattern."""
    total = total_bytes or working_set_bytes()
    cols = 4096
    rows = max(total // (cols * _F32), 256)
    matrix = np.full((rows, cols), 0.001, dtype=np.float32)  # values do not matter for speed (no denormals)
    x = np.random.default_rng(0).standard_normal(cols, dtype=np.float32)
    y = np.empty(rows, dtype=np.float32)

    def one_pass() -> float:
        t0 = time.perf_counter()
        np.matmul(matrix, x, out=y)
        return time.perf_counter() - t0

    with _blas_threads(threads) as how:
        samples = _timed_passes(one_pass, float(rows * cols * _F32), duration_s)
    method = (
        f"fp32 GEMV y = A @ x with numpy matmul, A {rows}x{cols} ({rows * cols * _F32 / MIB:.0f} MiB), {how}; "
        f"counted the matrix bytes once per product; median of {len(samples)} products after 1 warm-up"
    )
    return ProbeResult(
        value=statistics.median(samples),
        unit="bytes_per_s",
        samples=samples,
        method=method,
        working_set_bytes=rows * cols * _F32,
        threads=threads or default_threads(),
    )


def gemm_flops(duration_s: float = 1.5, threads: int | None = None, size: int | None = None) -> ProbeResult:
    """fp32 GEMM throughput in FLOP/s (2 n^3 per n x n product) via numpy matmul (multi-threaded BLAS).

    Without ``size``, n is chosen so one product takes ~1/8 of ``duration_s`` (n in 1024..4096): large enough
    that BLAS reaches its peak, small enough to repeat."""
    rng = np.random.default_rng(1)
    with _blas_threads(threads) as how:
        n = size or _calibrate_gemm_size(duration_s, rng)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)

        def one_pass() -> float:
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            return time.perf_counter() - t0

        samples = _timed_passes(one_pass, 2.0 * n**3, duration_s)
    method = (
        f"fp32 GEMM C = A @ B with numpy matmul, n = {n}, {how}; counted 2 n^3 FLOP per product; "
        f"median of {len(samples)} products after 1 warm-up"
    )
    return ProbeResult(
        value=statistics.median(samples),
        unit="flops_per_s",
        samples=samples,
        method=method,
        working_set_bytes=3 * n * n * _F32,
        threads=threads or default_threads(),
    )


def _calibrate_gemm_size(duration_s: float, rng: np.random.Generator) -> int:
    """n so that one product takes ~duration_s/8 at the best rate seen on three 512^3 products. The best, not
    the median: on a busy machine a multi-threaded BLAS call stalls whenever one of its threads is descheduled
    (measured here: n = 512 products alternating between ~2 and ~200 GFLOP/s), and a size chosen from a stalled
    call would be too small to reach the peak. n >= 1024 keeps those stalls a small part of each product."""
    n = 512
    a = rng.standard_normal((n, n), dtype=np.float32)
    np.matmul(a, a)  # warm BLAS threads
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        np.matmul(a, a)
        best = min(best, time.perf_counter() - t0)
    rate = 2.0 * n**3 / max(best, 1e-6)
    target_s = max(duration_s / 8.0, 0.01)
    n_for_target = (target_s * rate / 2.0) ** (1.0 / 3.0)
    return int(min(max(round(n_for_target / 256) * 256, 1024), 4096))


def describe(result: ProbeResult) -> str:
    """Human one-liner: 'triad 25.3 GB/s (min 24.1, max 26.0, 12 passes)'."""
    scale, unit = {"bytes_per_s": (GB, "GB/s"), "ops_per_s": (1e9, "GOP/s")}.get(result.unit, (1e9, "GFLOP/s"))
    return (
        f"{result.value / scale:.1f} {unit} (min {result.min / scale:.1f}, max {result.max / scale:.1f}, "
        f"{len(result.samples)} passes)"
    )


def triad_pass(total_bytes: int, threads: int | None = None) -> float:
    """One STREAM-like triad pass (bytes/s) over arrays kept between calls (``quick_bandwidth``'s): the kernel
    calibration takes one per round, interleaved with its chains, and uses the same quantile over rounds."""
    arrays, made = _kept_arrays(total_bytes, threads or default_threads())
    if made:
        arrays.run(arrays.triad_chunk)  # first touch
    return float(3 * _F64 * arrays.n) / arrays.run(arrays.triad_chunk)


def int8_gemm_ops(duration_s: float = 0.5, threads: int | None = None) -> ProbeResult:
    """Integer dot-product throughput in ops/s (2 per MAC) of onnxruntime's MatMulNBits 8-bit kernel at accuracy
    level 4 (int8 x int8 dot products: AVX2/AVX-512 VNNI/AMX on x86, NEON sdot/i8mm on Arm), M = 128 rows against
    two 1024 x 1024 weights chained, the same kernel class the kernel table's int8 references use."""
    import onnxruntime as ort

    from edgefit.kernels.graphs import build_kernel
    from edgefit.kernels.spec import KernelSpec

    spec = KernelSpec("linear", 2, precision="int8", m=128, k=1024, n=1024)
    model, feeds = build_kernel(spec)
    opts = ort.SessionOptions()
    nthreads = threads or default_threads()
    opts.intra_op_num_threads = nthreads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ops = 2.0 * spec.m * spec.k * spec.n * spec.nodes

    def one_pass() -> float:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        return time.perf_counter() - t0

    samples = _timed_passes(one_pass, ops, duration_s)
    return ProbeResult(
        value=max(samples),  # interference only adds time: the fastest pass is the kernel's rate
        unit="ops_per_s",
        samples=samples,
        method=(
            f"onnxruntime {ort.__version__} MatMulNBits bits=8 block 32 accuracy_level 4, M=128, two 1024x1024 "
            f"weights chained, {nthreads} threads; 2 ops per MAC; fastest of {len(samples)} runs after 1 warm-up"
        ),
        working_set_bytes=2 * 1024 * 1024,
        threads=nthreads,
    )
