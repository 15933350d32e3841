"""Embedding rows read through onnxruntime's mapping of a model's external data cost a mapped-file granule each
(a page, or a 2 MiB large folio on kernels that cache files in them): the probe, the formula, and a real Gather
on a 64 MiB table whose RSS growth the formula must predict."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from edgefit import catalog, probes
from edgefit.predict import accounting
from edgefit.predict.memfit import memory_terms, prior_memory


def _spec(**kw: object) -> catalog.ModelSpec:
    return dataclasses.replace(catalog.load_spec("qwen2.5-0.5b"), **kw)


def test_the_formula_by_hand() -> None:
    spec = _spec(tied_embeddings=False, vocab_size=16384, hidden_size=1024)  # a 64 MiB fp32 table, 4 KiB rows
    table = 16384 * 1024 * 4
    f = accounting.mapped_embedding_bytes
    assert f(spec, "int4", tokens=64, granule_bytes=0) == 0  # granule unknown: nothing added
    assert f(spec, "int4", tokens=0, granule_bytes=2**21) == 0
    # 16 ids, 2 MiB blocks: E (1 - exp(-16 * 2 MiB / 64 MiB))
    assert f(spec, "int4", tokens=16, granule_bytes=2**21) == int(table * (1 - math.exp(-0.5)))
    # a granule smaller than a row: each id costs its row
    assert f(spec, "int4", tokens=10, granule_bytes=512) == pytest.approx(10 * 4096, rel=0.01)
    # never more than the table, ids beyond the vocabulary count once
    assert f(spec, "int4", tokens=10**9, granule_bytes=2**21) <= table
    # a tied float LM head holds the whole table already (known_resident_bytes); GGUF maps its whole file
    tied = _spec(tied_embeddings=True, vocab_size=16384, hidden_size=1024)
    assert f(tied, "fp32", tokens=64, granule_bytes=2**21) == 0
    assert f(tied, "int4", tokens=64, granule_bytes=2**21) > 0
    assert f(spec, "q4_k_m", tokens=64, granule_bytes=2**21) == 0


def test_the_peak_counts_mapped_rows_with_the_runs_not_with_the_load_transient() -> None:
    spec = _spec(tied_embeddings=False)
    mc = prior_memory("int4", 60 * 2**20, (2**21, 2**16))
    t = memory_terms(spec, mc, "int4", context_tokens=512, prompt_tokens=64)
    run = t.activations_bytes + t.kv_cache_bytes + t.mapped_embedding_bytes
    assert t.mapped_embedding_bytes > t.mapped_cold_bytes > 0  # counted: the cached state; the dropped one kept
    f = accounting.mapped_embedding_bytes
    hot, cold = (f(spec, "int4", tokens=512, granule_bytes=g) for g in (2**21, 2**16))
    assert (t.mapped_embedding_bytes, t.mapped_cold_bytes) == (hot, cold)
    assert t.total_bytes == t.weights_bytes + t.runtime_bytes + max(run, t.load_transient_bytes)
    away = memory_terms(spec, mc, "int4", context_tokens=512, prompt_tokens=64, on_host=False)
    assert away.mapped_embedding_bytes == 0  # another device's kernel: its granule is not known here
    # the ladder's benchmark fills deep caches with noise: only the prompt's ids went through the embedding
    short = memory_terms(spec, mc, "int4", context_tokens=512, prompt_tokens=64, embedded_tokens=64)
    assert 0 < short.mapped_embedding_bytes < t.mapped_embedding_bytes


def test_the_prediction_counts_the_cached_state_and_its_interval_reaches_the_dropped_one() -> None:
    from edgefit.pipeline import calibration_from_table
    from edgefit.predict import predict, synthetic

    table = synthetic.kernel_table()
    cal = calibration_from_table(table)
    cached = calibration_from_table(
        dataclasses.replace(table, host=dataclasses.replace(table.host, mapped_granule_bytes=2**21,
                                                            mapped_cold_granule_bytes=2**16))
    )  # fmt: skip
    spec = _spec(tied_embeddings=False)
    host = synthetic.device(table.host.host_id)
    base = predict(spec, "int4", host, cal, context_tokens=1024, prompt_tokens=64).memory.total
    p = predict(spec, "int4", host, cached, context_tokens=1024, prompt_tokens=64)
    mem = p.memory.total
    assert mem.value > base.value and mem.high - mem.value == pytest.approx(mem.value / base.value * (base.high -
                                                                                 base.value), rel=1e-6)  # fmt: skip
    # the interval reaches down to the dropped state (the same prediction with 64 KiB per id)
    cold = accounting.mapped_embedding_bytes(spec, "int4", tokens=1024, granule_bytes=2**16)
    assert mem.low <= base.value + cold < mem.value
    assert any("pages are cached" in n for n in p.notes)
    pi = predict(spec, "int4", synthetic.device("raspberry-pi-5-8gb"), cached, context_tokens=1024, prompt_tokens=64)
    assert not any("pages are cached" in n for n in pi.notes)  # another device: the term is left out


_GATHER = """
import sys, numpy as np, onnx, onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
path, n, evict = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
vocab, hidden = 16384, 1024
table = numpy_helper.from_array(np.random.default_rng(0).random((vocab, hidden), dtype=np.float32), "emb")
g = helper.make_graph([helper.make_node("Gather", ["emb", "ids"], ["y"])], "g",
                      [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "s"])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "s", hidden])], [table])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.save_model(m, path, save_as_external_data=True, location=path.rsplit("/", 1)[-1] + ".data")
import os
if evict:  # drop the file's pages from the page cache, as a reboot or memory pressure does
    fd = os.open(path + ".data", os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
from edgefit.bench.runner import session_options
def rss_file():
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1]) * 1024
s = ort.InferenceSession(path, session_options(1), providers=["CPUExecutionProvider"])
ids = np.random.default_rng(1).choice(vocab, size=n, replace=False).reshape(1, n).astype(np.int64)
before = rss_file()
s.run(None, {"ids": ids})
print(rss_file() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RssFile is Linux's")
def test_a_real_gather_grows_rss_as_the_formula_says(tmp_path: Path) -> None:
    """Cached pages (the file was just written): the hot granule's formula; dropped pages: between the two."""
    hot, cold = probes.mapped_granules(tmp_path)
    if hot <= 0:
        pytest.skip("the mapped-file granule cannot be measured here")
    assert hot % 4096 == 0 and 0 < cold <= hot
    spec = _spec(tied_embeddings=False, vocab_size=16384, hidden_size=1024)
    f = accounting.mapped_embedding_bytes
    for n, evict in ((8, False), (32, False), (32, True)):
        path = tmp_path / f"g{n}{'e' * evict}.onnx"
        out = subprocess.run([sys.executable, "-c", _GATHER, str(path), str(n), str(int(evict))],
                             capture_output=True, text=True, check=True, cwd=tmp_path)  # fmt: skip
        grown = int(out.stdout.split()[-1])
        want_hot, want_cold = (
            f(spec, "int4", tokens=n, granule_bytes=hot),
            f(spec, "int4", tokens=n, granule_bytes=cold),
        )
        if evict:
            assert want_cold * 0.9 <= grown <= want_hot, (n, hot, cold, grown)
        else:  # random ids: the formula is the expectation
            assert grown == pytest.approx(want_hot, rel=0.35, abs=256 * 1024), (n, hot, grown, want_hot)
