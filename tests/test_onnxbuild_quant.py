"""Quantization and random-weight invariants of the builder (property tests, no onnxruntime)."""

from __future__ import annotations

import io

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefit.onnxbuild.weights import (
    CHUNK_GRANULES,
    GRANULE,
    ExternalDataWriter,
    QuantLayout,
    RandomMatrix,
    dequantize,
    quantize_granules,
    quantize_rows,
)

shapes = st.tuples(st.integers(1, 40), st.integers(1, 9).map(lambda b: b * GRANULE))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, bits=st.sampled_from([4, 8]), seed=st.integers(0, 2**31))
def test_granule_and_row_quantization_agree_bit_for_bit(shape: tuple[int, int], bits: int, seed: int) -> None:
    """The fast path (blocks as columns) and the general one (blocks as rows) are the same quantizer."""
    n, k = shape
    wt = np.random.default_rng(seed).standard_normal((n, k)).astype(np.float32)
    wt[0, :GRANULE] = 0.0  # an all-zero block: scale 1, codes at the zero point
    packed_rows, scales_rows = quantize_rows(wt, bits, GRANULE)
    packed_g, scales_g = quantize_granules(np.ascontiguousarray(wt.reshape(-1, GRANULE).T), bits)
    assert np.array_equal(packed_rows.reshape(-1, GRANULE * bits // 8), packed_g)
    assert np.array_equal(scales_rows.ravel(), scales_g)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 24),
    k=st.integers(1, 200),
    bits=st.sampled_from([4, 8]),
    block=st.sampled_from([16, 32, 64, 128]),
    seed=st.integers(0, 2**31),
)
def test_dequantized_within_half_a_step(n: int, k: int, bits: int, block: int, seed: int) -> None:
    wt = (np.random.default_rng(seed).random((n, k), dtype=np.float32) - 0.5) * 0.1
    packed, scales = quantize_rows(wt, bits, block)
    layout = QuantLayout(k=k, n=n, bits=bits, block_size=block)
    assert packed.nbytes == layout.qweight_bytes and scales.nbytes == layout.scales_bytes
    w = dequantize(packed, scales, k, bits, block)  # [k, n], MatMul's B
    assert w.shape == (k, n)
    step = np.repeat(scales, block, axis=1)[:, :k].T  # per-weight quantization step, [k, n]
    assert np.all(np.abs(w - wt.T) <= step / 2 * 1.0001 + 1e-12)
    # scale = max|block| / qmax (zero-padded K included), so each block's largest |w| sits exactly at +-qmax steps
    qmax = (1 << (bits - 1)) - 1
    nb = -(-k // block)
    padded = np.zeros((n, nb * block), np.float32)
    padded[:, :k] = wt
    amax = np.abs(padded.reshape(n, nb, block)).max(axis=2)
    assert np.allclose(scales, np.where(amax == 0, 1.0, amax / qmax), rtol=1e-6)
    assert np.allclose(np.abs(w).max(), np.abs(wt).max(), rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3000), kb=st.integers(1, 40), seed=st.integers(0, 1000))
def test_random_matrix_layouts_are_one_matrix(n: int, kb: int, seed: int) -> None:
    k = kb * GRANULE
    src = RandomMatrix(seed, "layers.0.mlp.up_proj.weight", n, k)
    w = src.matmul_b()
    assert w.shape == (k, n) and w.dtype == np.float32
    assert np.array_equal(src.transposed(), w.T)
    assert np.array_equal(src.matmul_b(), w)  # deterministic, whatever the thread interleaving
    # granule m = b * n + i holds W[32b : 32b+32, i]: check through the chunks directly
    g = np.concatenate([src.chunk(c) for c in range(src.n_chunks)], axis=1)
    assert np.array_equal(g, w.reshape(kb, GRANULE, n).transpose(1, 0, 2).reshape(GRANULE, kb * n))
    assert abs(float(w.std()) - 0.02) < 0.004 or w.size < 2000  # std of the init (uniform, 0.02)


def test_chunks_span_rows_and_many_chunks() -> None:
    """3 chunks whose boundaries fall inside runs of W's rows: the threaded, scattered fast path writes the
    same B and scales as quantizing W.T row by row."""
    n, k = 1000, 66 * GRANULE
    src = RandomMatrix(3, "x", n, k)
    assert src.n_chunks == 3 and CHUNK_GRANULES % n != 0
    fast_buf, slow_buf = io.BytesIO(), io.BytesIO()
    _, scales_proto, layout = ExternalDataWriter(fast_buf, "x.data").add_quantized("x", src, bits=4, block_size=32)
    slow_scales = ExternalDataWriter(slow_buf, "x.data")._write_rows(src.transposed(), layout)
    assert fast_buf.getvalue()[: layout.qweight_bytes] == slow_buf.getvalue()
    offset = int({e.key: e.value for e in scales_proto.external_data}["offset"])
    assert fast_buf.getvalue()[offset:] == slow_scales.tobytes()


def test_external_offsets_are_aligned_and_lengths_exact() -> None:
    buf = io.BytesIO()
    writer = ExternalDataWriter(buf, "m.onnx.data")
    protos = [
        writer.add_array("a", np.ones(3, np.float32), onnx.TensorProto.FLOAT),
        writer.add_array("b", np.ones((5, 7), np.float16), onnx.TensorProto.FLOAT16),
        *writer.add_quantized("c", RandomMatrix(0, "c", 3, 64), bits=4, block_size=32)[:2],
    ]
    for t in protos:
        meta = {e.key: e.value for e in t.external_data}
        assert meta["location"] == "m.onnx.data" and int(meta["offset"]) % 64 == 0
    lengths = [int({e.key: e.value for e in t.external_data}["length"]) for t in protos]
    assert lengths == [12, 70, 3 * 2 * 16, 3 * 2 * 4]
    assert writer.weight_bytes == sum(lengths) and writer.weight_elements == 3 + 35 + 3 * 64
