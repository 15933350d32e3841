"""`predict.validate`: a kernel table of known physics predicts whole models made of the same physics within the
targets (ladder, held-out catalog shapes, random architectures); a host that was slower while the models ran is
caught; random architectures are reproducible and span the promised sizes; the fresh measurement interleaves
held-out models with the ladder in one run; the result is JSON-able."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgefit import bench, catalog, ladder, pipeline
from edgefit.bench.campaign import BenchSummary
from edgefit.errors import PredictError
from edgefit.predict import synthetic as sy
from edgefit.predict import validate as v

PHYS = sy.KernelPhysics()
PRECISIONS = ("fp32", "int8", "int4")
LADDER = [r.spec for r in ladder.load_ladder("quick")]
HELD = [catalog.load_spec(m) for m in v.DEFAULT_HELD_OUT]
RANDOM = list(v.random_specs(6, seed=11, max_params=3e8))


def _validate(slow: float = 1.0, noise: float = 0.01, table_noise: float = 0.01) -> v.ValidationResult:
    table = sy.kernel_table(PHYS, rounds=8, noise_rel=table_noise, seed=3)
    lad = sy.kernel_measurements(LADDER, PRECISIONS, PHYS, noise_rel=noise, seed=1)
    cal = pipeline.calibration_from_table(table, lad)
    held = sy.kernel_measurements(HELD + RANDOM, PRECISIONS, PHYS, noise_rel=noise, slow=slow, seed=2)
    return v.validate(cal, sy.device("host"), ladder_measurements=lad, held_out_measurements=held,
                      specs={s.id: s for s in RANDOM})  # fmt: skip


def test_models_made_of_the_tables_physics_are_predicted_within_the_targets() -> None:
    r = _validate()
    kinds = {c.kind for c in r.comparisons}
    assert kinds == {"rung", "held_out", "random"}
    assert {c.model_id for c in r.comparisons if c.kind == "held_out"} == {s.id for s in HELD}
    assert {c.model_id for c in r.comparisons if c.kind == "random"} == {s.id for s in RANDOM}
    assert {c.figure for c in r.comparisons} == {"decode", "prefill", "peak_rss"}
    for key, e in r.summary.items():
        if key.startswith(("held_out/", "random/")) and "meets_target" in e:
            assert e["meets_target"], (key, e)
    dec = [abs(c.error_rel) for c in r.comparisons if c.figure == "decode"]
    assert max(dec) < 0.1  # interpolation and the fits only: the physics is the table's own
    assert r.kernel_errors  # leave-one-out per GEMV/GEMM curve
    assert json.loads(json.dumps(r.to_dict()))["summary"] == json.loads(json.dumps(r.summary))


def test_a_host_slower_than_its_table_is_caught() -> None:
    r = _validate(slow=1.5)
    assert not r.summary["held_out/decode/fp32"]["meets_target"]
    dec = [c.error_rel for c in r.comparisons if c.kind == "random" and c.figure == "decode"]
    assert all(e < -0.25 for e in dec)  # predicted faster than measured, for every random architecture


def test_random_architectures_are_reproducible_and_in_range() -> None:
    a, b = v.random_specs(8, seed=5), v.random_specs(8, seed=5)
    assert a == b and v.random_specs(8, seed=6) != a
    for s in a:
        assert 5e7 <= catalog.param_counts(s).total <= 6e8
        assert s.num_heads % s.num_kv_heads == 0
        assert s.id.startswith("random-5-")
    assert len({(s.hidden_size, s.num_layers, s.head_dim) for s in a}) == len(a)


def test_validate_without_measurements_is_a_predict_error() -> None:
    cal = pipeline.calibration_from_table(sy.kernel_table(PHYS))
    with pytest.raises(PredictError, match="nothing to validate"):
        v.validate(cal, sy.device())


def test_measure_fresh_interleaves_held_out_models_with_the_ladder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    seen: dict[str, Any] = {}

    def fake_run_ladder(name: str, **kw: Any) -> BenchSummary:
        seen.update(kw, name=name)
        specs = [r.spec for r in kw["rungs"]]
        ms = sy.kernel_measurements(specs, kw["precisions"], PHYS)
        return BenchSummary("run-1", str(tmp_path), "ladder:quick", 2, (), tuple(ms), False, 0.1)

    monkeypatch.setattr(bench, "run_ladder", fake_run_ladder)
    lad, held, specs, run_ids, _ = v.measure_fresh(
        tmp_path / "db.sqlite", precisions=("fp32", "int4"), random_n=2, seed=7
    )
    ids = [r.spec.id for r in seen["rungs"]]
    sizes = [catalog.param_counts(r.spec).total for r in seen["rungs"]]
    assert sizes == sorted(sizes)  # one run, by size: held-out models sit between the rungs around them
    drawn = {s.id for s in v.random_specs(2, seed=7)}
    assert set(ids) == {s.id for s in LADDER} | {s.id for s in HELD} | drawn
    assert {m.model_id for m in held} == {s.id for s in HELD} | drawn
    assert set(specs) == {s.id for s in HELD} | drawn
    assert not {m.model_id for m in lad} & set(specs)
    assert run_ids == ["run-1"]
    with pytest.raises(PredictError, match="must not be ladder rungs"):
        v.measure_fresh(tmp_path / "db.sqlite", models=(LADDER[1].id,))


def _calls(measurements: list[Any], slow: float = 1.0) -> tuple[Any, ...]:
    """Decode measurements turned into calls timed in a table's rounds (the synthetic physics, ``slow`` x)."""
    from edgefit.bench.measurement import Phase
    from edgefit.kernels.table import CallSamples

    return tuple(
        CallSamples(m.model_id, m.precision, 1, m.context_tokens, tuple(x * slow for x in m.samples_s))
        for m in measurements
        if m.phase == Phase.DECODE
    )


