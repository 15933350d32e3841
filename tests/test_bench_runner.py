"""OrtRunner on the builder's real decoder: the KV cache it prepares for a decode depth is the cache of a real
prompt (a slice of one deeper prefill is exact for a causal decoder), and the synthetic fill has the same shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgefit.bench.feeds import FeedSpec, synthesize
from edgefit.bench.measurement import Phase
from edgefit.bench.modelfile import inspect_model_file
from edgefit.bench.runner import OrtRunner, session_options
from edgefit.catalog import ModelSpec
from edgefit.onnxbuild import build_model

SPEC = ModelSpec(id="r", name="r", family="ladder", hidden_size=64, num_layers=2, num_heads=4,
                 num_kv_heads=2, head_dim=16, intermediate_size=128, vocab_size=400, tied_embeddings=False,
                 max_context=512)  # fmt: skip


@pytest.fixture(scope="module")
def decoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(SPEC, "fp32", out=tmp_path_factory.mktemp("m") / "r.onnx").path


def test_sliced_cache_equals_a_real_prompt_of_that_depth(decoder: Path) -> None:
    info = inspect_model_file(decoder)
    runner = OrtRunner(decoder, info, threads=1, kv_fill_tokens=48)
    runner.load()
    runner.prepare(Phase.DECODE, 1, 16)  # fills 48 tokens once, keeps the first 16 positions
    feeds = dict(runner._feeds)
    sess = ort.InferenceSession(str(decoder), sess_options=session_options(1), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    decoded = dict(zip(names, sess.run(None, feeds), strict=True))["logits"][0, -1]

    # Reference: one prompt of the same 16 tokens followed by the decoded token, no cache.
    first48 = synthesize(info, FeedSpec(), seq=48, past=0)["input_ids"][0]
    tokens = np.concatenate([first48[:16], feeds["input_ids"][0]])[None, :]
    full = synthesize(info, FeedSpec(), seq=17, past=0)
    full["input_ids"] = tokens
    reference = dict(zip(names, sess.run(None, full), strict=True))["logits"][0, -1]
    np.testing.assert_allclose(decoded, reference, rtol=1e-4, atol=1e-4)


def test_synthetic_fill_has_the_prefill_shapes(decoder: Path) -> None:
    info = inspect_model_file(decoder)
    shapes = {}
    for fill in ("prefill", "synthetic"):
        r = OrtRunner(decoder, info, threads=1, kv_fill_tokens=32, kv_fill=fill)
        r.load()
        r.prepare(Phase.DECODE, 1, 32)
        shapes[fill] = {k: (v.shape, v.dtype) for k, v in r._feeds.items()}
        assert r.step_s() > 0
    assert shapes["prefill"] == shapes["synthetic"]
    assert shapes["prefill"]["past_key_values.0.key"][0] == (1, SPEC.num_kv_heads, 32, SPEC.head_dim)


def test_unknown_fill_mode_is_refused(decoder: Path) -> None:
    with pytest.raises(ValueError, match="kv_fill"):
        OrtRunner(decoder, inspect_model_file(decoder), threads=1, kv_fill="zeros")


def test_worker_imports_neither_onnx_nor_the_campaign() -> None:
    """The worker's RSS is the model's: no onnx (~15 MiB), no builder, no second parse of the model."""
    import subprocess
    import sys

    code = "import sys, edgefit.bench.worker; print(sorted(m for m in ('onnx', 'edgefit.bench.campaign', "
    code += "'edgefit.onnxbuild', 'edgefit.bench.modelfile') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_model_info_round_trips_through_json(decoder: Path) -> None:
    import json

    from edgefit.bench.modelinfo import info_from_dict, info_to_dict

    info = inspect_model_file(decoder)
    assert info_from_dict(json.loads(json.dumps(info_to_dict(info)))) == info
