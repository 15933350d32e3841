"""The kernel table: chains run in onnxruntime and compute what numpy computes, the op list is what onnxruntime
runs (its own optimized-model dump), the estimators and fits recover known physics, bad tables are refused, a
real (tiny) calibration runs through the worker, and bundles carry tables between machines."""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgefit import catalog, onnxbuild
from edgefit.errors import BenchError, PredictError, StoreError
from edgefit.kernels.graphs import build_kernel
from edgefit.kernels.ops import decoder_ops, ort_op_counts
from edgefit.kernels.plan import default_plan
from edgefit.kernels.spec import KernelSpec, linear_weight_bytes
from edgefit.kernels.table import Curve, KernelTable, fit_model, merge_tables, split_half_noise
from edgefit.predict import synthetic
from edgefit.units import MIB


def _session(spec: KernelSpec) -> tuple[ort.InferenceSession, dict[str, np.ndarray], onnx.ModelProto]:
    model, feeds = build_kernel(spec)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]), feeds, model


# ---------------------------------------------------------------------------------------------- chains


def test_fp32_linear_chain_equals_numpy() -> None:
    spec = KernelSpec("linear", 3, precision="fp32", m=2, k=64, n=96)
    sess, feeds, model = _session(spec)
    (out,) = sess.run(None, feeds)
    ws = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    ref = feeds["x"] @ ws["w0"] @ ws["w1"] @ ws["w2"]  # (K,N), (N,K), (K,N): the chain alternates
    assert out.shape == (2, 96)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_matmulnbits_chain_runs_with_the_builders_layout(precision: str) -> None:
    spec = KernelSpec("linear", 2, precision=precision, m=1, k=96, n=64)
    sess, feeds, model = _session(spec)
    (out,) = sess.run(None, feeds)
    assert out.shape == (1, 96) and np.isfinite(out).all() and np.abs(out).max() < 1e3
    node = model.graph.node[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert (node.op_type, attrs["block_size"], attrs["accuracy_level"]) == ("MatMulNBits", 32, 4)
    stored = sum(t.raw_data.__len__() for t in model.graph.initializer if t.name.endswith("0"))
    assert stored == linear_weight_bytes(precision, 96, 64)  # packed blocks + fp32 scales, as the builder stores


def test_linear_weight_bytes_match_the_catalog_accounting() -> None:
    """A decoder's weight read bytes per token = the sum of its linear ops' bytes (what the table prices)."""
    spec = catalog.load_spec("qwen2.5-0.5b")
    for p in ("fp32", "int8", "int4"):
        ops = decoder_ops(spec, p, tokens=1, past=0)
        priced = sum(o.count * linear_weight_bytes(o.precision, o.k, o.n) for o in ops if o.kind == "linear")
        # the catalog also counts what the small ops read: norm weights and (Qwen's) q/k/v biases, fp32
        norms = spec.hidden_size * (spec.norms_per_layer * spec.num_layers + 1)
        biases = spec.num_layers * (spec.num_heads + 2 * spec.num_kv_heads) * spec.head_dim
        assert priced + 4 * (norms + biases) == catalog.weight_read_bytes_per_token(spec, p)


@pytest.mark.parametrize(
    "spec",
    [
        KernelSpec("gqa", 3, m=1, heads=4, kv_heads=2, head_dim=16, past=8),
        KernelSpec("gqa", 2, m=5, heads=4, kv_heads=4, head_dim=16, past=0),
        KernelSpec("rotary", 3, m=4, heads=2, head_dim=16),
        KernelSpec("norm", 3, m=2, k=32),
        KernelSpec("eltwise", 3, m=2, k=32),
        KernelSpec("mul", 3, m=2, k=32),
        KernelSpec("tiny", 5),
        KernelSpec("empty", 1),
    ],
    ids=lambda s: s.id,
)
def test_every_kernel_kind_runs(spec: KernelSpec) -> None:
    sess, feeds, _ = _session(spec)
    outs = sess.run(None, feeds)
    assert all(np.isfinite(o).all() for o in outs)
    if spec.kind == "gqa":  # each node keeps its own cache: present = past + the new tokens
        assert len(outs) == 1 + 2 * spec.nodes
        assert outs[1].shape == (1, spec.kv_heads, spec.past + spec.m, spec.head_dim)


def test_kernel_spec_round_trips_and_refuses_nonsense() -> None:
    s = KernelSpec("linear", 4, precision="int4", m=16, k=1024, n=256)
    assert KernelSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.id == "linear/int4/m16/1024x256"
    with pytest.raises(ValueError):
        KernelSpec("conv", 1)
    with pytest.raises(ValueError):
        KernelSpec("linear", 1, precision="fp16", k=8, n=8)


def test_default_plan_spans_the_cache_and_shrinks_to_fit_memory() -> None:
    big = default_plan(64 * 2**30)
    gemv = [k for k in big.kernels if k.kind == "linear" and k.m == 1]
    assert {k.precision for k in gemv} == {"fp32", "int8", "int4"}
    assert sum(k.weight_bytes_per_node() * k.nodes for k in gemv) > 256 * 2**20  # more than a large LLC
    assert not big.dropped
    small = default_plan(1 * 2**30)
    assert small.dropped and small.resident_bytes <= 2**30 // 4
    assert len(small.kernels) < len(big.kernels)


# ---------------------------------------------------------------------------------------------- op list


_OPTIMIZED: dict[str, collections.Counter[str]] = {}


@pytest.mark.parametrize("variant", ["tied", "bias", "four_norms"])
@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_op_list_equals_onnxruntimes_optimized_graph(variant: str, precision: str, tmp_path: Path) -> None:
    """What is priced is what runs: onnxruntime fuses x*Sigmoid(x) into QuickGelu, folds bias Adds into
    MatMulNBits and drops the logits Identity; the op list must say the same, node for node."""
    base = catalog.load_spec("smollm2-135m")
    small = {"num_layers": 2, "vocab_size": 512, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4,
             "num_kv_heads": 2, "head_dim": 32}  # fmt: skip
    spec = {
        "tied": dataclasses.replace(base, **small, tied_embeddings=True),
        "bias": dataclasses.replace(base, **small, tied_embeddings=False, attention_bias=True, mlp_bias=True),
        "four_norms": dataclasses.replace(base, **small, norms_per_layer=4),
    }[variant]
    built = onnxbuild.build_model(spec, precision, out=tmp_path / "m.onnx")
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    so.log_severity_level = 3
    ort.InferenceSession(str(built.path), so, providers=["CPUExecutionProvider"])
    optimized = onnx.load(so.optimized_model_filepath, load_external_data=False)
    got = collections.Counter(n.op_type for n in optimized.graph.node)
    assert dict(got) == ort_op_counts(decoder_ops(built.spec, precision, tokens=1, past=0))


# ---------------------------------------------------------------------------------------------- estimators and fits


def test_curve_is_monotone_floored_and_proportional_beyond() -> None:
    c = Curve.from_points([(1e6, 10e-6), (4e6, 9e-6), (16e6, 40e-6)])  # a noisy dip is lifted
    assert c.seconds == (10e-6, 10e-6, 40e-6)
    assert c(1e3) == 10e-6  # never below the smallest node's cost
    assert c(32e6) == pytest.approx(80e-6)  # a GEMV reads every weight once: proportional beyond the grid
    assert 10e-6 <= c(8e6) <= 40e-6


def test_split_half_noise() -> None:
    assert split_half_noise([1.0, 1.2, 1.1, 1.0, 1.3, 1.4]) == 0.0
    assert split_half_noise([1.0, 1.2, 1.1, 1.5, 1.3, 1.4]) == pytest.approx(0.3)


def test_fit_recovers_the_synthetic_physics() -> None:
    phys = synthetic.KernelPhysics()
    m = fit_model(synthetic.kernel_table(phys))
    assert m.stream_bytes_per_s == pytest.approx(phys.bandwidth_bytes_per_s, rel=0.05)
    assert m.triad_bytes_per_s == pytest.approx(phys.triad_bytes_per_s)
    assert m.fp32_gemm_macs_per_s == pytest.approx(phys.fp32_macs_per_s, rel=0.05)
    assert m.int8_gemm_macs_per_s == pytest.approx(phys.int8_macs_per_s, rel=0.05)
    assert m.run_s == pytest.approx(phys.run_s)
    fit = m.gqa_decode["cold"]
    assert fit.coef("kv_bytes") == pytest.approx(1 / phys.bandwidth_bytes_per_s, rel=0.02)
    assert fit.coef("macs") == pytest.approx(1 / phys.fp32_macs_per_s, rel=0.02)
    # int4 at M = 1 is compute-bound in this physics: 4096 x 4096 costs MACs / rate
    t = m.linear_s("int4", 1, 4096, 4096, "cold")
    assert t == pytest.approx(phys.node_s + 4096 * 4096 / phys.int4_gemv_macs_per_s, rel=0.02)
    assert m.noise_rel == 0.0


def test_interference_only_adds_time_and_the_minimum_sees_through_it() -> None:
    clean = fit_model(synthetic.kernel_table(rounds=12))
    noisy = fit_model(synthetic.kernel_table(rounds=12, noise_rel=0.3, seed=3))
    for key, curve in clean.gemv.items():
        for a, b in zip(curve.seconds, noisy.gemv[key].seconds, strict=True):
            # 12 rounds: the minimum lands within a few % of the truth (the noisy empty run subtracted may
            # lower a node by a hair)
            assert a * 0.99 <= b <= a * 1.25
    assert noisy.noise_rel > 0.0


def test_table_round_trips_through_json_and_refuses_bad_values() -> None:
    t = synthetic.kernel_table()
    d = json.loads(json.dumps(t.to_dict()))
    assert KernelTable.from_dict(d) == t
    bad = json.loads(json.dumps(d))
    bad["kernels"][0]["cold_s"][0] = math.nan
    with pytest.raises(PredictError, match="finite number"):
        KernelTable.from_dict(bad)
    bad = json.loads(json.dumps(d))
    del bad["host"]
    with pytest.raises(PredictError, match="missing field 'host'"):
        KernelTable.from_dict(bad)
    bad = json.loads(json.dumps(d))
    bad["schema_version"] = 99
    with pytest.raises(PredictError, match="schema_version"):
        KernelTable.from_dict(bad)
    bad = json.loads(json.dumps(d))
    bad["kernels"][0]["spec"]["kind"] = "conv"
    with pytest.raises(PredictError):
        KernelTable.from_dict(bad)


def test_fit_without_dispatch_chains_is_a_clear_error() -> None:
    t = synthetic.kernel_table()
    t = dataclasses.replace(t, kernels=tuple(k for k in t.kernels if k.spec.kind != "empty"))
    with pytest.raises(PredictError, match="edgefit calibrate"):
        fit_model(t)


# ---------------------------------------------------------------------------------------------- a real calibration


@pytest.mark.slow
def test_a_real_tiny_calibration_through_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """One small real kernel measurement: the isolated worker builds and times chains in rounds; a chain of 64
    do-nothing nodes costs more than one empty run, a 4x larger GEMV chain more than a small one."""
    from edgefit.kernels import calibrate

    plan = (
        KernelSpec("linear", 4, precision="fp32", m=1, k=256, n=256),
        KernelSpec("linear", 4, precision="fp32", m=1, k=512, n=512),
        KernelSpec("linear", 2, precision="int4", m=1, k=256, n=512),
        KernelSpec("tiny", 64),
        KernelSpec("empty", 1),
    )
    monkeypatch.setattr(calibrate, "default_plan", lambda avail, precisions: _Plan(plan))
    host = synthetic.device("host")
    table = calibrate.measure_table(host, "fp-test", threads=1, budget_s=0.2, rounds_min=4, lead_bytes=40 * MIB)
    assert table.rounds >= 4 and table.threads == 1 and table.host.host_fingerprint == "fp-test"
    assert table.lead_bytes == 32 * MIB  # whole 32 MiB lead sessions, never more than asked
    samples = {k.spec.id: k for k in table.kernels}
    assert set(samples) == {s.id for s in plan}
    assert min(samples["tiny"].cold_s) > min(samples["empty"].cold_s)
    assert min(samples["linear/fp32/m1/512x512"].warm_s) > min(samples["linear/fp32/m1/256x256"].warm_s)
    assert KernelTable.from_dict(json.loads(json.dumps(table.to_dict()))) == table


def test_whole_model_calls_are_timed_among_the_chains(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`validate`'s interleaved check: a built decoder runs twice per round among the chains (decode and prefill
    calls: the first run and the one right after it); its samples travel with the table through JSON, a merge keeps
    them, a table without the second runs (older) still loads, calls on one file share its session, and a prefill
    of 32 tokens costs more than one decoded token."""
    from edgefit.kernels import calibrate

    base = catalog.load_spec("smollm2-135m")
    spec = dataclasses.replace(base, num_layers=2, vocab_size=512, hidden_size=128, intermediate_size=256,
                               num_heads=4, num_kv_heads=2, head_dim=32)  # fmt: skip
    built = onnxbuild.build_model(spec, "fp32", out=tmp_path / "m.onnx")
    plan = (KernelSpec("linear", 4, precision="fp32", m=1, k=256, n=256), KernelSpec("tiny", 64),
            KernelSpec("empty", 1))  # fmt: skip
    monkeypatch.setattr(calibrate, "default_plan", lambda avail, precisions: _Plan(plan))
    calls = (calibrate.ModelCall(spec.id, "fp32", 1, 16, built.path), calibrate.ModelCall(spec.id, "fp32", 32, 0,
                                                                                          built.path))  # fmt: skip
    raw: dict = {}
    real_worker = calibrate._run_worker

    def spy(job: dict, progress: None) -> dict:
        raw.update(real_worker(job, progress))
        return raw

    monkeypatch.setattr(calibrate, "_run_worker", spy)
    table = calibrate.measure_table(synthetic.device("host"), "fp-c", threads=1, budget_s=0.2, rounds_min=4,
                                    calls=calls, lead_bytes=0)  # fmt: skip
    assert raw["call_sessions"] == 1  # the file's two calls share one session (one copy of its weights)
    got = {c.id: c for c in table.calls}
    assert set(got) == {c.id for c in calls}
    assert all(len(c.samples_s) == len(c.warm_s) == table.rounds for c in table.calls)
    assert min(got[calls[1].id].samples_s) > min(got[calls[0].id].samples_s)
    again = KernelTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert again == table
    assert merge_tables(table, table).calls == table.calls + table.calls
    older = table.to_dict()
    for c in older["calls"]:
        del c["warm_s"]
    assert all(c.warm_s == () for c in KernelTable.from_dict(older).calls)
    bad = table.to_dict()
    bad["calls"][0]["samples_s"] = [-1.0]
    with pytest.raises(PredictError, match="kernel table"):
        KernelTable.from_dict(bad)


@dataclasses.dataclass(frozen=True)
class _Plan:
    kernels: tuple[KernelSpec, ...]
    resident_bytes: int = 0
    dropped: tuple[str, ...] = ()


def test_a_failing_worker_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefit.bench import executor
    from edgefit.kernels import calibrate

    def dying(module: str) -> list[str]:  # prints a line that is no JSON, a chatty stderr, then exits 3
        code = "import sys; print('not json'); sys.stderr.write('x' * 200000 + '\\nlast words'); sys.exit(3)"
        return [sys.executable, "-c", code]

    monkeypatch.setattr(executor, "worker_command", dying)
    with pytest.raises(BenchError, match="kernel calibration failed: last words"):
        calibrate.measure_table(synthetic.device("host"), "fp", threads=1, budget_s=0.1, rounds_min=1)


# ---------------------------------------------------------------------------------------------- bundles


def _store_table(db: Path, fingerprint: str = "fp-a") -> str:
    from edgefit.bench.env import capture_environment
    from edgefit.store import Store

    env = dataclasses.replace(capture_environment(), host_fingerprint=fingerprint)
    with Store(db) as store:
        rid = store.start_run(env, "kernels")
        store.save_kernel_table(rid, fingerprint, synthetic.kernel_table(host_fingerprint=fingerprint).to_dict())
        store.finish_run(rid)
    return rid


def test_bundles_carry_kernel_tables_and_import_is_idempotent(tmp_path: Path) -> None:
    from edgefit.store import Store

    src, dst = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    rid = _store_table(src)
    with Store(src) as store:
        fp = store.run(rid).host_fingerprint
        store.export_bundle(None, tmp_path / "b.json")
    with Store(dst) as store:
        store.import_bundle(tmp_path / "b.json")
        store.import_bundle(tmp_path / "b.json")
        ((run_id, host, table),) = store.kernel_tables()
    assert run_id == rid and host == fp
    assert KernelTable.from_dict(table) == synthetic.kernel_table(host_fingerprint="fp-a")


def test_a_bundle_with_a_broken_kernel_table_is_refused_and_the_db_unchanged(tmp_path: Path) -> None:
    from edgefit.store import Store

    src, dst = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    _store_table(src)
    with Store(src) as store:
        store.export_bundle(None, tmp_path / "b.json")
    data = json.loads((tmp_path / "b.json").read_text())
    data["runs"][0]["kernel_table"]["threads"] = -1
    (tmp_path / "bad.json").write_text(json.dumps(data))
    data["runs"][0]["kernel_table"]["threads"] = 2
    data["runs"][0]["kernel_table"]["host"]["host_fingerprint"] = "someone-else"
    (tmp_path / "other.json").write_text(json.dumps(data))
    with Store(dst):
        pass
    before = dst.read_bytes()
    with Store(dst) as store:
        with pytest.raises(StoreError, match="kernel_table"):
            store.import_bundle(tmp_path / "bad.json")
        with pytest.raises(StoreError, match="belongs to the host that measured it"):
            store.import_bundle(tmp_path / "other.json")
        assert store.kernel_tables() == () and store.runs() == ()
    assert dst.read_bytes() == before


def test_calibrate_summary_prints_units_literally(capsys: pytest.CaptureFixture[str]) -> None:
    from edgefit.commands.calibrate import _print_human

    _print_human("abcdefgh", fit_model(synthetic.kernel_table()))
    out = capsys.readouterr().out
    assert "session run [us]" in out and "STREAM triad [GB/s]" in out  # "[us]" is a unit, not a style tag
    assert "after a 0 MiB untimed lead" in out  # the synthetic table has none


def test_the_lead_is_recorded_and_older_tables_load_without_it() -> None:
    """The lead (untimed weights built before the chains) is an eighth of free RAM at most, travels with the table
    through JSON and merges; tables measured before it existed load with a lead of 0; a negative one is refused."""
    from edgefit.kernels import calibrate

    assert calibrate.default_lead_bytes(24 * 2**30) == calibrate.LEAD_BYTES
    assert calibrate.default_lead_bytes(1 * 2**30) == 128 * MIB
    t = dataclasses.replace(synthetic.kernel_table(), lead_bytes=512 * MIB)
    assert KernelTable.from_dict(json.loads(json.dumps(t.to_dict()))).lead_bytes == 512 * MIB
    assert merge_tables(t, dataclasses.replace(t, lead_bytes=0)).lead_bytes == 0
    older = t.to_dict()
    del older["lead_bytes"]
    assert KernelTable.from_dict(older).lead_bytes == 0
    older["lead_bytes"] = -1
    with pytest.raises(PredictError, match="kernel table"):
        KernelTable.from_dict(older)
