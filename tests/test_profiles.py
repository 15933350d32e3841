"""The device-profile loader: the built-in library, units per field, lookups, the JSON view and the TOML writer."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from edgefit.errors import ProfileError
from edgefit.paths import builtin_profiles_dir
from edgefit.profile_toml import profile_to_toml
from edgefit.profiles import (
    KINDS,
    DeviceProfile,
    Figure,
    did_you_mean,
    get_profile,
    iter_figures,
    load_profiles,
    profile_files,
    profile_to_dict,
)
from edgefit.units import GB, GIB, MIB

GOOD = """schema_version = 1
id = "{id}"
name = "Test board (8 GB)"
vendor = "Test vendor"
kind = "sbc"

[cpu]
model = "Test SoC, 4x Cortex-A76 + 4x Cortex-A55"
isa = "aarch64"
features = ["asimd", "asimddp"]
clusters = [
  {{ name = "Cortex-A76", cores = 4, max_clock = {{ value = "{clock}", source = "test datasheet p. 1" }} }},
  {{ name = "Cortex-A55", cores = 4, max_clock = {{ value = "1800 MHz", source = "test datasheet p. 1" }} }},
]
last_level_cache = {{ value = "3 MiB", source = "test datasheet p. 1" }}

[memory]
type = "LPDDR4X-4267"
ram = {{ value = "{ram}", source = "test datasheet p. 2" }}
usable_ram = {{ value = "{usable}", estimated = true, note = "ram minus ~1 GiB for the OS" }}
bandwidth = {{ value = "{bandwidth}", source = "test datasheet p. 2" }}
measured_bandwidth = {{ value = "9.2 GB/s", source = "test review", method = "STREAM triad, 4 threads" }}

[compute.cpu]
provider = "CPUExecutionProvider"
peak_fp32 = {{ value = "153.6 GFLOPS", estimated = true, note = "4 x 2.4 GHz x 16 FLOP/cycle" }}
peak_int8 = {{ value = "0.6 TOPS", estimated = true, note = "4 x 2.4 GHz x 64 op/cycle" }}

[compute.npu]
name = "Test NPU"
provider = "QNNExecutionProvider"
peak_int8 = {{ value = "6 TOPS", source = "test datasheet p. 3" }}

[power]
idle = {{ value = "{idle}", source = "test review" }}
load = {{ value = "6.5 W", source = "test review" }}
max = {{ value = "12 W", source = "test review" }}
battery = {{ value = "50 Wh", source = "test datasheet p. 4" }}

