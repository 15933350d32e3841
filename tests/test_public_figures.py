"""Predictions for other devices vs published real-device LLM figures (tests/data/public_llm_figures.toml).

The calibration is a fixed recording of a real kernel table measured on the project's host
(tests/data/kernel_table_fixture.json; regenerate with ``edgefit calibrate --db PATH`` then
``python -m edgefit.kernels.record --db PATH --out tests/data/kernel_table_fixture.json``). The published figures
are only compared with, never fed into profiles or the calibration.

What the errors mean: the figures were measured with llama.cpp (GGUF, ARM NEON/dotprod or x86 AVX2 kernels),
edgefit predicts them by pricing each model's ops with onnxruntime kernels (MatMulNBits for the GGUF types,
the nearest in bits) measured on this x86 host and translating them with the devices' bandwidth and compute
figures, so this checks the physics of the translation, not a kernel-exact match. The bounds are issue 10's
target (median |error| under 25 %) and a factor of 2.5 for any single figure (a different runtime's kernels).
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
from edgefit.kernels.record import load_recorded
from edgefit.pipeline import calibration_from_table
from edgefit.predict import predict
from edgefit.profiles import get_profile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "kernel_table_fixture.json"
FIGURES = DATA / "public_llm_figures.toml"
# decode tokens/s: the median |error| under 25 % (issue 10), every figure within a factor MAX_FACTOR
MAX_FACTOR = 2.5
MEDIAN_ABS_ERROR = 0.25
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
    cal = calibration_from_table(load_recorded(FIXTURE))
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


def test_fixture_is_a_recorded_real_kernel_table() -> None:
    table = load_recorded(FIXTURE)
    assert table.host.onnxruntime_version != "synthetic" and table.rounds >= 10
    assert {k.spec.precision for k in table.kernels if k.spec.kind == "linear"} == {"fp32", "int8", "int4"}
    assert all(min(k.cold_s) > 0 for k in table.kernels)


def test_at_least_three_public_figures_are_compared() -> None:
    assert len(_errors()) >= 3


def test_decode_rates_match_published_figures_within_the_stated_bound() -> None:
    errs = _errors()
    report = "\n".join(f"{lab}: predicted {p:.2f} tok/s, published {q:.2f} ({p / q - 1:+.0%})" for lab, p, q in errs)
    factors = [math.exp(abs(math.log(p / q))) for _, p, q in errs]
    assert max(factors) <= MAX_FACTOR, report
    assert statistics.median(abs(p / q - 1) for _, p, q in errs) <= MEDIAN_ABS_ERROR, report


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
