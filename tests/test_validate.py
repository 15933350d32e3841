"""`predict.validate`: held-out architectures from synthetic physics are predicted within the targets, drift is
normalised, the fresh measurement interleaves held-out models with the ladder, and the result is JSON-able."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from edgefit import bench, catalog, ladder
from edgefit.bench.campaign import BenchSummary
from edgefit.errors import PredictError
from edgefit.predict import synthetic as sy
from edgefit.predict import validate as v

MIB = 2**20
PHYSICS = {
    "fp32": sy.Physics(22e9, call_s=3e-4, cache_speedup=1.4, knee_bytes=150 * MIB, prefill_flops_per_s=1.2e11),
    "int4": sy.Physics(13e9, call_s=4e-4, rss_k=1.27, prefill_flops_per_s=0.9e11),
}
LADDER = [r.spec for r in ladder.load_ladder("quick")]
HELD = [catalog.load_spec(m) for m in v.DEFAULT_HELD_OUT]


def test_held_out_architectures_from_the_same_physics_meet_the_targets() -> None:
    lad = sy.measurements(LADDER, PHYSICS, noise_rel=0.01, seed=1)
    held = sy.measurements(HELD, PHYSICS, noise_rel=0.01, seed=2)
    r = v.validate(lad, sy.device(), held_out_measurements=held)
    held_cmp = [c for c in r.comparisons if c.kind == "held_out"]
    assert {c.model_id for c in held_cmp} == {s.id for s in HELD}
    assert {c.figure for c in held_cmp} == {"decode", "prefill", "peak_rss"}
    for key, e in r.summary.items():
        if key.startswith("held_out/"):
            assert e["meets_target"], (key, e)
    assert json.loads(json.dumps(r.to_dict()))["summary"] == json.loads(json.dumps(r.summary))


def test_decode_is_compared_after_probe_normalisation() -> None:
    lad = sy.measurements(LADDER, PHYSICS, probes=[25e9], reference_probe=25e9)
    # the held-out models ran while the host was 30 % slower, and the probe beside them saw it
    held = sy.measurements(HELD, PHYSICS, probes=[25e9 / 1.3], reference_probe=25e9)
    r = v.validate(lad, sy.device(), held_out_measurements=held)
    dec = [c for c in r.comparisons if c.kind == "held_out" and c.figure == "decode"]
    assert max(abs(c.error_rel) for c in dec) < 0.05
    assert min(abs(c.error_raw_rel) for c in dec) > 0.15  # the raw comparison would blame the model


def test_a_wrong_physics_is_caught() -> None:
    lad = sy.measurements(LADDER, PHYSICS)
    slower = {
        p: dataclasses.replace(ph, bandwidth_bytes_per_s=ph.bandwidth_bytes_per_s / 1.5) for p, ph in PHYSICS.items()
    }
    held = sy.measurements(HELD, slower)
    r = v.validate(lad, sy.device(), held_out_measurements=held)
    assert not r.summary["held_out/decode/fp32"]["meets_target"]


def test_validate_without_ladder_is_a_predict_error() -> None:
    with pytest.raises(PredictError, match="edgefit bench --ladder quick"):
        v.validate([], sy.device())


def test_measure_fresh_interleaves_held_out_models_with_the_ladder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    seen: dict[str, Any] = {}

    def fake_run_ladder(name: str, **kw: Any) -> BenchSummary:
        seen.update(kw, name=name)
        specs = [r.spec for r in kw["rungs"]]
        ms = sy.measurements(specs, {p: PHYSICS[p] for p in kw["precisions"]})
        return BenchSummary("run-1", str(tmp_path), "ladder:quick", 2, (), tuple(ms), False, 0.1)

    monkeypatch.setattr(bench, "run_ladder", fake_run_ladder)
    lad, held, run_ids, _ = v.measure_fresh(tmp_path / "db.sqlite", precisions=("fp32", "int4"))
    ids = [r.spec.id for r in seen["rungs"]]
    sizes = [catalog.param_counts(r.spec).total for r in seen["rungs"]]
    assert sizes == sorted(sizes)  # one run, by size: held-out models sit between the rungs around them
    assert set(ids) == {s.id for s in LADDER} | {s.id for s in HELD}
    assert {m.model_id for m in held} == {s.id for s in HELD}
    assert not {m.model_id for m in lad} & {s.id for s in HELD}
    assert run_ids == ["run-1"]
    with pytest.raises(PredictError, match="must not be ladder rungs"):
        v.measure_fresh(tmp_path / "db.sqlite", models=(LADDER[1].id,))
