"""`edgefit predict` and `edgefit validate --no-build` on a database holding a synthetic kernel table (no
onnxruntime, milliseconds): every field with its basis and interval, the three bases (extrapolated on the host,
measured where this host measured the exact workload or the device's own table is linked, spec when translated),
host independence of the translated answers, the missing-precision error, and the README's examples."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from edgefit import catalog, detect, pipeline, profiles
from edgefit.bench.env import capture_environment
from edgefit.cli import main
from edgefit.errors import PredictError
from edgefit.predict import accounting, synthetic
from edgefit.predict.translate import predict
from edgefit.store import Store
from tests.test_report_fakes import save_synthetic_table, seed_synthetic_db

PI = "raspberry-pi-5-8gb"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "edgefit.sqlite"
    seed_synthetic_db(path, monkeypatch)
    return path


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_predict_json_has_every_prediction_field_with_basis_and_interval(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", "--model", "qwen2.5-0.5b", "--precision", "int4", "--device", PI]
    doc = _json(capsys, [*argv, "--context", "1024", "--json", "--db", str(db)])
    for key in ("decode_s_per_token", "decode_tokens_per_s", "prefill_s", "time_to_first_token_s", "power_w"):
        e = doc[key]
        assert e["low"] < e["value"] < e["high"], key
        assert e["basis"] == "spec"  # another device: this host's table translated with its datasheet figures
    assert doc["decode_tokens_per_s"]["value"] == pytest.approx(1 / doc["decode_s_per_token"]["value"])
    mem = doc["memory"]
    assert mem["kv_cache_bytes"] == accounting.kv_bytes(catalog.load_spec("qwen2.5-0.5b"), 1024)
    assert mem["usable_ram_bytes"] > 7 * 2**30
    assert doc["fits_in_memory"] is True
    assert doc["max_context_that_fits_tokens"] >= 1024
    assert doc["bound"] in ("memory", "compute")
    cal = doc["calibration"]
    assert cal["calibration_precision"] == "int4" and cal["table_role"] == "translated"
    parts = cal["decode_fixed_s"] + max(cal["decode_memory_s"], 0.0)
    assert 0 < parts <= doc["decode_s_per_token"]["value"] * 1.5


def test_host_bases_extrapolated_then_measured_for_the_exact_workload(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["predict", "--precision", "fp32", "--device", "host", "--json", "--db", str(db), "--prompt", "16"]
    # tinyllama was measured here (synthetic ladder) at depths 0/128/512 and prompts 16/64/128
    at_300 = _json(capsys, [*base, "--model", "tinyllama-1.1b", "--context", "300"])
    assert at_300["decode_s_per_token"]["basis"] == "extrapolated"
    at_128 = _json(capsys, [*base, "--model", "tinyllama-1.1b", "--context", "128"])
    assert at_128["decode_s_per_token"]["basis"] == "measured"
    assert at_128["prefill_s"]["basis"] == "measured"
    with Store(db) as store:
        ms = [m for m in store.measurements() if m.model_id == "tinyllama-1.1b" and m.precision == "fp32"]
    dec = next(m for m in ms if m.phase.value == "decode" and m.context_tokens == 128)
    assert at_128["decode_s_per_token"]["value"] == pytest.approx(sorted(dec.samples_s)[len(dec.samples_s) // 2])
    # the prediction at 128 (not quoted) agrees with the measurement: same physics
    unseen = _json(capsys, [*base, "--model", "phi-3-mini-4k", "--context", "128"])
    assert unseen["decode_s_per_token"]["basis"] == "extrapolated"


def test_a_linked_devices_own_table_gives_basis_measured(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = synthetic.KernelPhysics(bandwidth_bytes_per_s=8e9, triad_bytes_per_s=7e9, fp32_macs_per_s=20e9)
    pi_table = synthetic.kernel_table(slow, host_fingerprint="pi-fingerprint", host_id="pi", isa="aarch64",
                                      cores=4)  # fmt: skip
    with Store(db) as store:
        run = store.start_run(capture_environment(), "kernels")
        store.save_kernel_table(run, "pi-fingerprint", pi_table.to_dict())
        store.finish_run(run)
    argv = ["predict", "--model", "qwen2.5-0.5b", "--precision", "fp32", "--device", PI, "--json", "--db", str(db)]
    before = _json(capsys, argv)
    assert before["calibration"]["table_role"] == "same_isa"  # an aarch64 table exists: borrowed, still spec
    assert before["decode_s_per_token"]["basis"] == "spec"
    assert main(["profiles", "link", PI, "pi-fingerprint", "--db", str(db)]) == 0
    after = _json(capsys, argv)
    assert after["calibration"]["table_role"] == "device"
    assert after["decode_s_per_token"]["basis"] == "measured"
    # the Pi's own table, untranslated: the same call priced on the Pi's kernels
    own = pipeline.calibration_from_table(pi_table)
    pi = synthetic.device("pi", cores=4)
    direct = predict(catalog.load_spec("qwen2.5-0.5b"), "fp32", pi, own, context_tokens=2048,
                     prompt_tokens=256, use_measurements=False)  # fmt: skip
    assert after["decode_s_per_token"]["value"] == pytest.approx(direct.decode_s_per_token.value, rel=1e-6)


def test_link_refuses_unknown_device_and_fingerprint(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "link", "no-such-device", "abc", "--db", str(db)]) == 2
    assert "no-such-device" in capsys.readouterr().err
    assert main(["profiles", "link", PI, "not-a-known-host", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "not-a-known-host" in err and "Traceback" not in err
    with Store(db) as store:
        assert store.device_links() == {}


def test_translated_answers_do_not_depend_on_which_host_calibrated() -> None:
    """Two hosts whose kernels are 1.8x apart in every respect (bandwidth, compute, clock) predict the same Pi."""
    a = synthetic.KernelPhysics()
    f = 1.8
    b = synthetic.KernelPhysics(
        bandwidth_bytes_per_s=a.bandwidth_bytes_per_s * f, triad_bytes_per_s=a.triad_bytes_per_s * f,
        fp32_macs_per_s=a.fp32_macs_per_s * f, int8_macs_per_s=a.int8_macs_per_s * f,
        int4_gemv_macs_per_s=a.int4_gemv_macs_per_s * f, int8_gemv_macs_per_s=a.int8_gemv_macs_per_s * f,
        node_s=a.node_s / f, run_s=a.run_s / f,
    )  # fmt: skip
    cal_a = pipeline.calibration_from_table(synthetic.kernel_table(a, clock_hz=3.0e9))
    cal_b = pipeline.calibration_from_table(synthetic.kernel_table(b, clock_hz=3.0e9 * f, host_fingerprint="b"))
    pi = profiles.get_profile(PI)
    for model in ("qwen2.5-0.5b", "llama-3.2-3b"):
        for prec in ("fp32", "int8", "int4"):
            spec = catalog.load_spec(model)
            pa = predict(spec, prec, pi, cal_a, context_tokens=512, prompt_tokens=64)
            pb = predict(spec, prec, pi, cal_b, context_tokens=512, prompt_tokens=64)
            assert pb.decode_s_per_token.value == pytest.approx(pa.decode_s_per_token.value, rel=0.05), (model, prec)
            assert pb.prefill_s.value == pytest.approx(pa.prefill_s.value, rel=0.05), (model, prec)
            # and the host's own answers do differ by the factor
            ha = predict(spec, prec, synthetic.device("host"), cal_a, context_tokens=512, use_measurements=False)
            hb = predict(spec, prec, synthetic.device("host"), cal_b, context_tokens=512, use_measurements=False)
            assert ha.decode_s_per_token.value / hb.decode_s_per_token.value == pytest.approx(f, rel=0.1)


def test_faster_devices_are_predicted_faster_and_bigger_models_slower(db: Path) -> None:
    cal = pipeline.calibration_from_table(synthetic.kernel_table())
    pi, n100 = profiles.get_profile(PI), profiles.get_profile("intel-n100-mini-pc-16gb")
    pi4 = profiles.get_profile("raspberry-pi-4-8gb")
    for prec in ("fp32", "int4"):
        times = [predict(catalog.load_spec(m), prec, pi, cal).decode_s_per_token.value
                 for m in ("smollm2-135m", "qwen2.5-0.5b", "llama-3.2-3b", "llama-3.1-8b")]  # fmt: skip
        assert times == sorted(times)
        spec = catalog.load_spec("llama-3.2-3b")
        t_pi4 = predict(spec, prec, pi4, cal).decode_s_per_token.value
        t_pi5 = predict(spec, prec, pi, cal).decode_s_per_token.value
        assert t_pi4 > t_pi5
        assert predict(spec, prec, n100, cal).decode_s_per_token.value < t_pi4


def test_human_output_names_bases_and_units(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["predict", "--model", "llama-3.1-8b", "--precision", "q4_k_m", "--device", PI]
    assert main([*argv, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "tok/s" in out and "GiB" in out
    assert "spec" in out
    assert "nearest in bits" in out  # GGUF: borrowed int4 calibration is said
    assert "kernel table" in out  # which calibration answered


def test_a_precision_missing_from_the_table_exits_2_naming_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "fp32only.sqlite"
    fp = seed_synthetic_db(db, monkeypatch, ladder=False)
    table = synthetic.kernel_table(host_fingerprint=fp)
    fp32_only = dataclasses.replace(table, kernels=tuple(k for k in table.kernels if k.spec.precision == "fp32"
                                                         or k.spec.kind != "linear"))  # fmt: skip
    with Store(db) as store:
        run = store.start_run(capture_environment(), "kernels")
        store.save_kernel_table(run, fp, fp32_only.to_dict())
        store.finish_run(run)
    argv = ["predict", "--model", "qwen2.5-0.5b", "--precision", "int4", "--device", "host", "--db", str(db)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "edgefit calibrate --precision int4" in err and "Traceback" not in err
    assert detect.host_fingerprint() == fp


def test_validate_no_build_backtests_the_stored_ladder_and_stores_the_result(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _json(capsys, ["validate", "--no-build", "--json", "--db", str(db)])
    rungs = [c for c in doc["comparisons"] if c["kind"] == "rung"]
    assert {c["figure"] for c in rungs} == {"decode", "prefill", "peak_rss"}
    decode = [c for c in rungs if c["figure"] == "decode"]
    assert max(abs(c["error_rel"]) for c in decode) < 0.1  # synthetic truth from the table's own physics
    with Store(db) as store:
        saved = store.latest_validation()
    assert saved is not None and saved["comparisons"] == doc["comparisons"]


def _readme_commands(section: str) -> list[list[str]]:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    text = readme.split(f"### {section}", 1)[1].split("\n### ", 1)[0]
    cmds = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("edgefit "):
            cmds.append(shlex.split(line)[1:])
    return cmds


def test_readme_prediction_examples_run(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cmds = _readme_commands("Prediction")
    assert len(cmds) >= 4
    ran = 0
    for argv in cmds:
        if argv[0] in ("validate", "calibrate") and "--no-build" not in argv:
            continue  # measures real kernels or models for minutes: exercised by those commands' own tests
        assert main([*argv, "--db", str(db)]) == 0, argv
        capsys.readouterr()
        ran += 1
    assert ran >= 3


def test_arm_without_dot_products_translates_int_kernels_by_fp32() -> None:
    cal = pipeline.calibration_from_table(synthetic.kernel_table())
    spec = catalog.load_spec("qwen2.5-0.5b")
    pi4 = predict(spec, "int4", profiles.get_profile("raspberry-pi-4-8gb"), cal)
    host_int8_over_fp32 = cal.host.int8_gemm_macs_per_s / cal.host.fp32_gemm_macs_per_s
    # the host's int8 kernels ran at its int8 rate; on the Pi 4 they run at its fp32 rate
    assert pi4.calibration["translation_int8"] == pytest.approx(
        float(pi4.calibration["translation_fp32"]) * host_int8_over_fp32
    )
    assert any("asimddp" in n for n in pi4.notes)
    pi5 = predict(spec, "int4", profiles.get_profile(PI), cal)  # has asimddp: its own int8 figure
    assert not any("asimddp" in n for n in pi5.notes)


def test_a_host_whose_tables_disagree_widens_its_own_intervals(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["predict", "--model", "phi-3-mini-4k", "--precision", "fp32", "--device", "host", "--json", "--db", str(db)]
    one = _json(capsys, argv)["decode_s_per_token"]
    slower = synthetic.KernelPhysics(bandwidth_bytes_per_s=22e9 / 1.3)
    with Store(db) as store:
        run = store.start_run(capture_environment(), "kernels")
        store.save_kernel_table(
            run,
            detect.host_fingerprint(),
            synthetic.kernel_table(slower, host_fingerprint=detect.host_fingerprint()).to_dict(),
        )
        store.finish_run(run)
    doc = _json(capsys, argv)
    two = doc["decode_s_per_token"]
    assert two["value"] > one["value"]  # the latest table answers
    assert (two["high"] / two["value"]) > (one["high"] / one["value"]) + 0.2  # ~30 % drift, in quadrature
    assert any("differ by 30%" in n for n in doc["notes"])


def test_validate_brackets_the_models_with_two_fresh_tables(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgefit import ladder as ladders
    from edgefit.commands import validate as validate_cmd
    from edgefit.kernels import calibrate as kcal

    order: list[str] = []

    def fake_calibrate(db_path: Path, host: object, fingerprint: str, **kw: object) -> tuple[str, object]:
        order.append("calibrate")
        table = synthetic.kernel_table(host_fingerprint=fingerprint)
        return save_synthetic_table(db_path, fingerprint, table), table

    def fake_measure(db_path: Path, **kw: object) -> tuple[list, list, dict, list, list]:
        order.append("models")
        specs = [r.spec for r in ladders.load_ladder("quick")]
        return synthetic.kernel_measurements(specs, ("fp32",), synthetic.KernelPhysics()), [], {}, [], []

    monkeypatch.setattr(kcal, "calibrate_and_store", fake_calibrate)
    monkeypatch.setattr(validate_cmd, "measure_fresh", fake_measure)
    with Store(db) as store:
        before = len(store.kernel_tables())
    doc = _json(capsys, ["validate", "--json", "--random", "0", "--precision", "fp32", "--db", str(db)])
    assert order == ["calibrate", "models", "calibrate"]  # the models are bracketed by two tables
    with Store(db) as store:
        assert len(store.kernel_tables()) == before + 2
    assert doc["comparisons"]
    assert any("just before and" in n for n in doc["notes"])
    # the two tables are the same synthetic host: the drift between them is measured, and zero
    (drift,) = [n for n in doc["notes"] if n.startswith("this host moved between the kernel tables")]
    assert "fp32 GEMV streaming +0 %" in drift
    order.clear()
    _json(capsys, ["validate", "--json", "--random", "0", "--precision", "fp32", "--reuse-table", "--db", str(db)])
    assert order == ["models"]


def test_a_stored_validation_sets_the_composition_part_of_the_interval(db: Path) -> None:
    argv_model = catalog.load_spec("phi-3-mini-4k")
    before = pipeline.host_state(db, calibrate_if_missing=False)
    p0 = predict(argv_model, "fp32", before.host, before.calibration, use_measurements=False)
    summary = {"random/decode/fp32": {"median_abs_error": 0.25}, "held_out/decode/int4": {"median_abs_error": 0.1},
               "rung/decode/fp32": {"median_abs_error": 0.9}}  # fmt: skip
    with Store(db) as store:
        store.save_validation({"summary": summary, "comparisons": []}, host_fingerprint=detect.host_fingerprint())
    after = pipeline.host_state(db, calibrate_if_missing=False)
    assert after.calibration.composition_rel == {"decode": 0.25}  # rungs are not held out
    p1 = predict(argv_model, "fp32", after.host, after.calibration, use_measurements=False)
    assert p1.decode_s_per_token.value == pytest.approx(p0.decode_s_per_token.value)
    assert p1.decode_s_per_token.high / p1.decode_s_per_token.value - 1 > 0.25
    assert p0.decode_s_per_token.high / p0.decode_s_per_token.value - 1 < 0.2


def test_merged_tables_keep_both_calibrations_rounds() -> None:
    from edgefit.kernels.table import merge_tables

    fast = synthetic.kernel_table(rounds=6, host_fingerprint="h")
    slow = synthetic.kernel_table(synthetic.KernelPhysics(bandwidth_bytes_per_s=11e9), rounds=6, host_fingerprint="h")
    merged = merge_tables(fast, slow)
    assert merged.rounds == 12 and len(merged.kernels) == len(slow.kernels)
    k = next(k for k in merged.kernels if k.spec.kind == "linear")
    assert len(k.cold_s) == 12
    other = synthetic.kernel_table(host_fingerprint="another")
    with pytest.raises(PredictError, match="two different hosts"):
        merge_tables(fast, other)


def test_the_interval_widens_with_the_attention_share_of_a_deep_cache(db: Path) -> None:
    """Attention on a layout the table did not time carries ATTENTION_LAYOUT x its share of the decode: at 4096
    tokens of cache attention is a third or more of a small model's decode (synthetic host), at 16 almost none."""
    from edgefit.predict import translate

    state = pipeline.host_state(db, calibrate_if_missing=False)
    spec = catalog.load_spec("smollm2-1.7b")  # 32 kv heads: its cache is large
    rel = {}
    for ctx in (16, 4096):
        p = predict(spec, "int4", state.host, state.calibration, context_tokens=ctx, use_measurements=False)
        d = p.decode_s_per_token
        share = p.calibration["decode_attention_s"] / d.value
        rel[ctx] = (d.high / d.value - 1, share)
    (shallow, share16), (deep, share4k) = rel[16], rel[4096]
    assert share16 < 0.1 < 0.3 < share4k
    assert deep > shallow
    # the attention part alone reaches at least ATTENTION_LAYOUT x its share (quadrature with the other parts)
    assert deep >= translate.ATTENTION_LAYOUT * share4k - 1e-9
