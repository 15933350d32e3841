"""The report's measured-energy and sustained section: measured J/token marked M where a sensor was read,
"no power sensor found" otherwise, and the sustained plot drawn only when there is a sustained run."""

from __future__ import annotations

import dataclasses

from test_report_fakes import fixed_report

from edgefit.bench.measurement import Phase
from edgefit.bench.series import SustainedSeries
from edgefit.power.reading import PowerReading
from edgefit.report.markdown import render_markdown
from edgefit.report.pipeline import measured_power
from edgefit.report.plots import render_plots
from tests.test_store import make_measurement


def _series() -> SustainedSeries:
    n = 5
    return SustainedSeries(
        duration_s=5.0, interval_s=1.0, unit="tokens", t_s=tuple(float(i + 1) for i in range(n)),
        rate_per_s=(100.0, 98.0, 90.0, 85.0, 84.0), zones=("cpu-thermal",),
        temperatures_c=tuple((50.0 + 5 * i,) for i in range(n)), cpu_freq_hz=(2.4e9,) * n,
        throttled=(0, 0, 0x50005, 0x50005, 0x50005), power_w=(7.0, 7.1, 7.2, 7.2, 7.3),
        burst_rate_per_s=100.0, sustained_rate_per_s=84.0,
    )  # fmt: skip


def _measurement(phase: Phase, power: tuple[PowerReading, ...], sustained: SustainedSeries | None = None):  # type: ignore[no-untyped-def]
    return dataclasses.replace(make_measurement("r1"), phase=phase, power=power, sustained=sustained,
                               prompt_tokens=1, context_tokens=128, samples_s=(0.01, 0.01, 0.012))  # fmt: skip


READING = PowerReading("pi5-pmic", "board", "power", 0.2, 2.0, 11, 6.0, 12.0, 0.1, idle_w=2.5)


def test_measured_energy_is_marked_measured_and_the_series_is_plotted() -> None:
    ms = [_measurement(Phase.DECODE, (READING,)), _measurement(Phase.SUSTAINED, (READING,), _series())]
    energy, sustained, note = measured_power(ms)
    assert note == "" and len(energy) == 2 and len(sustained) == 1
    assert energy[0].energy_j == 6.0 * 0.01 and energy[0].energy_above_idle_j == 3.5 * 0.01
    data = dataclasses.replace(fixed_report(), measured_energy=energy, sustained=sustained)
    md = render_markdown(data)
    assert "Measured energy and sustained speed on this host" in md
    assert "M 60 ±10%" in md  # 6 W x 10 ms = 60 mJ per token
    assert "pi5-pmic (board)" in md and "0.840" in md  # sustained/burst
    plots = render_plots(data)
    assert "sustained" in plots and plots["sustained"]["png"].startswith(b"\x89PNG")


def test_no_sensor_says_so_and_draws_no_sustained_plot() -> None:
    energy, sustained, note = measured_power([_measurement(Phase.DECODE, ())])
    assert sustained == ()
    assert energy == () and "no power sensor found" in note
    data = dataclasses.replace(fixed_report(), power_note=note)
    md = render_markdown(data)
    assert "no power sensor found on this host" in md and "estimate from the device profiles" in md
    assert "sustained" not in render_plots(data)
    assert "Measured energy" not in render_markdown(fixed_report())  # goldens: nothing when nothing was measured
