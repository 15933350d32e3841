"""Write a DeviceProfile back as TOML in the device_profiles/README.md format (``edgefit detect --save``);
``DeviceProfile.from_toml`` reads it back (round-trip tested)."""

from __future__ import annotations

import datetime as _dt
import json

from edgefit.profiles import SCHEMA_VERSION, DeviceProfile, Figure
from edgefit.units import GB, GIB, KIB, MIB


def _today() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")


# kind -> (scale, unit) used to write a figure back in human units
_WRITE_UNITS = {
    "bytes_per_s": (GB, "GB/s"),
    "flops_per_s": (1e9, "GFLOPS"),
    "ops_per_s": (1e12, "TOPS"),
    "hz": (1e9, "GHz"),
    "w": (1.0, "W"),
    "wh": (1.0, "Wh"),
    "usd": (1.0, "USD"),
}


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _toml_value(fig: Figure) -> str:
    if fig.unit == "bytes":
        v = int(fig.value)
        for factor, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
            if v % factor == 0:
                return f"{v // factor} {name}"
        return f"{v} B"
    scale, unit = _WRITE_UNITS[fig.unit]
    return f"{fig.value / scale:.9g} {unit}"


def _toml_figure(fig: Figure, extra: str = "") -> str:
    parts = [f"value = {_toml_str(_toml_value(fig))}"]
    if fig.source:
        parts.append(f"source = {_toml_str(fig.source)}")
    if fig.estimated:
        parts.append("estimated = true")
    for key in ("note", "method"):
        text = getattr(fig, key)
        if text:
            parts.append(f"{key} = {_toml_str(text)}")
    return "{ " + ", ".join(parts) + extra + " }"


def profile_to_toml(p: DeviceProfile, header: str = "") -> str:
    """The profile in the device_profiles/README.md format; ``DeviceProfile.from_toml`` reads it back."""
    s = _toml_str
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"schema_version = {SCHEMA_VERSION}", f"id = {s(p.id)}", f"name = {s(p.name)}"]
    lines += [f"vendor = {s(p.vendor)}"] if p.vendor else []
    lines += [f"kind = {s(p.kind)}"] + ([f"notes = {s(p.notes)}"] if p.notes else [])
    lines += ["", "[cpu]", f"model = {s(p.cpu_model)}", f"isa = {s(p.isa)}"]
    lines += ["features = [" + ", ".join(s(f) for f in p.cpu_features) + "]", "clusters = ["]
    for c in p.clusters:
        lines.append(f"  {{ name = {s(c.name)}, cores = {c.cores}, max_clock = {_toml_figure(c.max_clock_hz)} }},")
    lines.append("]")
    if p.last_level_cache:
        lines.append(f"last_level_cache = {_toml_figure(p.last_level_cache)}")
    lines += ["", "[memory]", f"type = {s(p.memory_type)}"]
    for key in ("ram", "usable_ram", "bandwidth", "measured_bandwidth", "measured_read_bandwidth"):
        fig = getattr(p, key)
        if fig is not None:
            lines.append(f"{key} = {_toml_figure(fig)}")
    for e in p.engines:
        lines += ["", f"[compute.{e.kind}]", f"provider = {s(e.provider)}"]
        lines += [f"name = {s(e.name)}"] if e.name else []
        for key, fig in (
            ("peak_fp32", e.peak_fp32_flops_per_s),
            ("peak_fp16", e.peak_fp16_flops_per_s),
            ("peak_int8", e.peak_int8_ops_per_s),
            ("measured_fp32", e.measured_fp32_flops_per_s),
            ("measured_int8", e.measured_int8_ops_per_s),
        ):
            if fig is not None:
                lines.append(f"{key} = {_toml_figure(fig)}")
    lines += ["", "[power]"]
    for key, fig in (
        ("idle", p.idle_power),
        ("load", p.load_power),
        ("max", p.max_power),
        ("budget", p.power_budget),
        ("battery", p.battery),
    ):
        if fig is not None:
            lines.append(f"{key} = {_toml_figure(fig)}")
    if p.price is not None:
        lines += ["", "[price]", f"usd = {_toml_figure(p.price, f', date = {s(p.price_date or _today()[:7])}')}"]
    return "\n".join(lines) + "\n"
