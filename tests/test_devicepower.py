"""Per-device facts from measurements (edgefit.devicepower) and how verdicts use them: the sustained/burst factor
of a `--sustained` workload (measured here, measured on the device, given, or none), power budgets judged on the
device's measured draw, and procurement energy marked by where its figures came from."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
from test_report_fakes import FIXED_SPECS, device, fixed_prediction, fixed_report, prediction, seed_synthetic_db, spec

from edgefit.bench.measurement import Measurement, Phase
from edgefit.bench.series import SustainedSeries
from edgefit.cli import main
from edgefit.devicepower import NO_SUSTAINED, THIS_HOST, DeviceFacts, device_facts, given_factor
from edgefit.errors import UsageError
from edgefit.power.reading import PowerReading
from edgefit.procurement import device_options
from edgefit.report.data import collect_verdicts
from edgefit.report.markdown import render_markdown
from edgefit.report.tables import procurement_table
from edgefit.verdict import VerdictKind, Workload, judge
from tests.test_store import make_measurement

PI5 = "raspberry-pi-5-8gb"
IMPORTED = "the device (imported from host pi5-fp)"


def series(burst: float, sustained: float, seconds: int = 600, unit: str = "tokens") -> SustainedSeries:
    n = 4
    return SustainedSeries(
        duration_s=float(seconds), interval_s=seconds / n, unit=unit,
        t_s=tuple(seconds / n * (i + 1) for i in range(n)),
        rate_per_s=(burst, burst, sustained, sustained), zones=("cpu-thermal",),
        temperatures_c=((60.0,), (70.0,), (82.0,), (85.0,)), cpu_freq_hz=(2.4e9, 2.4e9, 1.8e9, 1.5e9),
        throttled=(0, 0, 0x6, 0x6), power_w=(7.0, 7.0, 6.5, 6.4),
        burst_rate_per_s=burst, sustained_rate_per_s=sustained,
    )  # fmt: skip


def reading(watts: float, covers: str = "board") -> PowerReading:
    return PowerReading("pi5-pmic" if covers == "board" else "rapl:package-0", covers, "power", 0.2, 10.0, 51,
                        watts, watts * 10.0, 0.02, idle_w=2.5)  # fmt: skip


def sustained_m(s: SustainedSeries, run_id: str | None = None, **kw: object) -> Measurement:
    return make_measurement(run_id, phase=Phase.SUSTAINED, sustained=s, **kw)


def decode_m(watts: float, covers: str = "board", run_id: str | None = None, **kw: object) -> Measurement:
    return make_measurement(run_id, power=(reading(watts, covers),), **kw)


# --- the sustained factor ------------------------------------------------------------------------------------


def test_factor_from_this_hosts_sustained_run_quotes_rates_and_basis() -> None:
    f = device_facts("host", [(sustained_m(series(20.0, 16.0)), THIS_HOST)])
    assert f.sustained.factor == pytest.approx(0.8)
    assert f.sustained.basis == "measured"
    assert "sustained/burst 0.800" in f.sustained.detail and "600 s" in f.sustained.detail
    assert "burst 20 tok/s, sustained 16 tok/s" in f.sustained.detail


def test_imported_run_is_measured_on_device_and_the_longest_decode_run_wins() -> None:
    runs = [
        (sustained_m(series(20.0, 18.0, seconds=60)), IMPORTED),  # short
        (sustained_m(series(20.0, 12.0, seconds=900)), IMPORTED),  # the longest decode run
        (sustained_m(series(50.0, 45.0, seconds=1200, unit="inferences")), IMPORTED),  # longer, but not decode
    ]
    f = device_facts(PI5, runs)
    assert f.sustained.basis == "measured_on_device"
    assert f.sustained.factor == pytest.approx(0.6)
    assert "900 s" in f.sustained.detail and IMPORTED in f.sustained.detail


def test_only_a_user_model_run_is_used_and_said() -> None:
    f = device_facts("host", [(sustained_m(series(50.0, 40.0, seconds=30, unit="inferences")), THIS_HOST)])
    assert f.sustained.factor == pytest.approx(0.8)
    assert "user model's inference rate" in f.sustained.detail
    assert "shorter than 120 s" in f.sustained.detail


def test_no_run_means_factor_one_with_a_note() -> None:
    f = device_facts("host", [(decode_m(6.0), THIS_HOST)])
    assert f.sustained is NO_SUSTAINED
    assert f.sustained.factor == 1.0 and "no sustained figure" in f.sustained.detail


@pytest.mark.parametrize(("burst", "sustained"), [(20.0, 0.0), (1e-9, 5.0), (20.0, 0.5), (1.0, 50.0)])
def test_garbage_series_is_left_out_with_a_note_not_a_crash(burst: float, sustained: float) -> None:
    f = device_facts("host", [(sustained_m(series(burst, sustained)), THIS_HOST)])
    assert f.sustained is NO_SUSTAINED
    assert len(f.notes) == 1 and "left out" in f.notes[0]


def test_ratio_above_one_applies_no_speed_up() -> None:
    f = device_facts("host", [(sustained_m(series(20.0, 21.0)), THIS_HOST)])
    assert f.sustained.factor == 1.0
    assert f.sustained.ratio == pytest.approx(1.05)
    assert "no slowdown is applied" in f.sustained.detail


def test_judge_scales_decode_only_for_a_sustained_workload() -> None:
    facts = device_facts("board-8gb", [(sustained_m(series(20.0, 10.0)), THIS_HOST)])
    p = prediction(tps=16.0)
    burst = judge(p, spec(), device(), Workload(min_decode_tokens_per_s=10.0), facts)
    assert burst.prediction.decode_tokens_per_s.value == pytest.approx(16.0)
    assert burst.sustained is None and burst.kind is VerdictKind.FITS
    warm = judge(p, spec(), device(), Workload(min_decode_tokens_per_s=10.0, sustained=True), facts)
    assert warm.prediction.decode_tokens_per_s.value == pytest.approx(8.0)
    assert warm.prediction.decode_s_per_token.value == pytest.approx(2 * p.decode_s_per_token.value)
    assert warm.prediction.energy_per_token_j.value == pytest.approx(2 * p.energy_per_token_j.value)
    assert warm.kind is VerdictKind.TOO_SLOW  # 16 tok/s burst, 8 tok/s once warm: under the 10 tok/s floor
    assert any("8.0 tok/s < 10.0 tok/s floor" in r for r in warm.reasons)
    assert any("sustained: decode x0.5 (measured)" in n for n in warm.notes)


def test_sustained_without_figures_is_burst_with_a_note_and_a_given_ratio_applies_everywhere() -> None:
    p = prediction(tps=12.0)
    v = judge(p, spec(), device(), Workload(sustained=True), None)
    assert v.prediction.decode_tokens_per_s.value == pytest.approx(12.0)
    assert v.sustained is not None and v.sustained.basis == "none"
    assert any("no sustained figure" in n for n in v.notes)
    given = judge(p, spec(), device(), Workload(sustained=True, sustained_ratio=0.25), DeviceFacts("board-8gb"))
    assert given.prediction.decode_tokens_per_s.value == pytest.approx(3.0)
    assert given.sustained is not None and given.sustained.basis == "given"


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.5, float("nan"), float("inf")])
def test_workload_refuses_a_ratio_outside_zero_to_one(ratio: float) -> None:
    with pytest.raises(UsageError, match="--sustained"):
        Workload(sustained=True, sustained_ratio=ratio)
    with pytest.raises(UsageError):
        given_factor(ratio)


def test_workload_refuses_a_ratio_without_sustained() -> None:
    with pytest.raises(UsageError, match="without sustained"):
        Workload(sustained_ratio=0.8)


# --- power budgets on the measured draw ----------------------------------------------------------------------


def test_measured_draw_over_budget_is_over_power_budget_quoting_it() -> None:
    facts = device_facts("board-8gb", [(decode_m(12.3), IMPORTED)])
    v = judge(prediction(power_w=8.0), spec(), device(budget_w=10.0, load_w=8.0), Workload(), facts)
    assert v.kind is VerdictKind.OVER_POWER_BUDGET
    assert any("measured draw 12.3 W measured on " + IMPORTED in r and "> 10.0 W budget" in r for r in v.reasons)
    # a whole-board reading replaces the profile's figure in the prediction, basis measured
    assert v.prediction.power_w.value == pytest.approx(12.3)
    assert v.prediction.power_w.basis.value == "measured"
    assert v.measured_draw is not None and v.measured_draw.whole_device


def test_measured_draw_under_budget_overrides_the_profile_estimate() -> None:
    facts = device_facts("board-8gb", [(decode_m(6.0), THIS_HOST)])
    d = device(budget_w=10.0, load_w=12.0)
    assert judge(prediction(power_w=12.0), spec(), d, Workload(), None).kind is VerdictKind.OVER_POWER_BUDGET
    v = judge(prediction(power_w=12.0), spec(), d, Workload(), facts)
    assert v.kind is VerdictKind.FITS
    assert v.prediction.energy_per_token_j.value == pytest.approx(6.0 * v.prediction.decode_s_per_token.value)


def test_package_reading_is_judged_but_does_not_replace_the_board_figure() -> None:
    d = device(budget_w=10.0, load_w=12.0)
    small = device_facts("board-8gb", [(decode_m(4.0, covers="package"), THIS_HOST)])
    v = judge(prediction(power_w=12.0), spec(), d, Workload(), small)
    assert v.kind is VerdictKind.OVER_POWER_BUDGET and v.reasons == ("draws 12.0 W > 10.0 W budget",)
    assert any("covers the package only" in n for n in v.notes)
    assert v.prediction.power_w.value == pytest.approx(12.0)
    big = device_facts("board-8gb", [(decode_m(11.0, covers="package"), THIS_HOST)])
    v = judge(prediction(power_w=8.0), spec(), device(budget_w=10.0), Workload(), big)
    assert v.kind is VerdictKind.OVER_POWER_BUDGET and "measured draw 11.0 W" in v.reasons[0]


def test_draw_of_the_same_model_is_preferred_else_the_highest() -> None:
    facts = device_facts(
        "board-8gb",
        [(decode_m(5.0, model_id="tiny-1b", precision="int8"), THIS_HOST), (decode_m(9.0), THIS_HOST)],
    )
    exact = facts.draw_for("tiny-1b", "int8")
    other = facts.draw_for("other-7b", "int4")
    assert exact is not None and exact.power_w == 5.0
    assert other is not None and other.power_w == 9.0
    assert DeviceFacts("x").draw_for("tiny-1b", "int8") is None


# --- procurement: ranked by energy, marked by basis ----------------------------------------------------------


def test_procurement_ranks_by_energy_and_marks_measured_figures() -> None:
    base = fixed_report()
    facts = {"mid-board-8gb": device_facts("mid-board-8gb", [(decode_m(3.0), THIS_HOST)])}
    verdicts, _ = collect_verdicts(FIXED_SPECS, base.devices, base.precisions, base.workload, fixed_prediction,
                                   facts)  # fmt: skip
    data = dataclasses.replace(base, verdicts=verdicts, facts=tuple(facts.values()))
    options = {o.device_id: o for o in device_options(verdicts, data.devices, "toy-0.5b")}
    assert options["mid-board-8gb"].energy_basis == "measured_power"
    assert options["small-board-2gb"].energy_basis == "spec"
    table = procurement_table(data, "toy-0.5b")
    energy_col = table.header.index("energy [J per 1k tokens]")
    met = [r for r in table.rows if "fits" in r[1].text or "tight" in r[1].text]
    energies = [float(r[energy_col].text.split()[0].replace(",", "")) for r in met]
    assert energies == sorted(energies)
    marks = {r[0].text.split(" (")[0]: r[energy_col].text.split()[-1] for r in table.rows}
    assert marks["Mid Board"] == "MP" and marks["Small Board"] == "S"
    assert "MP = its measured draw" in table.note
    md = render_markdown(data, {})
    assert "Sustained factors and measured power per device" in md
    assert "M 3.00" in md


# --- the CLI: fit --sustained and budgets from an imported bundle ---------------------------------------------


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "seeded.sqlite"
    seed_synthetic_db(path, monkeypatch)
    return path


def _import_pi5_bundle(db: Path, tmp_path: Path, *, watts: float, burst: float, sustained: float) -> None:
    """A bundle as a Pi 5 would export it (its own host fingerprint), imported here and linked to the Pi 5."""
    from edgefit.bench.env import capture_environment
    from edgefit.store import Store

    src = tmp_path / "pi5.sqlite"
    env = dataclasses.replace(capture_environment(), host_fingerprint="pi5-fp")
    with Store(src) as store:
        run = store.start_run(env, "sustained")
        store.add_measurement(
            sustained_m(series(burst, sustained), run_id=run, host_fingerprint="pi5-fp", power=(reading(watts),))
        )
        store.add_measurement(decode_m(watts, run_id=run, host_fingerprint="pi5-fp", context_tokens=256))
        store.finish_run(run)
        store.export_bundle(None, tmp_path / "pi5.json")
    with Store(db) as store:
        store.import_bundle(tmp_path / "pi5.json")
        store.link_device(PI5, "pi5-fp")


FIT = ["fit", "--model", "qwen2.5-0.5b", "--precision", "int8", "--device", PI5, "--json"]


def test_fit_sustained_uses_the_linked_devices_imported_run(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*FIT, "--db", str(db)]) == 0
    burst_tps = json.loads(capsys.readouterr().out)["results"][0]["decode_tokens_per_s"]["value"]
    _import_pi5_bundle(db, tmp_path, watts=7.5, burst=20.0, sustained=14.0)
    assert main([*FIT, "--sustained", "--db", str(db)]) == 0
    doc = json.loads(capsys.readouterr().out)
    r = doc["results"][0]
    assert doc["workload"]["sustained"] is True
    assert r["sustained"]["basis"] == "measured_on_device" and r["sustained"]["factor"] == pytest.approx(0.7)
    assert r["decode_tokens_per_s"]["value"] == pytest.approx(0.7 * burst_tps, rel=1e-3)
    assert r["measured_power"]["power_w"] == pytest.approx(7.5) and r["power_w"]["basis"] == "measured"
    facts = {f["device_id"]: f for f in doc["device_facts"]}
    assert facts[PI5]["sustained"]["measured_ratio"] == pytest.approx(0.7)


def test_fit_sustained_without_figures_says_so_in_words(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a for a in FIT if a != "--json"]
    assert main([*argv, "--sustained", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"sustained factor on {PI5}: decode x1 (none): no sustained figure" in out


def test_measured_draw_over_the_devices_own_budget_fails_the_gate(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import_pi5_bundle(db, tmp_path, watts=30.0, burst=20.0, sustained=19.0)  # the Pi 5's budget is 27 W
    assert main([*FIT, "--require", "--db", str(db)]) == 1
    r = json.loads(capsys.readouterr().out)["results"][0]
    assert r["verdict"] == "over_power_budget"
    assert any("measured draw 30.0 W" in x and "> 27.0 W budget" in x for x in r["reasons"])


@pytest.mark.parametrize("value", ["abc", "0", "1.5", "nan", "-1", "inf"])
def test_fit_sustained_garbage_exits_2_with_one_line(db: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*FIT, f"--sustained={value}", "--db", str(db)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "--sustained" in lines[0] and "(0, 1]" in lines[0]
    assert "Traceback" not in captured.err


def test_fit_sustained_ratio_applies_to_every_device(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*FIT, "--db", str(db)]) == 0
    burst_tps = json.loads(capsys.readouterr().out)["results"][0]["decode_tokens_per_s"]["value"]
    assert main([*FIT, "--sustained", "0.5", "--db", str(db)]) == 0
    r = json.loads(capsys.readouterr().out)["results"][0]
    assert r["sustained"]["basis"] == "given"
    assert r["decode_tokens_per_s"]["value"] == pytest.approx(burst_tps / 2, rel=1e-3)


PREDICT = ["predict", "--model", "qwen2.5-0.5b", "--precision", "int8", "--device", PI5, "--json"]


def test_predict_sustained_scales_decode_by_the_linked_devices_factor(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*PREDICT, "--db", str(db)]) == 0
    burst = json.loads(capsys.readouterr().out)
    assert burst["sustained"] is None
    _import_pi5_bundle(db, tmp_path, watts=7.5, burst=20.0, sustained=15.0)
    assert main([*PREDICT, "--sustained", "--db", str(db)]) == 0
    warm = json.loads(capsys.readouterr().out)
    assert warm["sustained"]["basis"] == "measured_on_device" and warm["sustained"]["factor"] == pytest.approx(0.75)
    ratio = warm["decode_tokens_per_s"]["value"] / burst["decode_tokens_per_s"]["value"]
    assert ratio == pytest.approx(0.75, rel=1e-6)
    assert warm["prefill_s"] == burst["prefill_s"]  # a prompt is a burst


def test_predict_sustained_garbage_exits_2_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "never.sqlite"
    assert main([*PREDICT, "--sustained", "fast", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--sustained 'fast'" in err
    assert not db.exists()


def test_report_sustained_writes_the_factors_table_and_json(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgefit.report.plots as plots

    monkeypatch.setattr(plots, "render_plots", lambda data: {})  # plots have their own tests
    _import_pi5_bundle(db, tmp_path, watts=7.5, burst=20.0, sustained=14.0)
    out = tmp_path / "rep"
    argv = ["report", "--device", PI5, "--model", "qwen2.5-0.5b", "--sustained", "--out", str(out)]
    assert main([*argv, "--format", "md,html,json,csv", "--db", str(db)]) == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Sustained factors and measured power per device" in md
    assert f"| {PI5} | x0.7 D | M 7.50 ±2% | pi5-pmic (board), {IMPORTED} |" in md
    assert "sustained/burst 0.700 from a 600 s" in md
    assert "Sustained factors and measured power per device" in (out / "report.html").read_text(encoding="utf-8")
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["workload"]["sustained"] is True
    assert {r["sustained"]["basis"] for r in doc["results"]} == {"measured_on_device"}
    options = [o for p in doc["procurement"] for o in p["options"]]
    assert options and {o["energy_basis"] for o in options} == {"measured_power"}

    rows = list(csv.DictReader((out / "results.csv").read_text(encoding="utf-8").splitlines()))
    assert rows and {(r["power_basis"], r["energy_basis"], r["sustained_factor"]) for r in rows} == {
        ("measured", "measured_power", "0.7")
    }
