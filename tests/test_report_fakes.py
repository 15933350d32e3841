"""Builders for the report/verdict tests: devices, model specs and predictions in one line, no disk, no
predictor. Imported by tests/test_verdict*.py, test_procurement*.py, test_report*.py, test_fit_cli*.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefit.catalog import ModelSpec
from edgefit.predict.prediction import Basis, Estimate, MemoryBreakdown, Prediction
from edgefit.profiles import ComputeEngine, CpuCluster, DeviceProfile, Figure
from edgefit.report.data import ReportData, ScalingPoint
from edgefit.verdict import Verdict, Workload, judge

GIB = 2**30
SRC = "test fixture"


def fig(value: float, unit: str) -> Figure:
    return Figure(value=value, unit=unit, source=SRC)


def device(
    device_id: str = "board-8gb",
    *,
    name: str | None = None,
    usable_gib: float = 7.0,
    price_usd: float | None = 80.0,
    budget_w: float | None = None,
    load_w: float = 8.0,
) -> DeviceProfile:
    return DeviceProfile(
        id=device_id,
        name=name or device_id.replace("-", " ").title(),
        kind="sbc",
        cpu_model="Test CPU",
        isa="aarch64",
        cpu_features=("neon",),
        clusters=(CpuCluster("Cortex-A76", 4, fig(2.4e9, "hz")),),
        ram=fig((usable_gib + 0.5) * GIB, "bytes"),
        usable_ram=Figure(value=usable_gib * GIB, unit="bytes", estimated=True, note="fixture"),
        memory_type="LPDDR4X",
        bandwidth=fig(17e9, "bytes_per_s"),
        engines=(ComputeEngine("cpu", "CPUExecutionProvider", peak_fp32_flops_per_s=fig(150e9, "flops_per_s")),),
        idle_power=fig(2.5, "w"),
        load_power=fig(load_w, "w"),
        max_power=fig(max(12.0, load_w * 1.25), "w"),  # the loader's rule: idle <= load <= max
        power_budget=fig(budget_w, "w") if budget_w is not None else None,
        price=fig(price_usd, "usd") if price_usd is not None else None,
        price_date="2024-10" if price_usd is not None else None,
    )


def spec(
    model_id: str = "tiny-1b",
    *,
    hidden: int = 2048,
    layers: int = 16,
    vocab: int = 32000,
    intermediate: int = 5632,
    open_weights: bool = True,
    name: str | None = None,
) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        name=name or model_id,
        family="llama",
        hidden_size=hidden,
        num_layers=layers,
        num_heads=hidden // 64,
        num_kv_heads=8 if (hidden // 64) % 8 == 0 else 2,
        head_dim=64,
        intermediate_size=intermediate,
        vocab_size=vocab,
        tied_embeddings=False,
        open_weights=open_weights,
    )


def est(value: float, spread: float = 0.1, basis: Basis = Basis.EXTRAPOLATED) -> Estimate:
    return Estimate(value, value * (1 - spread), value * (1 + spread), basis)


def prediction(
    model_id: str = "tiny-1b",
    precision: str = "int8",
    device_id: str = "board-8gb",
    *,
    total_gib: float = 2.0,
    usable_gib: float = 7.0,
    tps: float = 10.0,
    ttft_s: float = 1.0,
    power_w: float = 8.0,
    context_tokens: int = 4096,
) -> Prediction:
    total = total_gib * GIB
    kv = int(total * 0.1)
    runtime = 50 * 2**20
    weights = int(total) - kv - runtime
    return Prediction(
        model_id=model_id,
        precision=precision,
        device_id=device_id,
        context_tokens=context_tokens,
        prompt_tokens=512,
        threads=4,
        decode_s_per_token=est(1.0 / tps),
        decode_tokens_per_s=est(tps),
        prefill_s=est(ttft_s * 0.9),
        time_to_first_token_s=est(ttft_s),
        memory=MemoryBreakdown(
            weights_bytes=weights,
            kv_cache_bytes=kv,
            activations_bytes=0,
            runtime_bytes=runtime,
            total=est(total, 0.05, Basis.SPEC),
            usable_ram_bytes=int(usable_gib * GIB),
        ),
        power_w=est(power_w, 0.2, Basis.SPEC),
        energy_per_token_j=est(power_w / tps, 0.2, Basis.SPEC),
        bound="memory",
        calibration={"bandwidth_efficiency": 0.85, "source_host": "fixture"},
    )


def verdict(**kwargs: object) -> Verdict:
    """Judge a prediction built from ``kwargs`` on a matching device and spec under the default workload."""
    p = prediction(**kwargs)  # type: ignore[arg-type]
    return judge(p, spec(p.model_id), device(p.device_id, usable_gib=p.memory.usable_ram_bytes / GIB), Workload())


# --- a fixed report: three models, three devices, two precisions; numbers from a toy memory/speed model ----

FIXED_DEVICES = (
    device("small-board-2gb", name="Small Board (2 GB)", usable_gib=1.6, price_usd=45.0, load_w=5.0),
    device("mid-board-8gb", name="Mid Board (8 GB)", usable_gib=7.3, price_usd=80.0, load_w=9.0),
    device("big-box-32gb", name="Big Box (32 GB)", usable_gib=29.0, price_usd=600.0, load_w=35.0, budget_w=30.0),
)
FIXED_SPECS = (
    spec("toy-0.5b", hidden=896, layers=24, vocab=151936, intermediate=4864, name="Toy 0.5B"),
    spec("toy-8b", hidden=4096, layers=32, vocab=128256, intermediate=14336, name="Toy 8B"),
    spec("toy-70b", hidden=8192, layers=80, vocab=128256, intermediate=28672, name="Toy 70B"),
    spec("closed-8b", hidden=4096, layers=32, vocab=128256, intermediate=14336, open_weights=False, name="Closed 8B"),
)
_PREPACK = {"fp32": 1.0, "int8": 1.05, "int4": 1.27}
_BANDWIDTH = {"small-board-2gb": 4e9, "mid-board-8gb": 10e9, "big-box-32gb": 60e9}


def fixed_prediction(s: ModelSpec, precision: str, d: DeviceProfile) -> Prediction:
    """A deterministic toy predictor: memory = stored weights x prepack + KV + runtime; speed = bandwidth / bytes."""
    from edgefit.catalog import weight_bytes
    from edgefit.verdict import model_params

    params = model_params(s)
    # stored bytes, prepacked (int4 x1.27, int8 x1.05), plus 5 %: above the verdict's memory floor
    weights = weight_bytes(s, precision) * _PREPACK[precision] * 1.05
    kv = 4096 * s.num_layers * 2 * s.num_kv_heads * s.head_dim * 4
    total = weights + kv + 60 * 2**20
    tps = _BANDWIDTH.get(d.id, 5e9) / weights
    return prediction(
        s.id,
        precision,
        d.id,
        total_gib=total / GIB,
        usable_gib=d.usable_ram_bytes / GIB,
        tps=tps,
        ttft_s=512 * 2 * params / 50e9,
        power_w=d.load_power_w,
    )


def fixed_report(devices: tuple[DeviceProfile, ...] = FIXED_DEVICES) -> ReportData:
    from edgefit.report.data import collect_verdicts

    workload = Workload()
    precisions = ("fp32", "int8", "int4")
    verdicts, skipped = collect_verdicts(FIXED_SPECS, devices, precisions, workload, fixed_prediction)
    scaling = (
        ScalingPoint("rung-a", "int8", 30_000_000, 36_000_000, 0.004, 0.0039, 0.0041, "measured"),
        ScalingPoint("rung-b", "int8", 120_000_000, 144_000_000, 0.012, 0.0118, 0.0122, "measured"),
        ScalingPoint("Toy 8B", "int8", 8_000_000_000, 9_600_000_000, 0.45, 0.38, 0.52, "extrapolated"),
    )
    return ReportData(
        workload=workload,
        devices=devices,
        specs=FIXED_SPECS,
        precisions=precisions,
        verdicts=verdicts,
        scaling=scaling,
        validation={
            "schema_version": 1,
            "created_at": "2026-01-01T00:00:00Z",
            "summary": {
                "held_out/decode/int4": {
                    "n": 4,
                    "median_abs_error": 0.065,
                    "max_abs_error": 0.112,
                    "within_interval": 0.75,
                    "meets_target": True,
                },
                "rung/decode/fp32": {"n": 3, "median_abs_error": 0.04, "max_abs_error": 0.07, "within_interval": 1.0},
                "rung/peak_rss/fp32": {"n": 3, "median_abs_error": 0.02, "max_abs_error": 0.03, "within_interval": 1.0},
            },
            "kernel_errors": {
                "gemv/fp32/cold": {"n": 4.0, "median_abs_error": 0.05, "max_abs_error": 0.09},
                "gemm/fp32/m16": {"n": 1.0, "median_abs_error": 0.03, "max_abs_error": 0.03},
            },
        },
        provenance={
            "generated_at": "2026-01-01T00:00:00Z",
            "edgefit_version": "0.0.0-golden",
            "onnxruntime_version": "0.0.0",
            "host_fingerprint": "golden-host",
            "calibration": {"int8": {"bandwidth_efficiency": 0.85, "overhead_s": 0.0002}},
        },
        skipped=skipped,
    )


# --- a results database seeded with synthetic measurements (the prediction stage's fake seam) -------------

SYNTHETIC_LADDER = ("smollm2-135m", "smollm2-360m", "qwen2.5-0.5b", "tinyllama-1.1b")


def save_synthetic_table(db_path: object, fingerprint: str, table: object) -> str:
    """Store ``table`` (a KernelTable) as a finished "kernels" run of ``fingerprint`` in ``db_path``; its run id."""
    from pathlib import Path

    from edgefit.bench.env import capture_environment
    from edgefit.store import Store

    with Store(Path(str(db_path))) as store:
        run = store.start_run(capture_environment(), "kernels")
        store.save_kernel_table(run, fingerprint, table.to_dict())  # type: ignore[attr-defined]
        store.finish_run(run)
    return run


def seed_synthetic_db(db_path: object, monkeypatch: object, *, ladder: bool = True) -> str:
    """Store a synthetic kernel table (and, with ``ladder``, synthetic ladder measurements for the memory model)
    under this host's fingerprint in ``db_path`` and make ``detect.host_profile()`` return a synthetic 2-core host
    (no probes). Returns the fingerprint."""
    import dataclasses
    from pathlib import Path

    from edgefit import catalog, detect
    from edgefit.bench.env import capture_environment
    from edgefit.predict import synthetic
    from edgefit.store import Store

    monkeypatch.setattr(detect, "host_profile", lambda *a, **k: synthetic.device("host"))  # type: ignore[attr-defined]
    fingerprint = detect.host_fingerprint()
    from edgefit import ladder as ladders

    # the quick ladder's rungs (what `validate --no-build` back-tests) and catalog models measured in the same run
    specs = [r.spec for r in ladders.load_ladder("quick")] + [catalog.load_spec(m) for m in SYNTHETIC_LADDER]
    save_synthetic_table(db_path, fingerprint, synthetic.kernel_table(host_fingerprint=fingerprint))
    with Store(Path(str(db_path))) as store:
        if ladder:
            run_id = store.start_run(capture_environment(), "ladder:quick")
            for prec, rss_k in (("fp32", 1.0), ("int8", 1.05), ("int4", 1.27)):
                for m in synthetic.kernel_measurements(specs, (prec,), synthetic.KernelPhysics(), rss_k=rss_k):
                    store.add_measurement(dataclasses.replace(m, run_id=run_id, host_fingerprint=fingerprint))
            store.finish_run(run_id)
    return fingerprint


# --- the fakes themselves: every builder above must produce what the real stages would accept ---------------
# (the builders are shared by many test files; a fake that drifts from the real contracts would make those
# tests prove nothing, so these check each fake against the real loader, judge, accounting and store)


def test_fake_device_passes_the_real_profile_loader(tmp_path: object) -> None:
    from pathlib import Path

    from edgefit.profile_toml import profile_to_toml

    for d in (device(), *FIXED_DEVICES):
        path = Path(str(tmp_path)) / f"{d.id}.toml"
        path.write_text(profile_to_toml(d), encoding="utf-8")
        loaded = DeviceProfile.from_toml(path)
        assert (loaded.id, loaded.usable_ram_bytes, loaded.price_usd) == (d.id, d.usable_ram_bytes, d.price_usd)
        assert loaded.load_power_w == d.load_power_w and loaded.cpu_cores == d.cpu_cores


def test_verdict_helper_follows_the_numbers_it_is_given() -> None:
    from edgefit.verdict import VerdictKind

    assert verdict(total_gib=2.0, usable_gib=7.0, tps=20.0).kind.ok
    assert verdict(total_gib=8.0, usable_gib=7.0, tps=20.0).kind is VerdictKind.DOES_NOT_FIT
    assert verdict(total_gib=2.0, usable_gib=7.0, tps=0.5).kind is VerdictKind.TOO_SLOW


def test_fixed_predictions_respect_the_memory_floor_and_physics() -> None:
    from edgefit.catalog import kv_cache_bytes_per_token, weight_bytes

    for s in FIXED_SPECS:
        for p in ("fp32", "int8", "int4"):
            for d in FIXED_DEVICES:
                pred = fixed_prediction(s, p, d)
                floor = weight_bytes(s, p) + kv_cache_bytes_per_token(s) * 4096
                assert pred.memory.total.value >= floor, (s.id, p, d.id)
                assert pred.decode_tokens_per_s.low <= pred.decode_tokens_per_s.value
    # fewer bits read per token -> faster on the same device (the toy model's one law)
    big = FIXED_SPECS[1]
    rates = [fixed_prediction(big, p, FIXED_DEVICES[1]).decode_tokens_per_s.value for p in ("fp32", "int8", "int4")]
    assert rates == sorted(rates)


def test_fixed_report_covers_every_combination() -> None:
    data = fixed_report()
    judged = {(v.prediction.model_id, v.prediction.precision, v.prediction.device_id) for v in data.verdicts}
    skipped = {(s.model_id, s.precision, s.device_id) for s in data.skipped}
    expected = {(s.id, p, d.id) for s in FIXED_SPECS for p in data.precisions for d in FIXED_DEVICES}
    assert judged | skipped == expected


def test_seed_synthetic_db_stores_a_kernel_table_and_one_finished_ladder_run(
    tmp_path: object, monkeypatch: object
) -> None:
    from pathlib import Path

    from edgefit.kernels.table import KernelTable
    from edgefit.store import Store

    db = Path(str(tmp_path)) / "seed.sqlite"
    fingerprint = seed_synthetic_db(db, monkeypatch)
    with Store(db) as store:
        kernels, run = store.runs()
        ms = store.measurements(host_fingerprint=fingerprint)
        ((table_run, table_host, table),) = store.kernel_tables()
    assert kernels.kind == "kernels" and table_run == kernels.id and table_host == fingerprint
    assert KernelTable.from_dict(table).host.host_fingerprint == fingerprint  # the real loader accepts it
    assert run.status == "finished" and run.kind == "ladder:quick"
    from edgefit import ladder

    assert {m.model_id for m in ms} == set(SYNTHETIC_LADDER) | {r.spec.id for r in ladder.load_ladder("quick")}
    assert {m.precision for m in ms} == {"fp32", "int8", "int4"}


def fake_kernel_calibration(monkeypatch: Any) -> list[Path]:
    """Replace ``calibrate_and_store`` with one that stores the synthetic kernel table (what a fresh database must
    measure first; the real one takes ~40 s and is `edgefit calibrate`'s own test). Returns the databases it was
    called with, in order."""
    from edgefit.bench.env import capture_environment
    from edgefit.kernels import calibrate
    from edgefit.predict import synthetic
    from edgefit.store import Store

    calls: list[Path] = []

    def fake_calibrate(db_path: Path, host: object, fingerprint: str, progress: object = None) -> tuple[str, object]:
        calls.append(Path(db_path))
        table = synthetic.kernel_table(host_fingerprint=fingerprint)
        with Store(Path(db_path)) as store:
            run_id = store.start_run(capture_environment(), "kernels")
            store.save_kernel_table(run_id, fingerprint, table.to_dict())
            store.finish_run(run_id)
        return run_id, table

    monkeypatch.setattr(calibrate, "calibrate_and_store", fake_calibrate)
    return calls
