"""Seeded random weights, MatMulNBits block quantization, and the streaming external-data writer.

Random matrices are defined in *granules* of 32 consecutive inputs: for MatMul's B = W [K, N] (in x out), granule
m = b * N + n holds W[32b : 32b+32, n], the block MatMulNBits quantizes together. Values are generated as
G[j, m] = W[32b + j, n] in chunks of ``CHUNK_GRANULES`` granules, each chunk from its own generator seeded
(seed, crc32(name), chunk index), so chunks can be made in any order, in parallel, and one at a time::

    G chunk [32, m] --max over rows--> block scales [m]       (row-wise maxima: vectorised, unlike numpy's
                    --scale, round, pack--> uint8 [32|16, m]   slow reductions over 32-element rows)
                    --transpose--> B rows [m, blob] --scatter--> B [N, n_blocks, blob] (bytes, held whole)
    float builds:   G chunk [32, m] --row segments--> W[32b : 32b+32, n0:n1] of MatMul's B [K, N]

fp32 and int8/int4 models of one seed hold the same weights, quantized. Quantized builds of these matrices never
hold the float tensor (only its quantized bytes, 1/8 to 1/4 of its size); float builds hold it once plus a few
4 MiB chunks. Matrices with K not a multiple of 32, and the embedding ([vocab, hidden], read by a Gather; also
the tied LM head), are generated row-major from a single stream instead, and held whole in float32.
A tensor's values never depend on build order, so a truncated model (``layers=N``) holds exactly the first N
layers of the full one.

Quantization (com.microsoft MatMulNBits, symmetric, no zero points)::

    W.T [N, K] fp32  ->  blocks of ``block`` along K (K padded with zeros; block 32 = one granule)
    scale[n, b] = max|block| / qmax            (qmax = 7 for 4 bits, 127 for 8 bits; 0-blocks get scale 1)
    q = round(w / scale) + 2^(bits-1) in [1, 2*qmax + 1]   stored unsigned (the op's default zero point)
    4 bits: two per byte, even k in the low nibble.   B: uint8 [N, n_blocks, block*bits/8]; scales fp32 [N, n_blocks]

Dequantized: w = (q - 2^(bits-1)) * scale, which is what onnxruntime computes and what the tests check.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray
from onnx import TensorProto

# std of the random init: 0.02 like GPT-2 / Llama initializer_range. Uniform in [-a, a] has std a/sqrt(3);
# uniform is generated ~2.5x faster than normal here, which matters for a 60 s ladder build budget.
INIT_STD = 0.02
_UNIFORM_HALF_WIDTH = INIT_STD * 3**0.5
# Norm weights are 1 +- 0.1 rather than exactly 1, so a test against the numpy reference would notice two norm
# weights swapped or the wrong one wired in (with all-ones norms such a bug is invisible).
NORM_JITTER = 0.1
# Rows of W.T quantized at once: bounds the float temporaries of quantization to a few tens of MB.
_QUANT_CHUNK_ELEMENTS = 8 * 2**20
GRANULE = 32
# 32 x 32768 float32 = 4 MiB per chunk: large enough to amortise numpy's per-call overhead, small enough to
# stay in cache through the four passes of quantization.
CHUNK_GRANULES = 32768
# numpy releases the GIL in the generator and ufunc loops: two threads quantize two chunks at once.
_THREADS = max(1, min(2, os.cpu_count() or 1))
# External-data offsets are aligned so every tensor starts on a cache line (64 B).
_ALIGN_BYTES = 64

Array = NDArray[np.float32]


def tensor_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64DXSM([seed, zlib.crc32(name.encode())]))


def random_vector(seed: int, name: str, shape: tuple[int, ...]) -> Array:
    """Uniform(-a, a) float32 with std ``INIT_STD`` from one stream, row-major (biases, the K % 32 != 0 case)."""
    out = tensor_rng(seed, name).random(shape, dtype=np.float32)
    out -= np.float32(0.5)
    out *= np.float32(2 * _UNIFORM_HALF_WIDTH)
    return out


@dataclass(frozen=True, slots=True)
class RandomMatrix:
    """The seeded random weight of a MatMul with K inputs and N outputs; values are made on demand.
    ``row_major``: generated as W.T [n, k] from one stream (the embedding, and its tied LM head)."""

    seed: int
    name: str
    n: int
    k: int
    row_major: bool = False

    @property
    def granular(self) -> bool:
        return self.k % GRANULE == 0 and not self.row_major

    @property
    def n_granules(self) -> int:
        return self.n * self.k // GRANULE

    @property
    def n_chunks(self) -> int:
        return -(-self.n_granules // CHUNK_GRANULES)

    def chunk(self, index: int) -> Array:
        """G[:, m0:m1] for chunk ``index``: [32, m] float32."""
        m0 = index * CHUNK_GRANULES
        m = min(CHUNK_GRANULES, self.n_granules - m0)
        rng = np.random.Generator(np.random.PCG64DXSM([self.seed, zlib.crc32(self.name.encode()), index]))
        out = rng.random((GRANULE, m), dtype=np.float32)
        out -= np.float32(0.5)
        out *= np.float32(2 * _UNIFORM_HALF_WIDTH)
        return out

    def matmul_b(self) -> Array:
        """W [k, n] float32, MatMul's B, assembled chunk by chunk: W[32b + j, n] = G[j, b*n + n]."""
        if not self.granular:
            return np.ascontiguousarray(self.transposed().T)
        w = np.empty((self.k, self.n), dtype=np.float32)
        w3 = w.reshape(self.k // GRANULE, GRANULE, self.n)

        def fill(i: int) -> None:
            c = self.chunk(i)
            m0 = i * CHUNK_GRANULES
            m, m1 = m0, m0 + c.shape[1]
            while m < m1:  # a chunk spans one or more runs of granules with the same b
                b, n0 = divmod(m, self.n)
                take = min(self.n - n0, m1 - m)
                w3[b, :, n0 : n0 + take] = c[:, m - m0 : m - m0 + take]
                m += take

        in_parallel(fill, self.n_chunks)  # chunks fill disjoint parts of w
        return w

    def transposed(self) -> Array:
        """W.T [n, k] float32 (the embedding's own layout; MatMulNBits' row order)."""
        if not self.granular:
            return random_vector(self.seed, self.name, (self.n, self.k))
        return np.ascontiguousarray(self.matmul_b().T)


def in_parallel(fn: Callable[[int], None], count: int) -> None:
    """fn(0) .. fn(count - 1) on ``_THREADS`` threads (numpy releases the GIL in its loops); errors propagate."""
    if count == 1 or _THREADS == 1:
        for i in range(count):
            fn(i)
        return
    with ThreadPoolExecutor(_THREADS) as pool:
        list(pool.map(fn, range(count)))


def quantize_granules(g: Array, bits: int) -> tuple[NDArray[np.uint8], Array]:
    """One chunk G [32, m] with block size 32 -> (B rows [m, 32*bits/8] uint8, scales [m] float32)."""
    qmax = np.float32((1 << (bits - 1)) - 1)
    amax = np.maximum(g.max(axis=0), -g.min(axis=0))
    amax[amax == 0] = np.float32(1.0)
    q = g * (qmax / amax)  # |q| <= qmax: no clip needed
    q += np.float32((1 << (bits - 1)) + 0.5)  # zero point + 0.5, then truncation (all positive) = rounding
    qu = q.astype(np.uint8)
    if bits == 4:
        qu = qu[0::2] | (qu[1::2] << 4)
    return np.ascontiguousarray(qu.T), amax / qmax


def random_norm(seed: int, name: str, size: int) -> Array:
    out = tensor_rng(seed, name).random(size, dtype=np.float32)
    out -= np.float32(0.5)
    out *= np.float32(2 * NORM_JITTER)
    out += np.float32(1.0)
    return out


@dataclass(frozen=True, slots=True)
class QuantLayout:
    """Shapes of one MatMulNBits weight: B [n, n_blocks, blob_bytes] uint8, scales [n, n_blocks] float32."""

    k: int
    n: int
    bits: int
    block_size: int

    @property
    def n_blocks(self) -> int:
        return -(-self.k // self.block_size)

    @property
    def blob_bytes(self) -> int:
        return self.block_size * self.bits // 8

    @property
    def qweight_bytes(self) -> int:
        return self.n * self.n_blocks * self.blob_bytes

    @property
    def scales_bytes(self) -> int:
        return self.n * self.n_blocks * 4


def quantize_rows(wt: Array, bits: int, block_size: int) -> tuple[NDArray[np.uint8], Array]:
    """Quantize rows of W.T ([rows, K] float32) into (packed [rows, n_blocks, blob], scales [rows, n_blocks])."""
    rows, k = wt.shape
    n_blocks = -(-k // block_size)
    if n_blocks * block_size != k:
        padded = np.zeros((rows, n_blocks * block_size), dtype=np.float32)
        padded[:, :k] = wt
        wt = padded
    blocks = wt.reshape(rows, n_blocks, block_size)
    qmax = np.float32((1 << (bits - 1)) - 1)
    amax = np.maximum(blocks.max(axis=2), -blocks.min(axis=2))  # max|w| without an |w| temporary
    amax[amax == 0] = np.float32(1.0)
    # |w| * qmax / amax <= qmax, so no clip is needed; adding zero_point + 0.5 then truncating (all values are
    # positive) rounds to nearest: one float temporary for the whole quantization.
    q = blocks * (qmax / amax)[:, :, None]
    q += np.float32((1 << (bits - 1)) + 0.5)
    qu = q.astype(np.uint8)
    del q
    scales = amax / qmax
    if bits == 8:
        return qu, scales
    if bits == 4:
        return (qu[:, :, 0::2] | (qu[:, :, 1::2] << 4)).astype(np.uint8, copy=False), scales
    raise ValueError(f"bits must be 4 or 8, got {bits}")  # programming error: callers pass 4 or 8


def dequantize(packed: NDArray[np.uint8], scales: Array, k: int, bits: int, block_size: int) -> Array:
    """Inverse of ``quantize_rows`` for a whole tensor: returns W [K, N] float32 as MatMul's B."""
    n = packed.shape[0]
    n_blocks = -(-k // block_size)
    p = packed.reshape(n, n_blocks, -1)
    if bits == 4:
        q = np.empty((n, n_blocks, block_size), dtype=np.uint8)
        q[:, :, 0::2] = p & 0x0F
        q[:, :, 1::2] = p >> 4
    else:
        q = p
    w = (q.astype(np.float32) - np.float32(1 << (bits - 1))) * scales.reshape(n, n_blocks)[:, :, None]
    return np.ascontiguousarray(w.reshape(n, n_blocks * block_size)[:, :k].T)


class ExternalDataWriter:
    """Appends tensors to one ``.onnx.data`` file and returns TensorProtos that point into it.

    One tensor at a time is in memory (see the module docstring for how much of it): that is what keeps peak
    build memory near the largest tensor, whatever the model size. ``weight_bytes`` sums the tensors' own lengths
    (alignment padding excluded): the figure ``catalog.weight_bytes`` accounts for.
    """

    def __init__(self, file: BinaryIO, location: str) -> None:
        self._file = file
        self._location = location
        self._offset = 0
        self.weight_bytes = 0
        self.weight_elements = 0

    def _align(self) -> None:
        pad = -self._offset % _ALIGN_BYTES
        if pad:
            self._file.write(b"\0" * pad)
            self._offset += pad

    def _proto(self, name: str, dims: tuple[int, ...], data_type: int, offset: int, length: int) -> TensorProto:
        t = TensorProto()
        t.name = name
        t.dims.extend(dims)
        t.data_type = data_type
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self._location), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key = key
            entry.value = value
        return t

    def add_array(
        self, name: str, array: NDArray[np.generic], data_type: int, *, elements: int | None = None
    ) -> TensorProto:
        """Write a contiguous array as-is. ``elements``: logical parameters it holds (default: its size)."""
        self._align()
        start = self._offset
        contiguous = np.ascontiguousarray(array)
        self._file.write(contiguous.data.cast("B"))
        length = contiguous.nbytes
        self._offset += length
        self.weight_bytes += length
        self.weight_elements += contiguous.size if elements is None else elements
        return self._proto(name, tuple(array.shape), data_type, start, length)

    def add_quantized(
        self, name: str, src: RandomMatrix, *, bits: int, block_size: int, count_elements: bool = True
    ) -> tuple[TensorProto, TensorProto, QuantLayout]:
        """Quantize and write the random matrix ``src`` (W.T [N, K]) as MatMulNBits B, then its scales."""
        n, k = src.n, src.k
        layout = QuantLayout(k=k, n=n, bits=bits, block_size=block_size)
        self._align()
        start = self._offset
        if src.granular and block_size == GRANULE:
            scales = self._write_granules(src, layout)
        else:
            scales = self._write_rows(src.transposed(), layout)
        self._offset += layout.qweight_bytes
        self.weight_bytes += layout.qweight_bytes
        if count_elements:
            self.weight_elements += n * k
        q_proto = self._proto(
            f"{name}.qweight", (n, layout.n_blocks, layout.blob_bytes), TensorProto.UINT8, start, layout.qweight_bytes
        )
        s_proto = self.add_array(f"{name}.scales", scales, TensorProto.FLOAT, elements=0)
        return q_proto, s_proto, layout

    def _write_granules(self, src: RandomMatrix, layout: QuantLayout) -> Array:
        """Quantize chunk by chunk (two threads), scatter into B [n, n_blocks, blob] in memory, write B."""
        nb = layout.n_blocks
        qweight = np.empty((layout.n * nb, layout.blob_bytes), dtype=np.uint8)
        scales = np.empty(layout.n * nb, dtype=np.float32)

        def work(index: int) -> None:
            packed, chunk_scales = quantize_granules(src.chunk(index), layout.bits)
            m = np.arange(index * CHUNK_GRANULES, index * CHUNK_GRANULES + packed.shape[0])
            row = (m % layout.n) * nb + m // layout.n  # granule (b, n) -> B row n * n_blocks + b
            qweight[row] = packed
            scales[row] = chunk_scales

        in_parallel(work, src.n_chunks)  # chunks write disjoint rows
        self._file.write(qweight.data.cast("B"))
        return scales.reshape(layout.n, nb)

    def _write_rows(self, wt: Array, layout: QuantLayout) -> Array:
        """Quantize W.T [n, k] row chunk by row chunk (the row-major embedding as tied LM head, odd K, block != 32).
        With block 32 and K % 32 == 0 a chunk's blocks are turned into granules (a 4 MiB in-cache transpose) to use
        the vectorised ``quantize_granules``: ~1.5x faster than ``quantize_rows``' short reductions."""
        granules = layout.block_size == GRANULE and layout.k % GRANULE == 0
        target = CHUNK_GRANULES * GRANULE if granules else _QUANT_CHUNK_ELEMENTS
        rows_per_chunk = max(1, target // max(layout.k, 1))
        scales = np.empty((layout.n, layout.n_blocks), dtype=np.float32)
        for r0 in range(0, layout.n, rows_per_chunk):
            r1 = min(layout.n, r0 + rows_per_chunk)
            if granules:
                g = np.ascontiguousarray(wt[r0:r1].reshape(-1, GRANULE).T)
                packed, flat_scales = quantize_granules(g, layout.bits)
                chunk_scales = flat_scales.reshape(r1 - r0, layout.n_blocks)
            else:
                packed, chunk_scales = quantize_rows(wt[r0:r1], layout.bits, layout.block_size)
            self._file.write(packed.data.cast("B"))
            scales[r0:r1] = chunk_scales
        return scales


def data_path_for(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".data")
