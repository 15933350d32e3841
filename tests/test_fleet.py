"""`edgefit fleet` against real SSH hosts on this machine (tests/fleet_hosts.py): three sshd hosts and one that
never answers, one command.

```
 alpha    edgefit_device=raspberry-pi-5-8gb   its kernel table (calibrate, fp32) and bench imported, linked:
                                              fit and report then show the Pi 5 as measured (M)
 small    no edgefit_device, 1.5 GiB cgroup   tiny model measured, the 1.6 GiB "balloon" model killed: out of memory;
                                              its own `edgefit detect --save` profile fetched back as small.toml
 stopped  killed while its bench runs         connection lost; measured on the second run once it is back
 dead     listens, never says a word          unreachable (SSH banner timeout)
```

Only alpha runs `edgefit calibrate` (the others have edgefit_calibrate=false): one calibration is what the
measured-device path needs, and three at once on 2 cores would double the test's time. The hosts are offline:
edgefit's dependencies come from a wheelhouse built here once (`pip wheel`, from the same package index the test
venv was installed from) and passed as `--wheels`; each host installs them into its own venv (`--no-compile`: ~12 s
each). The benchmark is two user models, no ladder: `tiny.onnx` (a 64x64 MatMul) and `balloon.onnx` (Expand to 440 M
floats, 1.64 GiB at run time, a 168-byte file that passes the memory guard)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from fleet_hosts import SshHost, SshLab
from onnx import TensorProto, helper, numpy_helper

from edgefit import __version__
from edgefit.cli import main
from edgefit.profiles import DeviceProfile
from edgefit.store import Store

REPO = Path(__file__).resolve().parents[1]
HOST_PYTHON = "/usr/bin/python3"
GIB = 2**30


def _need_lab() -> None:
    """Skip, saying why, where this machine cannot host the SSH lab (not root, no sshd, no /usr/bin/python3: .ci/run
    installs openssh-server when it can). ansible-core comes with the test extra: missing, it is a failure."""
    if os.environ.get("EDGEFIT_FLEET_SKIP"):  # .ci/run could not install openssh-server: it says why
        pytest.skip(os.environ["EDGEFIT_FLEET_SKIP"])
    why = SshLab.unavailable()
    if why is None and not Path(HOST_PYTHON).exists():
        why = f"{HOST_PYTHON} (the hosts' Python) not found"
    if why is not None:
        pytest.skip(f"fleet test hosts cannot run here: {why}")
    try:
        import ansible  # noqa: F401
    except ImportError:
        pytest.fail("ansible-core not installed: the test extra brings it (pip install -e '.[test]')")


def _tiny(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny", [x], [y], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _balloon(path: Path, floats: int) -> Path:
    """Expand a graph input to ``floats`` elements, then sum them: the big tensor exists only at run time (an
    Expand of an input is not constant-folded), so the file is tiny and the memory guard lets it through."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    shape = numpy_helper.from_array(np.array([floats], dtype=np.int64), "shape")
    axes = numpy_helper.from_array(np.array([0], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("Expand", ["x", "shape"], ["big"]),
        helper.make_node("ReduceSum", ["big", "axes"], ["y"], keepdims=1),
    ]
    g = helper.make_graph(nodes, "balloon", [x], [y], [shape, axes])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """edgefit's dependencies as wheels for the hosts' Python (the same interpreter version as this one)."""
    _need_lab()
    host_ver = subprocess.run(
        [HOST_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
    ).stdout.strip()
    if host_ver != "{}.{}".format(*sys.version_info[:2]):
        pytest.skip(f"{HOST_PYTHON} is Python {host_ver}, this is {sys.version_info[:2]}: wheels would not match")
    out = tmp_path_factory.mktemp("wheelhouse")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(f"building the wheelhouse failed: {proc.stderr[-1000:]}")
    for w in out.glob("edgefit-*.whl"):
        w.unlink()  # `fleet bench` builds and sends its own
    return out


class Fleet:
    def __init__(self, lab: SshLab, hosts: dict[str, SshHost], dead: tuple[str, int]) -> None:
        self.lab, self.hosts = lab, hosts
        self.inventory = lab.root / "inventory.ini"
        lines = ["[boards]"]
        devices = {"alpha": "raspberry-pi-5-8gb", "stopped": "nvidia-jetson-orin-nano-8gb"}
        for name, h in hosts.items():
            dev = f" edgefit_device={devices[name]}" if name in devices else ""
            dev += "" if name == "alpha" else " edgefit_calibrate=false"  # one calibration keeps the test short
            lines.append(f"{name} ansible_host={h.address} ansible_port={h.port} ansible_user={h.user}{dev}")
        lines.append(f"dead ansible_host={dead[0]} ansible_port={dead[1]} ansible_user=nobody")
        lines += [
            "",
            "[boards:vars]",
            f"ansible_ssh_private_key_file={lab.key}",
            f"ansible_ssh_common_args=-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes",
            f"edgefit_python={HOST_PYTHON}",
            "",
        ]
        self.inventory.write_text("\n".join(lines))


@pytest.fixture(scope="module")
def fleet(wheelhouse: Path) -> Iterator[Fleet]:
    lab = SshLab()
    try:
        hosts = {
            "alpha": lab.add_host("alpha"),
            "small": lab.add_host("small", memory_limit_bytes=int(1.5 * GIB)),
            "stopped": lab.add_host("stopped"),
        }
        yield Fleet(lab, hosts, lab.add_silent())
    finally:
        lab.close()  # sshd, every process of the test users, the users, cgroups: also after a failure


def _run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    rc = main(argv)
    out = capsys.readouterr().out
    return rc, json.loads(out)


def _kill_when_benching(host: SshHost, killed: dict[str, float], deadline_s: float = 240.0) -> None:
    """Stop ``host`` the moment a bench worker runs there (bounded wait)."""
    t_end = time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        if host.running("edgefit.bench.worker"):
            host.kill()
            killed["at"] = time.monotonic()
            return
        time.sleep(0.05)


def test_fleet_bench_real_hosts(
    fleet: Fleet,
    wheelhouse: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "controller.sqlite"
    out = tmp_path / "fleet-out"
    tiny = _tiny(tmp_path / "tiny.onnx")
    balloon = _balloon(tmp_path / "balloon.onnx", 440_000_000)  # 1.64 GiB of float32 at run time
    argv = [
        "fleet", "bench", str(fleet.inventory), "--wheels", str(wheelhouse), "--timeout", "4", "--forks", "5",
        "--detect-probe-seconds", "1", "--db", str(db), "--out", str(out), "--json",
        "--calibrate-precision", "fp32", "--calibrate-budget-s", "0.1",
        "--", str(tiny), str(balloon), "--budget-s", "0.1",
    ]  # fmt: skip

    killed: dict[str, float] = {}
    killer = threading.Thread(target=_kill_when_benching, args=(fleet.hosts["stopped"], killed), daemon=True)
    killer.start()
    t0 = time.monotonic()
    rc, res = _run_json(argv, capsys)
    first_s = time.monotonic() - t0
    killer.join(timeout=5)
    by = {h["host"]: h for h in res["hosts"]}
    assert rc == 1, res  # some hosts did not deliver
    assert killed, "the 'stopped' host never started its bench"

    alpha = by["alpha"]
    assert alpha["status"] == "ok" and alpha["device_id"] == "raspberry-pi-5-8gb", alpha
    # the bench's run (load + run of each model) and the calibration's run with its kernel table, carried home
    assert alpha["runs_added"] == 2 and alpha["measurements_added"] >= 4 and alpha["kernel_tables"] == 1, alpha
    assert {m["status"] for m in alpha["models"]} == {"measured"}, alpha
    assert alpha["python_version"].startswith("3.")

    small = by["small"]
    # small has no edgefit_device: its own `edgefit detect --save`, fetched back and named after the host
    profile = DeviceProfile.from_toml(Path(small["profile_path"]))
    assert profile.id == "small" and small["device_id"] == "small" and small["kernel_tables"] == 0
    assert small["runs_added"] == 1 and small["measurements_added"] >= 2  # tiny.onnx measured: imported
    memory = fleet.hosts["small"].memory
    if memory is None:  # the out-of-memory case cannot be made here; everything else is still checked
        warnings.warn("no memory cgroup could be made here: the out-of-memory case was not checked", stacklevel=1)
        assert small["status"] == "ok", small
    else:
        assert small["status"] == "partial" and small["problem"] == "out_of_memory", small
        assert "balloon.onnx" in small["reason"]
        statuses = {m["model_id"]: m["status"] for m in small["models"]}
        assert statuses == {"file:tiny.onnx": "measured", "file:balloon.onnx": "failed"}
        kills = memory.oom_kills()
        assert kills is None or kills >= 1, f"{memory.kind}: no OOM kill recorded"

    stopped = by["stopped"]
    assert stopped["status"] == "failed" and stopped["problem"] == "connection_lost", stopped
    assert stopped["stage"] == "bench" and stopped["measurements_added"] == 0
    dead = by["dead"]
    assert dead["status"] == "unreachable" and "timed out" in dead["reason"], dead

    with Store(db) as store:
        links = store.device_links()
        fps = {name: by[name]["host_fingerprints"] for name in ("alpha", "small")}
        assert all(len(v) == 1 for v in fps.values()) and fps["alpha"] != fps["small"]  # two hosts, two fingerprints
        assert links["raspberry-pi-5-8gb"] == tuple(fps["alpha"])
        assert links["small"] == tuple(fps["small"])
        per_host = {name: len(store.measurements(host_fingerprint=fps[name][0])) for name in fps}
        tables = {name: len(store.kernel_tables(host_fingerprint=fps[name][0])) for name in fps}
    assert per_host["alpha"] == by["alpha"]["measurements_added"]
    assert tables == {"alpha": 1, "small": 0}

    # The stopped host comes back; the same command again: it measures that host only and adds nothing elsewhere.
    fleet.hosts["stopped"].start()
    t1 = time.monotonic()
    rc2, res2 = _run_json(argv, capsys)
    second_s = time.monotonic() - t1
    by2 = {h["host"]: h for h in res2["hosts"]}
    assert rc2 == 1  # dead is still dead
    for name in ("alpha", "small"):
        h = by2[name]
        assert h["reused"] and h["runs_added"] == 0 and h["measurements_added"] == 0, h
        assert h["status"] == by[name]["status"]  # the earlier outcome, reported again
    assert by2["small"]["problem"] == by["small"]["problem"]
    assert by2["stopped"]["measurements_added"] >= 2 and by2["stopped"]["problem"] is None, by2["stopped"]
    assert len({by2["stopped"]["host_fingerprints"][0], fps["alpha"][0], fps["small"][0]}) == 3  # three hosts
    assert by2["dead"]["status"] == "unreachable"

    # fleet status: cheap, per host
    rc3, st = _run_json(
        ["fleet", "status", str(fleet.inventory), "--timeout", "4", "--db", str(db), "--out", str(out), "--json"],
        capsys,
    )
    sby = {h["host"]: h for h in st["hosts"]}
    assert rc3 == 0
    assert sby["alpha"]["reachable"] and sby["alpha"]["edgefit_version"] == __version__
    assert sby["alpha"]["host_fingerprint"] == fps["alpha"][0]
    assert sby["alpha"]["last_run_imported"]["id"] == by["alpha"]["run_ids"][0]
    assert sby["alpha"]["linked_devices"] == ["raspberry-pi-5-8gb"]
    assert sby["alpha"]["kernel_tables_imported"] == 1 and sby["small"]["kernel_tables_imported"] == 0
    assert sby["stopped"]["runs_on_host"] >= 2  # the killed run (kept there) and the finished one
    assert not sby["dead"]["reachable"] and sby["dead"]["edgefit_version"] is None

    # fit and report: the Pi profile is priced with alpha's own kernel table (basis M). This controller's own table
    # is a synthetic one (tests/test_report_fakes): calibrating here would only slow the test down.
    from test_report_fakes import seed_synthetic_db

    seed_synthetic_db(db, monkeypatch, ladder=False)
    pick = ["--model", "smollm2-135m", "--precision", "fp32", "--db", str(db), "--json"]
    _, fit = _run_json(["fit", "--device", "raspberry-pi-5-8gb", "--device", "raspberry-pi-4-4gb", *pick], capsys)
    rows = {r["device_id"]: r for r in fit["results"]}
    assert rows["raspberry-pi-5-8gb"]["decode_tokens_per_s"]["basis"] == "measured", rows
    assert rows["raspberry-pi-4-4gb"]["decode_tokens_per_s"]["basis"] == "spec"  # never measured: its datasheet
    rep = tmp_path / "report"
    argv5 = ["report", "--device", "raspberry-pi-5-8gb", "--format", "md,json", "--out", str(rep), *pick[:2]]
    rc5, doc = _run_json([*argv5, "--db", str(db), "--json"], capsys)
    assert rc5 == 0 and doc["measured_devices"] == ["raspberry-pi-5-8gb"]
    checks = json.loads((rep / "results.json").read_text())["device_checks"]
    assert {c["table_host_fingerprint"] for c in checks} == {fps["alpha"][0]}
    assert "raspberry-pi-5-8gb: on the device vs predicted from its datasheet" in (rep / "report.md").read_text()
    print(f"fleet bench: first run {first_s:.1f} s, second run {second_s:.1f} s, status {st['wall_s']:.1f} s")


# --- a linked device in fit and report (no SSH: a synthetic table stands in for the one a fleet run imports) ---


def _linked_pi_db(db: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """This host's synthetic table, a Pi-like table and two ladder rungs measured under the Pi's fingerprint
    (what `edgefit fleet bench` imports), the Pi profile linked to that fingerprint as the fleet run does."""
    import dataclasses

    from test_report_fakes import seed_synthetic_db

    from edgefit import catalog
    from edgefit.bench.env import capture_environment
    from edgefit.predict import synthetic

    seed_synthetic_db(db, monkeypatch, ladder=False)
    slow = synthetic.KernelPhysics(bandwidth_bytes_per_s=8e9, triad_bytes_per_s=7e9, fp32_macs_per_s=20e9)
    table = synthetic.kernel_table(slow, host_fingerprint="pi-fp", host_id="pi", isa="aarch64", cores=4)
    specs = [catalog.load_spec(m) for m in ("smollm2-135m", "qwen2.5-0.5b")]
    with Store(db) as store:
        run = store.start_run(capture_environment(), "kernels")
        store.save_kernel_table(run, "pi-fp", table.to_dict())
        store.finish_run(run)
        ladder = store.start_run(capture_environment(), "ladder:quick")
        for m in synthetic.kernel_measurements(specs, ("fp32",), slow, depths=(128,), prompts=(16,)):
            store.add_measurement(dataclasses.replace(m, run_id=ladder, host_fingerprint="pi-fp"))
        store.finish_run(ladder)
        assert store.link_device("raspberry-pi-5-8gb", "pi-fp")
    return slow


def test_fit_shows_a_linked_device_as_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "e.sqlite"
    _linked_pi_db(db, monkeypatch)
    argv = ["fit", "--model", "qwen2.5-0.5b", "--precision", "fp32", "--db", str(db)]
    rc, doc = _run_json([*argv, "--device", "raspberry-pi-5-8gb", "--device", "orange-pi-5-16gb", "--json"], capsys)
    assert rc == 0
    rows = {r["device_id"]: r for r in doc["results"]}
    assert rows["raspberry-pi-5-8gb"]["decode_tokens_per_s"]["basis"] == "measured"
    assert rows["orange-pi-5-16gb"]["decode_tokens_per_s"]["basis"] == "spec"  # no table of its own
    assert main([*argv, "--device", "raspberry-pi-5-8gb"]) == 0
    out = capsys.readouterr().out
    assert "M /" in out  # the matrix cell: decode tok/s marked M
    assert "M on raspberry-pi-5-8gb: priced with the kernel table measured on that device itself" in out


def test_report_has_measured_vs_predicted_per_linked_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgefit import catalog, pipeline
    from edgefit.predict.translate import predict
    from edgefit.report.devicecheck import datasheet_calibration
    from edgefit.verdict import Workload

    db = tmp_path / "e.sqlite"
    _linked_pi_db(db, monkeypatch)
    out = tmp_path / "rep"
    argv = ["report", "--device", "raspberry-pi-5-8gb", "--device", "orange-pi-5-16gb", "--model", "qwen2.5-0.5b"]
    rc, doc = _run_json([*argv, "--format", "md,json", "--out", str(out), "--db", str(db), "--json"], capsys)
    assert rc == 0 and doc["measured_devices"] == ["raspberry-pi-5-8gb"]
    results = json.loads((out / "results.json").read_text())
    checks = results["device_checks"]
    assert {c["device_id"] for c in checks} == {"raspberry-pi-5-8gb"}  # the Orange Pi has no table of its own
    ran = [c for c in checks if c["source"] == "ran there"]
    assert {(c["model_id"], c["precision"]) for c in ran} == {("smollm2-135m", "fp32"), ("qwen2.5-0.5b", "fp32")}
    with Store(db) as store:
        ms = [m for m in store.measurements(host_fingerprint="pi-fp") if m.phase.value == "decode"]
    qwen_ms = next(m for m in ms if m.model_id == "qwen2.5-0.5b")
    qwen = next(c for c in ran if c["model_id"] == "qwen2.5-0.5b")
    assert qwen["device_decode_s_per_token"] == pytest.approx(sorted(qwen_ms.samples_s)[len(qwen_ms.samples_s) // 2])
    # the datasheet side is this host's table translated, as if the Pi had no table: recompute it independently
    state = pipeline.host_state(db, devices=(profiles_get("raspberry-pi-5-8gb"),), calibrate_if_missing=False)
    sheet = datasheet_calibration(state.calibration)
    want = predict(catalog.load_spec("qwen2.5-0.5b"), "fp32", profiles_get("raspberry-pi-5-8gb"), sheet,
                   context_tokens=qwen_ms.context_tokens, threads=qwen_ms.threads)  # fmt: skip
    assert want.decode_s_per_token.basis.value == "spec"
    assert qwen["predicted_decode_s_per_token"] == pytest.approx(want.decode_s_per_token.value)
    assert qwen["error_rel"] == pytest.approx(want.decode_s_per_token.value / qwen["device_decode_s_per_token"] - 1)
    table_rows = [c for c in checks if c["source"] == "its kernel table"]
    assert {c["precision"] for c in table_rows} == {"fp32", "int8", "int4"}  # GGUF formats are not measured there
    row = next(c for c in table_rows if c["precision"] == "int4")
    own = predict(catalog.load_spec("qwen2.5-0.5b"), "int4", profiles_get("raspberry-pi-5-8gb"), state.calibration,
                  context_tokens=row["context_tokens"], prompt_tokens=Workload().prompt_tokens)  # fmt: skip
    assert own.decode_s_per_token.basis.value == "measured"
    assert row["device_decode_s_per_token"] == pytest.approx(own.decode_s_per_token.value)
    assert row["device_decode_s_per_token"] != pytest.approx(row["predicted_decode_s_per_token"], rel=0.01)
    md = (out / "report.md").read_text()
    assert "## Measured on the devices vs predicted from datasheets" in md
    assert "raspberry-pi-5-8gb: on the device vs predicted from its datasheet" in md


def profiles_get(device_id: str) -> DeviceProfile:
    from edgefit.profiles import get_profile

    return get_profile(device_id)


# --- the README's fleet section: its inventory is one Ansible reads, its commands parse -----------------------


def _readme_fleet_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("### Measuring real devices (`edgefit fleet`)", 1)[1].split("\n### ", 1)[0]


def test_readme_fleet_commands_parse() -> None:
    import shlex

    from edgefit.cli import build_parser
    from edgefit.commands.fleet import _bench_request_args

    section = _readme_fleet_section()
    lines = [ln.split("  #", 1)[0] for ln in section.splitlines() if ln.startswith("edgefit fleet")]
    assert len(lines) >= 5
    parser = build_parser()
    for line in lines:
        args = parser.parse_args(shlex.split(line)[1:])
        assert args.command == "fleet" and args.inventory == Path("inventory.ini"), line
        if args.fleet_command == "bench":
            bench_args, models = _bench_request_args(args)  # what every host's `edgefit bench` gets: valid
            assert ("--ladder" in bench_args) != bool(models), line


def test_readme_inventory_is_read_by_ansible(tmp_path: Path) -> None:
    pytest.importorskip("ansible", reason="ansible-core not installed (pip install -e '.[test]')")
    from edgefit.fleet import load_inventory

    section = _readme_fleet_section()
    ini = section.split("```ini\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "inventory.ini"
    path.write_text(ini, encoding="utf-8")
    hosts = {h.name: h for h in load_inventory(path)}
    assert set(hosts) == {"pi5-a", "opi5", "n100-box"}
    assert hosts["pi5-a"].device_id == "raspberry-pi-5-8gb" and hosts["pi5-a"].address == "192.0.2.10"
    assert hosts["n100-box"].device_id is None and hosts["n100-box"].profile_id == "n100-box"
    assert hosts["opi5"].python == "/usr/bin/python3"


# --- the calibration step's request and outcome (pure: no host) ----------------------------------------------


def test_calibrate_outcome_names_the_cause() -> None:
    from edgefit.fleet.outcome import Problem, classify_calibrate

    assert classify_calibrate(0, "") == (None, None)
    assert classify_calibrate(-9, "")[0] is Problem.KILLED
    assert classify_calibrate(130, "")[0] is Problem.INTERRUPTED
    oom = "edgefit: error: the kernel chains needs ~3.1 GiB at peak, 1.2 GiB available"
    assert classify_calibrate(2, f"noise\n{oom}\n") == (
        Problem.OUT_OF_MEMORY,
        "out of memory in edgefit calibrate: the kernel chains needs ~3.1 GiB at peak, 1.2 GiB available",
    )
    problem, reason = classify_calibrate(3, "edgefit: error: onnxruntime refused the chain\n")
    assert problem is Problem.CALIBRATE_FAILED and reason == "edgefit calibrate failed: onnxruntime refused the chain"


def test_calibration_has_its_own_key_so_a_new_bench_does_not_recalibrate() -> None:
    from edgefit.fleet import plan_request

    a = plan_request(["--ladder", "quick"], [], ["--precision", "fp32"])
    b = plan_request(["--ladder", "full"], [], ["--precision", "fp32"])
    c = plan_request(["--ladder", "quick"], [], ["--precision", "fp32", "--budget-s", "5"])
    none = plan_request(["--ladder", "quick"], [], None)
    assert a.calibrate_key == b.calibrate_key and a.key != b.key  # another bench: the table is kept
    assert a.calibrate_key != c.calibrate_key and a.key == c.key  # another calibration: the bench is kept
    assert none.calibrate_args == () and none.calibrate_key == ""


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--no-calibrate", "--calibrate-budget-s", "5"], "--no-calibrate"),
        (["--calibrate-precision", "fp16"], "--calibrate-precision 'fp16'"),
        (["--calibrate-budget-s", "nan"], "--calibrate-budget-s"),
        (["--calibrate-budget-s", "0"], "--calibrate-budget-s"),
    ],
)
def test_bad_calibrate_flags_exit_2_before_any_host(
    flags: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[boards]\npi ansible_host=192.0.2.1\n")
    db = tmp_path / "e.sqlite"
    assert main(["fleet", "bench", str(inventory), *flags, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not db.exists() and not (tmp_path / "fleet").exists()
