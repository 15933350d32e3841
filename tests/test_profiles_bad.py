"""Malformed profiles: each gives one line naming file, field, expectation and value; the CLI exits 2, no traceback.

Fixtures: tests/data/bad_profiles/<case>.toml, each a valid profile with exactly one defect.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgefit.cli import main
from edgefit.errors import ProfileError
from edgefit.profiles import DeviceProfile, load_profiles

BAD = Path(__file__).parent / "data" / "bad_profiles"

# case -> (field named in the message, fragments the message must contain)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "syntax-error": ("TOML syntax", ("expected valid TOML", "line 15")),
    "unknown-unit": ("memory.ram.value", ("unknown unit 'GiBs'", "'8 GiBs'", "GiB")),
    "negative-ram": ("memory.ram.value", ("expected a positive quantity", "'-8 GiB'")),
    "usable-over-total": ("memory.usable_ram", ("expected <= memory.ram (8 GiB)", "found 9 GiB")),
    "missing-required": ("power.idle", ("required figure missing", 'value = "2.7 W"')),
    "wrong-type": ("cpu.clusters[0].cores", ("expected a positive integer", "found string '4'")),
    "unknown-field": ("memory.bandwith", ("unknown field", "did you mean 'bandwidth'?")),
    "missing-source": ("memory.bandwidth", ("expected a source", "estimated = true with a note", "17.1 GB/s")),
    "id-mismatch": ("id", ("expected the file name stem 'id-mismatch'", "found 'test-board-8gb'")),
    "bad-kind": ("kind", ("expected one of sbc, module, laptop", "found 'laptp'", "did you mean 'laptop'?")),
    "bad-schema-version": ("schema_version", ("expected 1", "found 2")),
    "estimated-without-note": ("memory.usable_ram.note", ("expected a note",)),
    "wrong-unit-kind": ("memory.bandwidth.value", ("unknown unit 'GHz'", "GB/s")),
    "bare-number-ram": ("memory.ram.value", ("expected at least 16 MiB", "found 8", "'8 GiB'")),
    "placeholder-source": ("memory.ram.source", ("placeholder 'https://...'",)),
    "figure-as-string": ("memory.ram", ("expected an inline table", "found string '8 GiB'")),
    "bad-price-date": ("price.usd.date", ("expected a date like '2025-06'", "found 'Oct 2024'")),
    "power-order": ("power", ("expected idle <= load <= max", "idle 7 W")),
    "measured-over-theoretical": ("memory.measured_bandwidth", ("expected <= the theoretical", "19.2 GB/s")),
    "empty-clusters": ("cpu.clusters", ("expected a non-empty array", "found array []")),
    "bad-isa": ("cpu.isa", ("found 'arm64'", "did you mean 'aarch64'?")),
    "cpu-without-peak": ("compute.cpu.peak_fp32", ("required figure missing",)),
}


def test_every_fixture_has_a_case() -> None:
    assert sorted(p.stem for p in BAD.glob("*.toml")) == sorted(CASES)
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_profile_message(case: str) -> None:
    path = BAD / f"{case}.toml"
    field, fragments = CASES[case]
    with pytest.raises(ProfileError) as err:
        DeviceProfile.from_toml(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {field}: ") or (case == "syntax-error" and msg.startswith(f"{path}: {field}"))
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_profile_cli_exit_2_without_traceback(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = BAD / f"{case}.toml"
    assert main(["profiles", "validate", str(path)]) == 2
    out, err = capsys.readouterr()
    line = next(line for line in out.splitlines() if line.startswith("ERROR"))
    assert str(path) in line and CASES[case][0] in line
    assert "Traceback" not in out + err
    assert main(["profiles", "show", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"edgefit: error: {path}: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_duplicate_id_is_an_error_naming_both_files(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = BAD / "duplicate" / "a", BAD / "duplicate" / "b"
    with pytest.raises(ProfileError) as err:
        load_profiles((a, b))
    assert str(a / "dup-board-8gb.toml") in str(err.value) and str(b / "dup-board-8gb.toml") in str(err.value)
    assert main(["profiles", "validate", str(a), str(b)]) == 2
    out = capsys.readouterr().out
    assert "1 ok, 1 bad" in out and "also in" in out
    assert main(["profiles", "validate", "--json", str(a)]) == 0


def test_missing_file_and_unknown_id() -> None:
    with pytest.raises(ProfileError, match="no such file"):
        DeviceProfile.from_toml(BAD / "does-not-exist.toml")
    assert main(["profiles", "show", "no-such-device-anywhere"]) == 2


def test_real_process_prints_one_line_and_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgefit", "profiles", "show", str(BAD / "negative-ram.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "memory.ram.value" in proc.stderr and "Traceback" not in proc.stderr
