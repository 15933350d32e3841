"""Translation to a device: the bound switches with the device's balance, fp16 runs as fp32, GGUF borrows the
nearest integer calibration, intervals widen with datasheet-only figures and with extrapolation."""

from __future__ import annotations

import dataclasses

import pytest

from edgefit import catalog
from edgefit.predict import predict
from edgefit.predict import synthetic as sy
from edgefit.predict.calibrate import calibrate
from edgefit.predict.prediction import Basis

MIB = 2**20
SPECS = sy.ladder_specs(6)
TRUTH = {
    "fp32": sy.Physics(22e9, prefill_flops_per_s=1.2e11),
    "int8": sy.Physics(20e9, rss_k=1.05, prefill_flops_per_s=3e11),
    "int4": sy.Physics(13e9, rss_k=1.27, prefill_flops_per_s=1e11),
}
HOST = sy.device(measured_bandwidth_bytes_per_s=25e9, gemm_flops_per_s=150e9)
CAL = calibrate(sy.measurements(SPECS, TRUTH, probes=[25e9]), HOST, specs={s.id: s for s in SPECS})
MODEL = catalog.load_spec("tinyllama-1.1b")


def _rel_width(e: object) -> float:
    return (e.high - e.low) / e.value  # type: ignore[attr-defined]


def test_int4_is_compute_bound_here_and_memory_bound_on_a_device_with_strong_cores() -> None:
    here = predict(MODEL, "int4", HOST, CAL, context_tokens=128)
    assert here.bound == "compute"
    strong = sy.device("strong", bandwidth_bytes_per_s=20e9, measured_bandwidth_bytes_per_s=20e9,
                       gemm_flops_per_s=2e12, cores=16)  # fmt: skip
    assert predict(MODEL, "int4", strong, CAL, context_tokens=128).bound == "memory"
    weak = sy.device("weak", bandwidth_bytes_per_s=60e9, measured_bandwidth_bytes_per_s=60e9,
                     gemm_flops_per_s=20e9, cores=4)  # fmt: skip
    assert predict(MODEL, "int4", weak, CAL, context_tokens=128).bound == "compute"


def test_host_prediction_reproduces_the_fitted_ladder_physics() -> None:
    p = predict(MODEL, "fp32", HOST, CAL, context_tokens=128, prompt_tokens=64)
    truth = sy.decode_seconds(MODEL, "fp32", TRUTH["fp32"], 128)
    assert p.decode_s_per_token.value == pytest.approx(truth, rel=0.02)
    assert p.decode_s_per_token.basis == Basis.EXTRAPOLATED
    assert p.prefill_s.value == pytest.approx(sy.prefill_seconds(MODEL, TRUTH["fp32"], 64), rel=0.02)


def test_a_measured_rung_is_quoted_as_measured() -> None:
    rung = SPECS[-1]
    p = predict(rung, "fp32", HOST, CAL, context_tokens=128, prompt_tokens=64)
    assert p.decode_s_per_token.basis == Basis.MEASURED
    assert p.prefill_s.basis == Basis.MEASURED
    other = predict(rung, "fp32", HOST, CAL, context_tokens=300, prompt_tokens=64)
    assert other.decode_s_per_token.basis == Basis.EXTRAPOLATED  # a depth that was not measured


def test_fp16_is_predicted_as_fp32_and_says_so() -> None:
    a = predict(MODEL, "fp16", HOST, CAL)
    b = predict(MODEL, "fp32", HOST, CAL)
    assert a.decode_s_per_token.value == b.decode_s_per_token.value
    assert a.memory.total.value == b.memory.total.value
    assert any("fp32" in n for n in a.notes)


def test_gguf_uses_its_own_bytes_and_the_nearest_integer_calibration() -> None:
    pi5 = sy.device("pi", bandwidth_bytes_per_s=17e9, measured_bandwidth_bytes_per_s=10e9, gemm_flops_per_s=90e9,
                    cores=4, clock_hz=2.4e9, isa="aarch64")  # fmt: skip
    q8 = predict(MODEL, "q8_0", pi5, CAL, context_tokens=64)
    q4 = predict(MODEL, "q4_0", pi5, CAL, context_tokens=64)
    assert q8.calibration["calibration_precision"] == "int8"
    assert q4.calibration["calibration_precision"] == "int4"
    assert any("nearest in bits" in n for n in q4.notes)
    assert q4.memory.weights_bytes < q8.memory.weights_bytes
    assert q4.memory.weights_bytes == catalog.weight_bytes(MODEL, "q4_0")  # llama.cpp maps the file as is


def test_datasheet_only_bandwidth_and_extrapolation_widen_the_interval() -> None:
    measured = sy.device("m", bandwidth_bytes_per_s=17e9, measured_bandwidth_bytes_per_s=10e9, cores=4)
    datasheet = dataclasses.replace(measured, id="d", measured_bandwidth=None)
    a = predict(MODEL, "fp32", measured, CAL, context_tokens=64)
    b = predict(MODEL, "fp32", datasheet, CAL, context_tokens=64)
    assert _rel_width(b.decode_s_per_token) > _rel_width(a.decode_s_per_token)
    assert a.decode_s_per_token.basis == Basis.SPEC
    small = predict(SPECS[2], "fp32", HOST, CAL, context_tokens=64)
    big = predict(catalog.load_spec("llama-3.1-70b"), "fp32", HOST, CAL, context_tokens=64)
    assert _rel_width(big.decode_s_per_token) > _rel_width(small.decode_s_per_token)
    assert big.calibration["extrapolation_log_ratio"] > 2.0


def test_fewer_threads_are_slower_and_energy_is_power_times_time() -> None:
    dev = sy.device("quad", cores=4, measured_bandwidth_bytes_per_s=10e9, power_w=(2.0, 6.0, 12.0))
    one = predict(MODEL, "int4", dev, CAL, threads=1)
    four = predict(MODEL, "int4", dev, CAL, threads=4)
    assert one.threads == 1 and four.threads == 4
    assert one.decode_s_per_token.value > four.decode_s_per_token.value
    assert four.energy_per_token_j.value == pytest.approx(6.0 * four.decode_s_per_token.value)
    assert four.power_w.low == 2.0 and four.power_w.high == 12.0
    assert predict(MODEL, "int4", dev, CAL, threads=64).threads == 4  # never more threads than cores
