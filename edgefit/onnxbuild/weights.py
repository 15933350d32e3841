"""Seeded random weights, MatMulNBits block quantization, and the streaming external-data writer.

Every tensor gets its own generator seeded from (seed, crc32(name)), so a truncated model (``layers=N``) holds
exactly the first N layers of the full one and a tensor never depends on the order it was built in.

Quantization (com.microsoft MatMulNBits, symmetric, no zero points)::

    W [K, N] fp32 (as MatMul's B)  ->  W.T [N, K]  ->  blocks of ``block`` along K (K padded with zeros)
    scale[n, b] = max|block| / qmax            (qmax = 7 for 4 bits, 127 for 8 bits; 0-blocks get scale 1)
    q = clip(round(w / scale), -qmax, qmax) + 2^(bits-1)   stored unsigned (the op's default zero point)
    4 bits: two per byte, even k in the low nibble.   B: uint8 [N, n_blocks, block*bits/8]; scales fp32 [N, n_blocks]

Dequantized: w = (q - 2^(bits-1)) * scale, which is what onnxruntime computes and what the tests check.
"""

from __future__ import annotations

import zlib
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
# External-data offsets are aligned so every tensor starts on a cache line (64 B).
_ALIGN_BYTES = 64

Array = NDArray[np.float32]


def tensor_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def random_matrix(seed: int, name: str, shape: tuple[int, ...]) -> Array:
    """Uniform(-a, a) float32 with std ``INIT_STD``, generated in place (one float32 copy of the tensor)."""
    out = tensor_rng(seed, name).random(shape, dtype=np.float32)
    out -= np.float32(0.5)
    out *= np.float32(2 * _UNIFORM_HALF_WIDTH)
    return out


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
    qmax = (1 << (bits - 1)) - 1
    scales = np.abs(blocks).max(axis=2)
    scales /= np.float32(qmax)
    scales[scales == 0] = np.float32(1.0)
    q = blocks / scales[:, :, None]
    np.rint(q, out=q)
    np.clip(q, -qmax, qmax, out=q)
    q += np.float32(1 << (bits - 1))
    qu = q.astype(np.uint8)
    if bits == 8:
        return qu, scales.astype(np.float32, copy=False)
    if bits == 4:
        packed = qu[:, :, 0::2] | (qu[:, :, 1::2] << 4)
        return packed.astype(np.uint8, copy=False), scales.astype(np.float32, copy=False)
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

    Only one tensor (plus bounded quantization temporaries) is ever in memory: that is what keeps peak build
    memory near the largest tensor, whatever the model size. ``weight_bytes`` sums the tensors' own lengths
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
        self, name: str, w: Array, *, transposed: bool, bits: int, block_size: int, count_elements: bool = True
    ) -> tuple[TensorProto, TensorProto, QuantLayout]:
        """Quantize and write one matrix. ``w`` is W [K, N] (``transposed=False``) or already W.T [N, K]
        (the embedding matrix used as a tied LM head). Writes B, then its scales."""
        wt = w if transposed else w.T
        n, k = wt.shape
        layout = QuantLayout(k=k, n=n, bits=bits, block_size=block_size)
        rows_per_chunk = max(1, _QUANT_CHUNK_ELEMENTS // max(k, 1))
        scales = np.empty((n, layout.n_blocks), dtype=np.float32)
        self._align()
        start = self._offset
        for r0 in range(0, n, rows_per_chunk):
            r1 = min(n, r0 + rows_per_chunk)
            packed, chunk_scales = quantize_rows(np.ascontiguousarray(wt[r0:r1]), bits, block_size)
            self._file.write(packed.data.cast("B"))
            scales[r0:r1] = chunk_scales
        self._offset += layout.qweight_bytes
        self.weight_bytes += layout.qweight_bytes
        if count_elements:
            self.weight_elements += n * k
        q_proto = self._proto(
            f"{name}.qweight", (n, layout.n_blocks, layout.blob_bytes), TensorProto.UINT8, start, layout.qweight_bytes
        )
        s_proto = self.add_array(f"{name}.scales", scales, TensorProto.FLOAT, elements=0)
        return q_proto, s_proto, layout


def data_path_for(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".data")