[price]
usd = {{ value = "{price}", source = "test shop", date = "2024-10" }}
"""
DEFAULTS = {
    "clock": "2.4 GHz",
    "ram": "8 GiB",
    "usable": "7 GiB",
    "bandwidth": "17.1 GB/s",
    "idle": "2.7 W",
    "price": "80 USD",
}


def write_profile(directory: Path, pid: str = "test-board-8gb", **fields: str) -> Path:
    path = directory / f"{pid}.toml"
    path.write_text(GOOD.format(id=pid, **(DEFAULTS | fields)))
    return path


# --- the built-in library (the other engineer's files appear over time: whatever exists must pass) ------------


def test_every_builtin_profile_loads_and_every_figure_is_sourced_or_estimated() -> None:
    files = profile_files(builtin_profiles_dir())
    profiles = load_profiles()
    assert len(profiles) == len(files)  # no file silently skipped
    assert [p.id for p in profiles] == sorted(p.id for p in profiles)
    for p in profiles:
        assert p.kind in KINDS
        assert p.path is not None and Path(p.path).stem == p.id
        assert 0 < p.usable_ram_bytes <= p.ram_bytes
        assert p.cpu_cores > 0 and p.cpu.kind == "cpu" and p.cpu.peak_fp32_flops_per_s is not None
        assert p.idle_power_w <= p.load_power_w <= p.max_power_w
        figures = iter_figures(p)
        assert len(figures) >= 8
        for name, fig in figures:
            assert fig.value > 0, (p.id, name)
            sourced = bool(fig.source and fig.source.strip())
            estimated = fig.estimated and bool(fig.note and fig.note.strip())
            assert sourced or estimated, f"{p.id}: {name} has neither a source nor an estimated note"


def test_builtin_profiles_round_trip_through_dict() -> None:
    for p in load_profiles():
        d = profile_to_dict(p)
        assert d["id"] == p.id
        assert d["memory"]["ram_bytes"]["value"] == p.ram_bytes
        assert d["cpu"]["cores"] == p.cpu_cores
        assert d["compute"]["cpu"]["peak_fp32_flops_per_s"]["value"] == p.cpu.peak_fp32_flops_per_s.value  # type: ignore[union-attr]


# --- units per field -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "read", "expected"),
    [
        ("ram", "8 GiB", lambda p: p.ram_bytes, 8 * GIB),
        ("ram", "8 GB", lambda p: p.ram_bytes, 8 * GB),
        ("ram", "8192 MiB", lambda p: p.ram_bytes, 8 * GIB),
        ("ram", "8589934592", lambda p: p.ram_bytes, 8 * GIB),
        ("bandwidth", "17.1 GB/s", lambda p: p.bandwidth_bytes_per_s, 17.1e9),
        ("bandwidth", "16 GiB/s", lambda p: p.bandwidth_bytes_per_s, 16 * GIB),
        ("bandwidth", "17100 MB/s", lambda p: p.bandwidth_bytes_per_s, 17.1e9),
        ("clock", "2400 MHz", lambda p: p.clusters[0].max_clock_hz.value, 2.4e9),
        ("clock", "2.4 GHz", lambda p: p.clusters[0].max_clock_hz.value, 2.4e9),
        ("idle", "2700 mW", lambda p: p.idle_power_w, 2.7),
        ("price", "$80", lambda p: p.price_usd, 80.0),
    ],
)
def test_units_are_converted_to_base_units(tmp_path: Path, field: str, text: str, read, expected: float) -> None:  # type: ignore[no-untyped-def]
    p = DeviceProfile.from_toml(write_profile(tmp_path, **{field: text}))
    assert math.isclose(read(p), expected, rel_tol=1e-12)


def test_good_profile_fields(tmp_path: Path) -> None:
    p = DeviceProfile.from_toml(write_profile(tmp_path))
    assert p.cpu_cores == 8 and [c.name for c in p.clusters] == ["Cortex-A76", "Cortex-A55"]
    assert p.usable_ram.estimated and p.usable_ram.note == "ram minus ~1 GiB for the OS"
    assert p.measured_bandwidth_bytes_per_s == pytest.approx(9.2e9)
    assert p.measured_bandwidth is not None and p.measured_bandwidth.method == "STREAM triad, 4 threads"
    assert p.last_level_cache is not None and p.last_level_cache.value == 3 * MIB
    assert [e.kind for e in p.engines] == ["cpu", "npu"]
    assert p.engines[1].peak_int8_ops_per_s is not None and p.engines[1].peak_int8_ops_per_s.value == 6e12
    assert p.battery is not None and p.battery.value == 50.0
    assert p.price_date == "2024-10"


# --- lookups -------------------------------------------------------------------------------------------------


def test_get_profile_by_id_and_by_path(tmp_path: Path) -> None:
    path = write_profile(tmp_path)
    assert get_profile(str(path)).id == "test-board-8gb"
    assert get_profile("test-board-8gb", extra_dirs=(tmp_path,)).path == str(path)


def test_unknown_id_suggests_the_closest(tmp_path: Path) -> None:
    write_profile(tmp_path, "raspberry-pi-5-8gb-test")
    with pytest.raises(ProfileError) as err:
        get_profile("rpi5-8gb-test", extra_dirs=(tmp_path,))
    msg = str(err.value)
    assert msg.startswith("unknown device 'rpi5-8gb-test'; did you mean ")
    assert "raspberry-pi-5-8gb-test" in msg and "`edgefit profiles list` shows all" in msg
    assert "\n" not in msg


def test_did_you_mean_ranks_abbreviations_and_typos() -> None:
    ids = ["orange-pi-5-16gb", "raspberry-pi-5-8gb", "raspberry-pi-4-4gb", "nvidia-jetson-orin-nano-8gb"]
    assert did_you_mean("rpi5", ids) == ["raspberry-pi-5-8gb"]
    assert did_you_mean("raspbery-pi-4-4gb", ids) == ["raspberry-pi-4-4gb"]
    assert did_you_mean("jetson", ids) == ["nvidia-jetson-orin-nano-8gb"]
    assert did_you_mean("bandwith", ["bandwidth", "measured_bandwidth", "ram"]) == ["bandwidth"]
    assert did_you_mean("zzzz", ids) == []


def test_duplicate_ids_across_directories_name_both_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_profile(tmp_path / "a")
    second = write_profile(tmp_path / "b")
    with pytest.raises(ProfileError) as err:
        load_profiles((tmp_path / "a", tmp_path / "b"))
    assert str(first) in str(err.value) and str(second) in str(err.value)


def test_figure_requires_source_or_estimate() -> None:
    with pytest.raises(ValueError):
        Figure(1.0, "w")
    assert Figure(1.0, "w", estimated=True, note="guess").estimated


# --- writer round trip ---------------------------------------------------------------------------------------


def test_profile_to_toml_round_trips(tmp_path: Path) -> None:
    original = DeviceProfile.from_toml(write_profile(tmp_path, ram="7.9 GB", bandwidth="17.0625 GB/s"))
    out = tmp_path / "out"
    out.mkdir()
    path = out / "test-board-8gb.toml"
    path.write_text(profile_to_toml(original, header="round-trip test"))
    again = DeviceProfile.from_toml(path)
    assert again.ram_bytes == original.ram_bytes
    for (name_a, a), (name_b, b) in zip(iter_figures(original), iter_figures(again), strict=True):
        assert name_a == name_b
        assert math.isclose(a.value, b.value, rel_tol=1e-8), name_a
        assert (a.source, a.estimated, a.note, a.method) == (b.source, b.estimated, b.note, b.method)
    same = dataclasses.replace(again, path=original.path)
    plain = ("id", "name", "kind", "cpu_model", "isa", "cpu_features", "memory_type", "price_date", "vendor")
    assert all(getattr(same, f) == getattr(original, f) for f in plain)


def test_host_resolves_through_detect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefit import detect

    fake = dataclasses.replace(DeviceProfile.from_toml(write_profile(tmp_path)), id="host")
    monkeypatch.setattr(detect, "host_profile", lambda: fake)
    assert get_profile("host") is fake