@pytest.mark.parametrize("slow", [1.0, 1.5])
def test_interleaved_calls_are_priced_with_their_own_table(slow: float) -> None:
    """Calls timed among a table's chains are compared with that table (lower quartile of their rounds), kept apart
    from the benchmark's comparisons in the summary; a model 1.5x slower than its kernels is caught."""
    import dataclasses

    table = sy.kernel_table(PHYS, rounds=8, noise_rel=0.01, seed=3)
    lad = sy.kernel_measurements(LADDER, PRECISIONS, PHYS, noise_rel=0.01, seed=1)
    held = sy.kernel_measurements(HELD + RANDOM, PRECISIONS, PHYS, noise_rel=0.01, seed=2)
    with_calls = dataclasses.replace(table, calls=_calls(held, slow))
    cal = pipeline.calibration_from_table(table, lad)
    inter = pipeline.calibration_from_table(with_calls, lad)
    r = v.validate(cal, sy.device("host"), ladder_measurements=lad, held_out_measurements=held,
                   specs={s.id: s for s in RANDOM}, interleaved=inter)  # fmt: skip
    rows = [c for c in r.comparisons if c.timing == "interleaved"]
    assert {c.model_id for c in rows} == {s.id for s in HELD + RANDOM}
    assert {c.kind for c in rows} == {"held_out", "random"} and {c.figure for c in rows} == {"decode"}
    key = "interleaved/random/decode/int4"
    assert r.summary[key]["n"] == sum(1 for c in rows if c.kind == "random" and c.precision == "int4")
    assert "median_abs_error_vs_median" in r.summary[key]
    assert r.summary["random/decode/int4"]["meets_target"]  # the benchmark's rows are unaffected by the calls
    if slow == 1.0:
        assert all(r.summary[k]["meets_target"] for k in r.summary if k.startswith("interleaved/"))
    else:
        assert all(c.error_rel < -0.25 for c in rows)
        assert not r.summary[key]["meets_target"]
    comp = pipeline.composition_errors(r.to_dict())
    assert comp["decode"] == max(e["median_abs_error"] for k, e in r.summary.items()
                                 if k.startswith("interleaved/") and "/decode/" in k)  # fmt: skip


def test_model_calls_take_the_built_files_and_stay_within_ram(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Decode at the shallowest and deepest measured cache and prefill at the longest prompt, per built file; files
    missing from the cache are skipped and the largest left out when RAM is short, each with a note."""
    from edgefit.onnxbuild import build

    monkeypatch.setattr(build, "cache_dir", lambda: tmp_path)
    ms = sy.kernel_measurements(HELD, ("int4",), PHYS)
    (tmp_path / "models").mkdir()
    present = HELD[0]
    build.default_path(present, "int4", layers=None, seed=0).write_bytes(b"x")
    specs = {s.id: s for s in HELD}
    calls, round_s, notes = v.model_calls(ms, specs, 2**40)
    assert {c.model_id for c in calls} == {present.id}
    depths = sorted(m.context_tokens for m in ms if m.model_id == present.id and m.phase.value == "decode")
    prompts = [m.prompt_tokens for m in ms if m.model_id == present.id and m.phase.value == "prefill"]
    got = sorted((c.tokens, c.past) for c in calls)
    assert got == sorted({(1, depths[0]), (1, depths[-1])} | ({(max(prompts), 0)} if prompts else set()))
    assert round_s > 0 and any("no longer in the cache" in n for n in notes)
    none, _, notes2 = v.model_calls(ms, specs, 1024)
    assert none == [] and any("left out" in n for n in notes2)


def test_the_drift_between_the_bracketing_tables_is_measured_and_said() -> None:
    """A host 25 % slower in streaming and 10 % slower in fp32 GEMMs after the models than before: the note gives
    both, signed; the same host twice moves nothing."""
    from edgefit.kernels.table import fit_model

    base = sy.KernelPhysics()
    slower = sy.KernelPhysics(bandwidth_bytes_per_s=base.bandwidth_bytes_per_s * 0.75,
                              fp32_macs_per_s=base.fp32_macs_per_s * 0.9)  # fmt: skip
    before, after = fit_model(sy.kernel_table(base)), fit_model(sy.kernel_table(slower))
    moved, note = v.bracket_drift(before, after)
    assert moved["fp32 GEMV streaming"] == pytest.approx(-0.25, abs=0.03)
    assert moved["fp32 GEMM"] == pytest.approx(-0.10, abs=0.02)
    assert moved["int8 GEMM"] == pytest.approx(0.0, abs=0.02)
    assert "fp32 GEMV streaming -2" in note and "the interleaved rows do not" in note
    same, _ = v.bracket_drift(before, fit_model(sy.kernel_table(base)))
    assert all(abs(m) < 1e-9 for m in same.values())


def test_the_calibration_worker_with_validates_models_stays_within_three_quarters_of_free_ram() -> None:
    """The chains (a quarter at most), the untimed lead (an eighth at most) and the interleaved models
    (``CALLS_RAM_SHARE``) together stay within 3/4 of available RAM, on a Pi-sized and a laptop-sized host."""
    from edgefit.kernels.calibrate import default_lead_bytes
    from edgefit.kernels.plan import default_plan

    for available in (1536 * 2**20, 4 * 2**30, 24 * 2**30):
        worst = default_plan(available).resident_bytes + default_lead_bytes(available)
        worst += v.CALLS_RAM_SHARE * available
        assert worst <= 0.75 * available
