"""Probes: sizing rules, what they count, and that they return real, plausible, self-consistent figures.

Timings on this shared machine are noisy: no absolute thresholds beyond physical plausibility."""

from __future__ import annotations

import statistics

import pytest

from edgefit import probes
from edgefit.units import GIB, MIB


@pytest.mark.parametrize(
    ("llc", "avail", "expected"),
    [
        (2 * MIB, 8 * GIB, 256 * MIB),  # small LLC: the 256 MiB floor
        (300 * MIB, 24 * GIB, 1200 * MIB),  # 4x LLC
        (1024 * MIB, 64 * GIB, 2 * GIB),  # the 2 GiB ceiling
        (2 * MIB, 512 * MIB, 128 * MIB),  # a 512 MB Pi Zero: a quarter of what is available
    ],
)
def test_working_set_rules(llc: int, avail: int, expected: int) -> None:
    assert probes.working_set_bytes(llc, avail) == expected


def test_llc_is_read_from_the_os() -> None:
    llc = probes.last_level_cache_bytes()
    assert llc is None or 64 * 1024 <= llc <= 4 * GIB


def _check(result: probes.ProbeResult, unit: str, low: float, high: float) -> None:
    assert result.unit == unit
    assert len(result.samples) >= 3
    assert result.value == statistics.median(result.samples)
    assert result.min <= result.value <= result.max
    assert low < result.value < high, result.value
    assert result.threads >= 1 and result.working_set_bytes > 0


def test_stream_triad_and_copy_count_bytes_as_stream() -> None:
    results = probes.stream_probes(duration_s=0.2, threads=2, total_bytes=48 * MIB)
    assert set(results) == {"triad", "copy"}
    for name, r in results.items():
        _check(r, "bytes_per_s", 1e8, 1e13)  # 0.1 GB/s .. 10 TB/s
        assert r.working_set_bytes == 48 * MIB and r.threads == 2
        assert "write-allocate not counted" in r.method and name in r.method
    assert "3 x 8 B" in results["triad"].method and "2 x 8 B" in results["copy"].method


def test_stream_bandwidth_single_kernel() -> None:
    r = probes.stream_bandwidth(duration_s=0.1, threads=1, total_bytes=24 * MIB)
    _check(r, "bytes_per_s", 1e8, 1e13)
    assert "triad" in r.method and "1 threads" in r.method


def test_gemv_bandwidth() -> None:
    r = probes.gemv_bandwidth(duration_s=0.1, total_bytes=32 * MIB)
    _check(r, "bytes_per_s", 1e8, 1e13)
    assert r.working_set_bytes == 2048 * 4096 * 4 and "GEMV" in r.method


def test_gemm_flops_counts_2n3() -> None:
    r = probes.gemm_flops(duration_s=0.2, size=256)
    _check(r, "flops_per_s", 1e8, 1e15)  # 0.1 GFLOP/s .. 1 PFLOP/s
    assert "n = 256" in r.method and "2 n^3" in r.method


def test_gemm_size_is_calibrated_to_the_budget() -> None:
    r = probes.gemm_flops(duration_s=0.1)
    n = int(r.method.split("n = ")[1].split(",")[0])
    assert 1024 <= n <= 4096 and n % 256 == 0


def test_quick_bandwidth_reuses_its_buffers() -> None:
    try:
        first = probes.quick_bandwidth(duration_s=0.05, total_bytes=24 * MIB)
        kept = dict(probes._QUICK)
        second = probes.quick_bandwidth(duration_s=0.05, total_bytes=24 * MIB)
        assert kept == probes._QUICK  # same arrays, no new allocation
        assert 1e8 < first < 1e13 and 1e8 < second < 1e13
    finally:
        probes.release_buffers()
    assert probes._QUICK == {}


def test_describe() -> None:
    r = probes.ProbeResult(2.0e10, "bytes_per_s", (1.9e10, 2.0e10, 2.1e10), "m")
    assert probes.describe(r) == "20.0 GB/s (min 19.0, max 21.0, 3 passes)"
