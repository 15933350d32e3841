"""Orchestration: ladder x precisions, memory guard, storing as results arrive, Ctrl-C, summary, with a
ScriptedRunner in-process (no onnxruntime) and the real Store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from edgefit import catalog
from edgefit.bench import run_ladder
from edgefit.bench.campaign import LADDER_DEPTHS, LADDER_PROMPTS, decoder_plan
from edgefit.bench.executor import InProcessExecutor, ModelJob
from edgefit.bench.loop import MeasurePolicy
from edgefit.bench.measurement import Phase
from edgefit.bench.runner import ScriptedRunner
from edgefit.catalog import ModelSpec
from edgefit.errors import MemoryGuardError
from edgefit.ladder import Rung
from edgefit.store import Store


def _spec(i: int, hidden: int, max_context: int = 4096) -> ModelSpec:
    return ModelSpec(id=f"rung{i}", name=f"rung{i}", family="ladder", hidden_size=hidden, num_layers=2,
                     num_heads=4, num_kv_heads=2, head_dim=hidden // 4, intermediate_size=hidden * 3,
                     vocab_size=1000, tied_embeddings=False, max_context=max_context)  # fmt: skip


@dataclass(frozen=True)
class _Rung:
    spec: ModelSpec
    precisions: tuple[str, ...]


@dataclass(frozen=True)
class _Built:
    path: Path
    params: int
    weight_file_bytes: int
    build_s: float = 0.0


def _fake_build(tmp: Path):  # type: ignore[no-untyped-def]
    def build(spec: ModelSpec, precision: str) -> _Built:
        p = tmp / f"{spec.id}-{precision}.onnx"
        p.write_bytes(f"{spec.id}{precision}".encode())
        return _Built(p, catalog.param_counts(spec).total, catalog.weight_bytes(spec, precision))

    return build


def _decode_latency(job: ModelJob) -> ScriptedRunner:
    # Latency grows with the bytes of the model (its file name carries the rung): deterministic, distinct.
    scale = 1.0 + int(job.model_path.name[4]) * 0.5
    return ScriptedRunner(lambda ph, p, c: scale * (0.001 if ph == Phase.DECODE else 0.0001 * p), load_s=0.02)


RUNGS = (_Rung(_spec(0, 64), ("fp32", "int8", "int4")), _Rung(_spec(1, 128), ("fp32", "int4")))


def _ladder(tmp_path: Path, **kw):  # type: ignore[no-untyped-def]
    args = dict(rungs=RUNGS, executor=InProcessExecutor(_decode_latency), guard=lambda e, w: None,
                build=_fake_build(tmp_path), progress=False, threads=2, budget_s=0.05)  # fmt: skip
    args.update(kw)
    return run_ladder("quick", db_path=tmp_path / "db.sqlite", **args)


def test_every_rung_and_precision_is_measured_and_stored(tmp_path: Path) -> None:
    s = _ladder(tmp_path)
    assert [(o.model_id, o.precision, o.status) for o in s.outcomes] == [
        ("rung0", "fp32", "measured"), ("rung0", "int8", "measured"), ("rung0", "int4", "measured"),
        ("rung1", "fp32", "measured"), ("rung1", "int4", "measured"),
    ]  # fmt: skip
    per_model = 1 + len(LADDER_PROMPTS) + len(LADDER_DEPTHS)
    assert len(s.measurements) == 5 * per_model and not s.interrupted
    with Store(tmp_path / "db.sqlite") as st:
        stored = st.measurements(run_id=s.run_id)
        assert [(m.model_id, m.precision, m.phase, m.prompt_tokens, m.context_tokens) for m in stored] == [
            (m.model_id, m.precision, m.phase, m.prompt_tokens, m.context_tokens) for m in s.measurements
        ]
        assert st.run(s.run_id).status == "finished"
    m = next(m for m in stored if m.model_id == "rung1" and m.precision == "int4" and m.phase == Phase.DECODE)
    assert m.weight_read_bytes_per_token == catalog.weight_read_bytes_per_token(RUNGS[1].spec, "int4")
    assert m.load_s == pytest.approx(0.02) and m.threads == 2 and m.layers == 2 and m.hidden_size == 128
    assert m.samples_s[0] == pytest.approx(1.5 * 0.001)


def test_precision_filter(tmp_path: Path) -> None:
    s = _ladder(tmp_path, precisions=("int4",))
    assert {(o.model_id, o.precision) for o in s.outcomes} == {("rung0", "int4"), ("rung1", "int4")}


def test_memory_guard_shrinks_the_ladder_and_says_so(tmp_path: Path) -> None:
    small = Rung(RUNGS[0].spec, ("fp32",))
    limit = max(small.estimated_run_bytes("fp32"), small.estimated_build_bytes("fp32")) + 1

    def guard(estimate: int, what: str) -> None:
        if estimate > limit:
            raise MemoryGuardError(f"{what} needs {estimate} bytes, {limit} available")

    s = _ladder(tmp_path, guard=guard)
    skipped = [(o.model_id, o.precision) for o in s.outcomes if o.status == "skipped"]
    assert ("rung1", "fp32") in skipped and ("rung0", "fp32") not in skipped
    assert all("available" in o.message for o in s.outcomes if o.status == "skipped")
    assert any("shrank" in n for n in s.notes)
    assert {m.model_id + m.precision for m in s.measurements}.isdisjoint({a + b for a, b in skipped})


def test_decode_depths_are_clipped_to_max_context() -> None:
    plan = decoder_plan(MeasurePolicy(), LADDER_PROMPTS, LADDER_DEPTHS, max_context=256)
    assert [(p.phase, p.context_tokens) for p in plan.phases if p.phase == Phase.DECODE] == [
        (Phase.DECODE, 0),
        (Phase.DECODE, 128),
    ]


def test_ctrl_c_keeps_finished_measurements_and_marks_the_run(tmp_path: Path) -> None:
    holder: dict[str, object] = {}

    def factory(job: ModelJob) -> ScriptedRunner:
        def on_step(n: int) -> None:
            if n == 20:  # in the middle of the first model's measurements
                holder["flag"].request()  # type: ignore[attr-defined]

        return ScriptedRunner(lambda ph, p, c: 0.001, on_step=on_step)

    class Ex(InProcessExecutor):
        def run(self, job, on_result, stop):  # type: ignore[no-untyped-def]
            holder["flag"] = stop
            super().run(job, on_result, stop)

    s = _ladder(tmp_path, executor=Ex(factory))
    assert s.interrupted
    assert s.outcomes[0].status == "interrupted" and len(s.outcomes) == 1
    n = len(s.measurements)
    assert 2 <= n < 1 + len(LADDER_PROMPTS) + len(LADDER_DEPTHS)
    with Store(tmp_path / "db.sqlite") as st:
        assert len(st.measurements(run_id=s.run_id)) == n
        assert st.run(s.run_id).status == "interrupted"


def test_summary_json_has_base_units_and_warnings(tmp_path: Path) -> None:
    d = _ladder(tmp_path).to_dict()
    row = next(m for m in d["measurements"] if m["phase"] == "decode")
    assert {"median_s", "ci95_low_s", "ci95_high_s", "peak_rss_bytes", "weight_read_bytes_per_token"} <= set(row)
    assert isinstance(row["warnings"], list)
    assert d["models"][0]["status"] == "measured"
