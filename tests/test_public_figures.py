"""Predictions for other devices vs published real-device LLM figures (tests/data/public_llm_figures.toml).

The calibration is a fixed recording of a real ladder run on the project's host
(tests/data/calibration_fixture.json; regenerate with
``python -m edgefit.predict.record --db PATH --out tests/data/calibration_fixture.json`` after
``edgefit bench --ladder quick --db PATH``). The published figures are only compared with, never fed into
profiles or the calibration.

What the errors mean: the figures were measured with llama.cpp (GGUF, ARM NEON/dotprod or x86 AVX2 kernels),
edgefit predicts them with the nearest onnxruntime MatMulNBits calibration measured on this x86 host and the
devices' datasheet/STREAM figures, so this checks the physics of the translation (bandwidth-bound decode
scaled by each device's memory system), not a kernel-exact match. The bound below is what the model achieves
today; the report states the individual errors.
"""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

from edgefit import catalog
from edgefit.errors import CatalogError
from edgefit.predict import predict
from edgefit.predict.record import load_recorded
from edgefit.profiles import get_profile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "calibration_fixture.json"
FIGURES = DATA / "public_llm_figures.toml"
# decode tokens/s: every figure within a factor MAX_FACTOR, the median within MEDIAN_FACTOR. With the recorded
# calibration (validate run 6cd022ab, 2026-11-26 13:35-13:40 UTC, on a busy shared host: drift 6.5x) the errors
# are: Pi 5 Q8_0 -7..-2 %, Pi 4 Q8_0 +37 %, Q4_K_M -28..-23 % (Pi 5, N100), qwen2.5-0.5b Q4_0 on a Pi 5 -66 %
# (llama.cpp repacks Q4_0 for ARM dot products: faster per weight than onnxruntime's 4-bit kernel measured
# here); median |error| 15 %.
MAX_FACTOR = 4.0
MEDIAN_FACTOR = 1.25
# prompt tokens/s: llama.cpp repacks Q4_0 for ARM dotprod/i8mm (several x faster prefill than other types):
# that kernel effect is not in an onnxruntime calibration, so only the order of magnitude is checked
PROMPT_FACTOR = 15.0


def _figures() -> list[dict[str, Any]]:
    with FIGURES.open("rb") as f:
        return list(tomllib.load(f)["figures"])


def _predict(fig: dict[str, Any]) -> tuple[float, float | None] | None:
    """(predicted decode tok/s, predicted prompt tok/s) or None when the quantization is not one edgefit knows."""
    try:
        catalog.get_precision(fig["quantization"])
    except CatalogError:
        return None
    cal = load_recorded(FIXTURE)
    spec = catalog.load_spec(fig["model"])
    device = get_profile(fig["device"])
    prompt = int(fig.get("prompt_tokens", 512))
    decode_tokens = int(fig.get("decode_tokens", 128))
    # llama-bench tg128 decodes from an empty cache: the mean KV depth is half the generated tokens
    p = predict(spec, fig["quantization"].lower(), device, cal, context_tokens=decode_tokens // 2,
                prompt_tokens=prompt, threads=fig.get("threads"))  # fmt: skip
    pp = prompt / p.prefill_s.value if "prompt_tokens_per_s" in fig else None
    return p.decode_tokens_per_s.value, pp


def _errors() -> list[tuple[str, float, float]]:
    out = []
    for fig in _figures():
        got = _predict(fig)
        if got is None:
            continue
        label = f"{fig['device']} {fig['model']} {fig['quantization']}"
        out.append((label, got[0], float(fig["decode_tokens_per_s"])))
    return out


def test_fixture_is_a_recorded_real_calibration() -> None:
    cal = load_recorded(FIXTURE)
    assert {"fp32", "int4"} <= set(cal.precisions)
    for pc in cal.precisions.values():
        assert pc.rungs and all(r.startswith("ladder-") for r in pc.rungs)
        assert 0.05 < pc.bandwidth_efficiency < 2.0


def test_at_least_three_public_figures_are_compared() -> None:
    assert len(_errors()) >= 3


def test_decode_rates_match_published_figures_within_the_stated_bound() -> None:
    errs = _errors()
    report = "\n".join(f"{lab}: predicted {p:.2f} tok/s, published {q:.2f} ({p / q - 1:+.0%})" for lab, p, q in errs)
    factors = [math.exp(abs(math.log(p / q))) for _, p, q in errs]
    assert max(factors) <= MAX_FACTOR, report
    assert statistics.median(factors) <= MEDIAN_FACTOR, report


@pytest.mark.parametrize("fig", [f for f in _figures() if "prompt_tokens_per_s" in f], ids=lambda f: f["model"])
def test_prompt_rates_are_within_an_order_of_magnitude(fig: dict[str, Any]) -> None:
    """Prefill on another ISA is the weakest part of the translation (int8 VNNI/AMX here vs NEON dotprod there,
    llama.cpp's ARM repacking of Q4_0): only the order of magnitude is checked."""
    got = _predict(fig)
    if got is None or got[1] is None:
        pytest.skip("quantization unknown to edgefit")
    ratio = got[1] / float(fig["prompt_tokens_per_s"])
    assert 1 / PROMPT_FACTOR <= ratio <= PROMPT_FACTOR, (
        f"predicted {got[1]:.1f}, published {fig['prompt_tokens_per_s']}"
    )
