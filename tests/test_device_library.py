"""The built-in device library (device_profiles/*.toml) and the public LLM figures used to check predictions.

These tests read the TOML files directly, so they hold the library to the format in device_profiles/README.md
independently of the loader in edgefit/profiles.py; one test also loads every file with the real loader and checks
it agrees with the raw file. The public figures (tests/data/public_llm_figures.toml) are for checking predictions
only: a test makes sure each one is physically possible on the profile it names.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from edgefit.units import GIB, parse_quantity

REPO = Path(__file__).resolve().parent.parent
PROFILES_DIR = REPO / "device_profiles"
CATALOG_DIR = REPO / "models" / "catalog"
FIGURES_PATH = Path(__file__).resolve().parent / "data" / "public_llm_figures.toml"

PROFILE_PATHS = sorted(PROFILES_DIR.glob("*.toml"))
KINDS = {"sbc", "module", "laptop", "desktop", "phone", "mini-pc"}
ISAS = {"aarch64", "x86_64", "armv7l"}
# Keys of a figure table (README: value + source | estimated + note; optional method, note; price adds date).
FIGURE_KEYS = {"value", "source", "estimated", "note", "method", "date"}
# Each required figure with the quantity kind its value must parse as.
REQUIRED_FIGURES = {
    ("memory", "ram"): "bytes",
    ("memory", "usable_ram"): "bytes",
    ("memory", "bandwidth"): "bytes_per_s",
    ("compute", "cpu", "peak_fp32"): "flops_per_s",
    ("power", "idle"): "w",
    ("power", "load"): "w",
    ("power", "max"): "w",
    ("price", "usd"): "usd",
}
OPTIONAL_FIGURES = {
    ("memory", "measured_bandwidth"): "bytes_per_s",
    ("cpu", "last_level_cache"): "bytes",
    ("power", "budget"): "w",
    ("power", "battery"): "wh",
}
ENGINE_FIGURES = {
    "peak_fp32": "flops_per_s",
    "peak_fp16": "flops_per_s",
    "peak_int8": "ops_per_s",
    "measured_fp32": "flops_per_s",
}
# The devices the brief asks for, by id (the Pi 5 8 GB id is fixed because other code and docs name it).
REQUIRED_IDS = {
    "raspberry-pi-zero-2-w-512mb",
    "raspberry-pi-4-2gb",
    "raspberry-pi-4-4gb",
    "raspberry-pi-4-8gb",
    "raspberry-pi-5-4gb",
    "raspberry-pi-5-8gb",
    "raspberry-pi-5-16gb",
    "nvidia-jetson-orin-nano-8gb",
    "nvidia-jetson-orin-nano-super-8gb",
    "nvidia-jetson-agx-orin-64gb",
}
# Throughput must never appear in a profile (profiles carry hardware figures; LLM rates are only for checking).
THROUGHPUT = re.compile(r"tok(en)?s?\s*/\s*s|tokens per second|\bt/s\b", re.IGNORECASE)


def _load(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _get(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = data
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _figures(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every inline table with a ``value`` key, anywhere in the file, with its dotted path."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "value" in node:
            found.append((where, node))
        for key, child in node.items():
            found.extend(_figures(child, f"{where}.{key}" if where else key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found.extend(_figures(child, f"{where}[{i}]"))
    return found


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for child in node.values() for s in _strings(child)]
    if isinstance(node, list):
        return [s for child in node for s in _strings(child)]
    return []


def _quantity(figure: dict[str, Any], kind: str, where: str) -> float:
    return parse_quantity(figure["value"], kind, where=where)


@pytest.fixture(scope="module")
def library() -> dict[str, dict[str, Any]]:
    return {path.stem: _load(path) for path in PROFILE_PATHS}


@pytest.fixture(scope="module")
def figures() -> list[dict[str, Any]]:
    return list(_load(FIGURES_PATH)["figures"])


# --- the library as a whole -------------------------------------------------------------------------------------


def test_library_has_at_least_15_devices_covering_every_class(library: dict[str, dict[str, Any]]) -> None:
    assert len(library) >= 15
    kinds = {data["kind"] for data in library.values()}
    assert {"sbc", "module", "laptop", "mini-pc", "phone"} <= kinds


def test_required_devices_are_present(library: dict[str, dict[str, Any]]) -> None:
    assert set(library) >= REQUIRED_IDS


def test_ids_equal_file_stems_and_are_unique(library: dict[str, dict[str, Any]]) -> None:
    ids = [data["id"] for data in library.values()]
    assert len(ids) == len(set(ids))
    for stem, data in library.items():
        assert data["id"] == stem


def test_ids_follow_vendor_model_ram_naming(library: dict[str, dict[str, Any]]) -> None:
    for stem, data in library.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9.]+)*-\d+(gb|mb)", stem), stem
        ram_bytes = parse_quantity(data["memory"]["ram"]["value"], "bytes")
        size, unit = re.search(r"(\d+)(gb|mb)$", stem).groups()  # type: ignore[union-attr]
        # the RAM in the name is the marketing size (GiB/MiB of DRAM); it must match the ram figure within 8 %
        named = int(size) * (GIB if unit == "gb" else 2**20)
        assert abs(ram_bytes - named) / named < 0.08, stem


# --- each profile against the format in device_profiles/README.md -----------------------------------------------


@pytest.mark.parametrize("path", PROFILE_PATHS, ids=[p.stem for p in PROFILE_PATHS])
def test_profile_has_required_sections(path: Path) -> None:
    data = _load(path)
    assert data["schema_version"] == 1
    for key in ("id", "name", "vendor", "kind"):
        assert isinstance(data.get(key), str) and data[key].strip(), f"{path.name}: {key}"
    assert data["kind"] in KINDS
    cpu = data["cpu"]
    assert cpu["isa"] in ISAS
    assert isinstance(cpu["model"], str) and cpu["model"]
    assert isinstance(cpu["features"], list) and all(isinstance(f, str) for f in cpu["features"])
    assert cpu["clusters"], f"{path.name}: no CPU clusters"
    for cluster in cpu["clusters"]:
        assert isinstance(cluster["name"], str) and cluster["name"]
        assert isinstance(cluster["cores"], int) and cluster["cores"] >= 1
        clock_hz = _quantity(cluster["max_clock"], "hz", f"{path.name}: max_clock")
        assert 0.5e9 <= clock_hz <= 6.0e9
    assert isinstance(data["memory"]["type"], str) and data["memory"]["type"]
    assert data["compute"]["cpu"]["provider"] == "CPUExecutionProvider"
    for keys, kind in REQUIRED_FIGURES.items():
        figure = _get(data, keys)
        assert isinstance(figure, dict), f"{path.name}: missing {'.'.join(keys)}"
        _quantity(figure, kind, f"{path.name}: {'.'.join(keys)}")
    assert re.fullmatch(r"\d{4}-\d{2}", data["price"]["usd"]["date"]), f"{path.name}: price date YYYY-MM"


@pytest.mark.parametrize("path", PROFILE_PATHS, ids=[p.stem for p in PROFILE_PATHS])
def test_every_figure_has_a_source_or_an_estimate_note(path: Path) -> None:
    data = _load(path)
    found = _figures(data)
    assert len(found) >= len(REQUIRED_FIGURES) + 1  # + at least one clock
    for where, figure in found:
        unknown = set(figure) - FIGURE_KEYS
        assert not unknown, f"{path.name}: {where} has unknown keys {sorted(unknown)}"
        source = figure.get("source")
        if figure.get("estimated") is True:
            note = figure.get("note")
            assert isinstance(note, str) and len(note) >= 15, f"{path.name}: {where} estimated without a note"
        else:
            assert "estimated" not in figure, f"{path.name}: {where}: estimated must be true or absent"
            assert isinstance(source, str) and len(source) >= 8, f"{path.name}: {where} has no source"
            # a source a reader can follow: a URL, or a named document
            assert source.startswith(("http://", "https://")) or " " in source, f"{path.name}: {where}: {source!r}"


@pytest.mark.parametrize("path", PROFILE_PATHS, ids=[p.stem for p in PROFILE_PATHS])
def test_figures_parse_and_are_physically_consistent(path: Path) -> None:
    data = _load(path)
    name = path.name
    for keys, kind in OPTIONAL_FIGURES.items():
        figure = _get(data, keys)
        if figure is not None:
            _quantity(figure, kind, f"{name}: {'.'.join(keys)}")
    for engine_name, engine in data["compute"].items():
        assert isinstance(engine.get("provider"), str) and engine["provider"].endswith("ExecutionProvider")
        peaks = [k for k in ENGINE_FIGURES if k in engine]
        if engine_name == "cpu":
            assert "peak_fp32" in peaks
        else:
            assert peaks, f"{name}: compute.{engine_name} has no peak figure"
            assert isinstance(engine.get("name"), str) and engine["name"]
        for key in peaks:
            assert _quantity(engine[key], ENGINE_FIGURES[key], f"{name}: compute.{engine_name}.{key}") > 0

    memory = data["memory"]
    ram = _quantity(memory["ram"], "bytes", name)
    usable = _quantity(memory["usable_ram"], "bytes", name)
    assert 0.5 * ram <= usable <= ram, f"{name}: usable RAM must be below RAM and not absurdly small"
    bandwidth = _quantity(memory["bandwidth"], "bytes_per_s", name)
    assert 1e9 <= bandwidth <= 1e12
    if "measured_bandwidth" in memory:
        measured = memory["measured_bandwidth"]
        assert isinstance(measured.get("method"), str) and measured["method"], f"{name}: measured without method"
        # a measurement cannot beat the bus it ran on
        assert 0.1 * bandwidth <= _quantity(measured, "bytes_per_s", name) <= bandwidth

    power = data["power"]
    idle, load, peak = (_quantity(power[k], "w", name) for k in ("idle", "load", "max"))
    assert 0 < idle < load <= peak, f"{name}: expected idle < load <= max, found {idle}, {load}, {peak}"
    assert _quantity(data["price"]["usd"], "usd", name) > 0

    # peak fp32 of the CPU must not exceed what the clusters could issue at 64 FLOP/cycle/core (2x 512-bit FMA)
    ceiling = sum(c["cores"] * _quantity(c["max_clock"], "hz", name) * 64 for c in data["cpu"]["clusters"])
    assert _quantity(data["compute"]["cpu"]["peak_fp32"], "flops_per_s", name) <= ceiling


@pytest.mark.parametrize("path", PROFILE_PATHS, ids=[p.stem for p in PROFILE_PATHS])
def test_profiles_carry_no_llm_throughput(path: Path) -> None:
    for text in _strings(_load(path)):
        assert not THROUGHPUT.search(text), (
            f"{path.name}: LLM throughput belongs in tests/data, not a profile: {text!r}"
        )


def test_real_loader_agrees_with_the_raw_files(library: dict[str, dict[str, Any]]) -> None:
    from edgefit import profiles  # no importorskip: a renamed module or loader must fail here, not skip

    for path in PROFILE_PATHS:
        raw = library[path.stem]
        profile = profiles.DeviceProfile.from_toml(path)
        assert profile.id == raw["id"]
        assert profile.ram_bytes == int(parse_quantity(raw["memory"]["ram"]["value"], "bytes"))
        assert profile.usable_ram_bytes == int(parse_quantity(raw["memory"]["usable_ram"]["value"], "bytes"))
        assert profile.bandwidth_bytes_per_s == pytest.approx(
            parse_quantity(raw["memory"]["bandwidth"]["value"], "bytes_per_s")
        )
        assert profile.cpu_cores == sum(c["cores"] for c in raw["cpu"]["clusters"])
        assert profile.cpu.provider == "CPUExecutionProvider"
        assert len(profile.engines) == len(raw["compute"])
        has_measured = "measured_bandwidth" in raw["memory"]
        assert (profile.measured_bandwidth_bytes_per_s is not None) == has_measured


# --- public LLM figures (checking data for predictions, never fed into profiles) --------------------------------


def test_public_figures_are_well_formed(figures: list[dict[str, Any]], library: dict[str, dict[str, Any]]) -> None:
    assert len(figures) >= 5
    catalog_ids = {_load(p)["id"] for p in CATALOG_DIR.glob("*.toml")}
    for fig in figures:
        label = f"{fig.get('device')} / {fig.get('model_name')}"
        assert fig["device"] in library, f"{label}: unknown device id"
        if catalog_ids:
            assert fig["model"] in catalog_ids, f"{label}: model {fig['model']!r} is not a catalog id"
        for key in ("model_name", "quantization", "runtime", "quote"):
            assert isinstance(fig[key], str) and fig[key].strip(), f"{label}: {key}"
        assert fig["source"].startswith(("http://", "https://")), label
        assert re.fullmatch(r"\d{4}(-\d{2})?", fig["date"]), f"{label}: date"
        assert fig["decode_tokens_per_s"] > 0
        if "prompt_tokens_per_s" in fig:
            # prompt processing batches tokens, so it is never slower than decode on the same run
            assert fig["prompt_tokens_per_s"] >= fig["decode_tokens_per_s"], label
        if "threads" in fig:
            cores = sum(c["cores"] for c in library[fig["device"]]["cpu"]["clusters"])
            assert 1 <= fig["threads"] <= cores, label


def test_public_figures_cover_several_device_families(figures: list[dict[str, Any]]) -> None:
    devices = {fig["device"] for fig in figures}
    families = {d.split("-")[0] + "-" + d.split("-")[1] for d in devices}
    assert len(families) >= 3, sorted(devices)


def test_public_decode_rates_are_possible_on_the_named_profile(
    figures: list[dict[str, Any]], library: dict[str, dict[str, Any]]
) -> None:
    """Decode reads every weight once per token, so rate x bytes/token cannot exceed the memory bus. A figure that
    breaks this is attached to the wrong profile, or the profile's bandwidth is wrong."""
    from edgefit import catalog
    from edgefit.errors import CatalogError

    checked = 0
    for fig in figures:
        try:
            spec = catalog.load_spec(fig["model"])
            bytes_per_token = catalog.weight_read_bytes_per_token(spec, fig["quantization"].lower())
        except CatalogError:  # an unknown GGUF type (e.g. IQ4_XS) or card: nothing to check; anything else fails
            continue
        memory = library[fig["device"]]["memory"]
        implied = fig["decode_tokens_per_s"] * bytes_per_token
        bandwidth = parse_quantity(memory["bandwidth"]["value"], "bytes_per_s")
        assert implied <= bandwidth, f"{fig['device']} {fig['model']}: {implied / 1e9:.1f} GB/s > bus"
        if "measured_bandwidth" in memory:
            measured = parse_quantity(memory["measured_bandwidth"]["value"], "bytes_per_s")
            # 15 % slack: measured figures are single runs and some are single-thread lower bounds
            assert implied <= 1.15 * measured, f"{fig['device']} {fig['model']}: {implied / 1e9:.1f} GB/s > measured"
        checked += 1
    assert checked >= 5
