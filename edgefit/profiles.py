"""Device profiles: one TOML file per device, loaded into a frozen ``DeviceProfile``.

Every figure in a profile is a ``Figure``: a value in base SI units with the source it came from, or an
explicit ``estimated = true`` with a note saying how it was estimated. The TOML format is documented in
``device_profiles/README.md``.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgefit.errors import ProfileError, UnitError
from edgefit.ids import check_id, id_problem
from edgefit.inputfiles import loads_toml, read_text
from edgefit.paths import builtin_profiles_dir
from edgefit.units import MIB, parse_quantity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCHEMA_VERSION = 1
KINDS: tuple[str, ...] = ("sbc", "module", "laptop", "desktop", "mini-pc", "phone", "server")
ISAS: tuple[str, ...] = ("aarch64", "x86_64", "armv7l", "riscv64")
ENGINE_KINDS: tuple[str, ...] = ("cpu", "gpu", "npu")

# --- data model (the contract other stages rely on) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """One sourced number. ``value`` is in the base unit named by ``unit`` (bytes, bytes_per_s, w, wh, hz,
    flops_per_s, ops_per_s, usd). A ``source``, or ``estimated`` True with a ``note`` (the loader checks the note),
    or both (an estimate computed from sourced inputs)."""

    value: float
    unit: str
    source: str | None = None
    estimated: bool = False
    note: str | None = None
    method: str | None = None  # how a measured figure was measured (e.g. "STREAM triad, 4 threads")

    def __post_init__(self) -> None:
        if self.source is None and not self.estimated:
            raise ValueError("a Figure needs a source or estimated=True")


@dataclass(frozen=True, slots=True)
class CpuCluster:
    name: str  # core type, e.g. "Cortex-A76"
    cores: int
    max_clock_hz: Figure


@dataclass(frozen=True, slots=True)
class ComputeEngine:
    """Peak compute of one engine. ``kind`` is cpu, gpu or npu; ``provider`` the onnxruntime execution
    provider that would drive it (CPUExecutionProvider for the CPU)."""

    kind: str
    provider: str
    peak_fp32_flops_per_s: Figure | None = None
    peak_fp16_flops_per_s: Figure | None = None
    peak_int8_ops_per_s: Figure | None = None
    measured_fp32_flops_per_s: Figure | None = None  # e.g. a GEMM probe from `edgefit detect`
    measured_int8_ops_per_s: Figure | None = None  # `edgefit detect`'s MatMulNBits 8-bit GEMM probe
    name: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    id: str
    name: str
    kind: str  # one of KINDS
    cpu_model: str
    isa: str  # aarch64, x86_64, ...
    cpu_features: tuple[str, ...]
    clusters: tuple[CpuCluster, ...]
    ram: Figure  # bytes
    usable_ram: Figure  # bytes, after OS, display carve-out, etc.
    memory_type: str
    bandwidth: Figure  # theoretical peak DRAM bandwidth, bytes_per_s
    engines: tuple[ComputeEngine, ...]  # engines[0] is the CPU
    idle_power: Figure  # w
    load_power: Figure  # w, typical sustained all-core load
    max_power: Figure  # w
    measured_bandwidth: Figure | None = None  # bytes_per_s, STREAM-like, from a source or `edgefit detect`
    measured_read_bandwidth: Figure | None = None  # bytes_per_s, read-only (fp32 GEMV probe of `edgefit detect`)
    last_level_cache: Figure | None = None  # bytes
    power_budget: Figure | None = None  # w
    battery: Figure | None = None  # wh
    price: Figure | None = None  # usd
    price_date: str | None = None  # "2025-06"
    vendor: str | None = None
    notes: str | None = None
    path: str | None = None  # file it was loaded from, for messages

    # --- base-unit accessors (names carry units) ---
    @property
    def ram_bytes(self) -> int:
        return int(self.ram.value)

    @property
    def usable_ram_bytes(self) -> int:
        return int(self.usable_ram.value)

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth.value

    @property
    def measured_bandwidth_bytes_per_s(self) -> float | None:
        return self.measured_bandwidth.value if self.measured_bandwidth else None

    @property
    def measured_read_bandwidth_bytes_per_s(self) -> float | None:
        return self.measured_read_bandwidth.value if self.measured_read_bandwidth else None

    @property
    def cpu_cores(self) -> int:
        return sum(c.cores for c in self.clusters)

    @property
    def cpu(self) -> ComputeEngine:
        return self.engines[0]

    @property
    def idle_power_w(self) -> float:
        return self.idle_power.value

    @property
    def load_power_w(self) -> float:
        return self.load_power.value

    @property
    def max_power_w(self) -> float:
        return self.max_power.value

    @property
    def power_budget_w(self) -> float | None:
        return self.power_budget.value if self.power_budget else None

    @property
    def price_usd(self) -> float | None:
        return self.price.value if self.price else None

    # --- construction --------------------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | Path) -> DeviceProfile:
        """Load and check one profile file (format: device_profiles/README.md). Raises ProfileError, one line:
        ``<file>: <field>: expected ..., found ...``."""
        return _Loader(Path(path)).load()


# --- the loader ----------------------------------------------------------------------------------------------

_PLACEHOLDER_SOURCES = frozenset({"", "...", "https://...", "http://...", "todo", "tbd", "?", "unknown"})
_FIGURE_KEYS = ("value", "source", "estimated", "note", "method")
# Bare numbers are base units, so `ram = { value = 8 }` means 8 bytes: these floors catch a forgotten unit.
_PLAUSIBLE_MIN: dict[str, tuple[float, str]] = {
    "memory.ram": (16 * MIB, "16 MiB"),
    "memory.usable_ram": (16 * MIB, "16 MiB"),
    "memory.bandwidth": (1e8, "0.1 GB/s"),
    "memory.measured_bandwidth": (1e8, "0.1 GB/s"),
    "memory.measured_read_bandwidth": (1e8, "0.1 GB/s"),
    "max_clock": (1e6, "1 MHz"),
}
# Ceilings per kind: far above any edge device (or server), low enough that sums and products stay finite.
_PLAUSIBLE_MAX: dict[str, tuple[float, str]] = {
    "bytes": (2.0**50, "1 PiB"),
    "bytes_per_s": (1e14, "100 TB/s"),
    "hz": (1e11, "100 GHz"),
    "flops_per_s": (1e18, "1 EFLOPS"),
    "ops_per_s": (1e18, "1 EOPS"),
    "w": (1e6, "1 MW"),
    "wh": (1e7, "10 MWh"),
    "usd": (1e9, "1e9 USD"),
}
MAX_CORES = 4096
_EXAMPLE = {
    "bytes": "8 GiB",
    "bytes_per_s": "17.1 GB/s",
    "hz": "2.4 GHz",
    "flops_per_s": "150 GFLOPS",
    "ops_per_s": "26 TOPS",
    "w": "2.7 W",
    "wh": "50 Wh",
    "usd": "80 USD",
}
_ENGINE_FIGURES = {
    "peak_fp32": "flops_per_s",
    "peak_fp16": "flops_per_s",
    "peak_int8": "ops_per_s",
    "measured_fp32": "flops_per_s",
    "measured_int8": "ops_per_s",
}


def _type_name(value: object) -> str:
    return {dict: "table", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), type(value).__name__
    )


def _shown(value: object) -> str:
    text = repr(value) if not isinstance(value, dict) else "{...}"
    return (text[:60] + "...") if len(text) > 63 else text


def did_you_mean(word: str, choices: list[str] | tuple[str, ...], n: int = 1) -> list[str]:
    """Closest ``choices`` to ``word``, best first: substrings, then abbreviations made of token prefixes
    ("rpi5" -> raspberry-pi-5-*), then letter subsequences, then difflib's close matches."""
    w = word.lower().replace("_", "-").replace(" ", "-")
    squashed = w.replace("-", "")

    def abbreviates(q: str, tokens: list[str]) -> bool:
        if not q:
            return True
        for i, tok in enumerate(tokens):
            k = 0
            while k < min(len(q), len(tok)) and q[k] == tok[k]:
                k += 1
                if abbreviates(q[k:], tokens[i + 1 :]):
                    return True
        return False

    def is_subsequence(c: str) -> bool:
        it = iter(c.replace("-", ""))
        return bool(squashed) and all(ch in it for ch in squashed)

    def rank(c: str) -> int:
        if w in c:
            return 3
        if squashed and abbreviates(squashed, c.split("-")):
            return 2
        return 1 if is_subsequence(c) else 0

    close = set(difflib.get_close_matches(w, choices, n=n, cutoff=0.6))
    scored = [(rank(c), difflib.SequenceMatcher(None, w, c).ratio(), c) for c in choices]
    best = max((r for r, _, c in scored if r > 0 or c in close), default=0)
    ranked = sorted(scored, key=lambda t: (-t[0], -t[1], t[2]))
    return [c for r, _, c in ranked if (r > 0 and r == best) or (best == 0 and c in close)][:n]


class _Loader:
    """Reads one file; every check names the file and the dotted field path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, message: str) -> ProfileError:
        return ProfileError(f"{self.path}: {field}: {message}")

    # --- generic checks ---
    def table(self, raw: object, field: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(field or "(top level)", f"expected a table, found {_type_name(raw)} {_shown(raw)}")
        prefix = f"{field}." if field else ""
        for key in raw:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                mean = f"; did you mean '{hint[0]}'?" if hint else ""
                raise self.fail(
                    f"{prefix}{key}", f"unknown field{mean} (expected one of: {', '.join(sorted(allowed))})"
                )
        for key in required:
            if key not in raw:
                raise self.fail(f"{prefix}{key}", "required field missing; see device_profiles/README.md")
        return raw

    def string(self, raw: dict, key: str, field: str, *, required: bool = True, choices: tuple[str, ...] = ()) -> Any:
        if key not in raw:
            if required:
                raise self.fail(field, "required field missing; see device_profiles/README.md")
            return None
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"expected a non-empty string, found {_type_name(value)} {_shown(value)}")
        if choices and value not in choices:
            hint = did_you_mean(value, choices)
            mean = f"; did you mean '{hint[0]}'?" if hint else ""
            raise self.fail(field, f"expected one of {', '.join(choices)}, found {value!r}{mean}")
        return value

    def positive_int(self, raw: dict, key: str, field: str) -> int:
        if key not in raw:
            raise self.fail(field, "required field missing; see device_profiles/README.md")
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_CORES:
            raise self.fail(
                field, f"expected a positive integer up to {MAX_CORES}, found {_type_name(value)} {_shown(value)}"
            )
        return value

    def figure(
        self, raw: dict, key: str, field: str, kind: str, *, required: bool = True, extra: tuple[str, ...] = ()
    ) -> Figure | None:
        if key not in raw:
            if required:
                raise self.fail(
                    field, f'required figure missing; expected {{ value = "{_EXAMPLE[kind]}", source = "..." }}'
                )
            return None
        fig = raw[key]
        if not isinstance(fig, dict):
            raise self.fail(
                field,
                f'expected an inline table {{ value = "{_EXAMPLE[kind]}", source = "..." }} (or estimated = true '
                f"with a note), found {_type_name(fig)} {_shown(fig)}",
            )
        self.table(fig, field, _FIGURE_KEYS + extra, ("value",))
        value = self._quantity(fig["value"], f"{field}.value", kind)
        floor = _PLAUSIBLE_MIN.get(field) or _PLAUSIBLE_MIN.get(field.rsplit(".", 1)[-1])
        if floor and value < floor[0]:
            raise self.fail(
                f"{field}.value",
                f"expected at least {floor[1]}, found {fig['value']!r} (a bare number is in base units; "
                f"write it with a unit like {_EXAMPLE[kind]!r})",
            )
        estimated = fig.get("estimated", False)
        if not isinstance(estimated, bool):
            raise self.fail(
                f"{field}.estimated", f"expected true or false, found {_type_name(estimated)} {estimated!r}"
            )
        texts: dict[str, str | None] = {}
        for name in ("source", "note", "method"):
            text = fig.get(name)
            if text is not None and (not isinstance(text, str) or not text.strip()):
                raise self.fail(
                    f"{field}.{name}", f"expected a non-empty string, found {_type_name(text)} {_shown(text)}"
                )
            texts[name] = text
        source = texts["source"]
        if source is not None and source.strip().lower() in _PLACEHOLDER_SOURCES:
            raise self.fail(f"{field}.source", f"expected a URL or document name, found placeholder {source!r}")
        if estimated and texts["note"] is None:
            raise self.fail(f"{field}.note", "expected a note saying how the figure was estimated (estimated = true)")
        if source is None and not estimated:
            raise self.fail(
                field,
                f"expected a source (URL or document) or estimated = true with a note, found neither in "
                f"{{ value = {fig['value']!r} }}",
            )
        return Figure(
            value=value, unit=kind, source=source, estimated=estimated, note=texts["note"], method=texts["method"]
        )

    def _quantity(self, value: object, field: str, kind: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(
                field,
                f"expected a quantity like {_EXAMPLE[kind]!r} or a number, found {_type_name(value)} {_shown(value)}",
            )
        try:
            number = parse_quantity(value, kind)
        except UnitError as exc:
            raise self.fail(field, str(exc)) from None
        if not number > 0 or number == float("inf"):
            raise self.fail(field, f"expected a positive quantity like {_EXAMPLE[kind]!r}, found {_shown(value)}")
        ceiling = _PLAUSIBLE_MAX[kind]
        if number > ceiling[0]:
            raise self.fail(
                field, f"expected at most {ceiling[1]} (an edge device), found {_shown(value)}; check the unit"
            )
        return number

    # --- the file ---
    def load(self) -> DeviceProfile:
        try:
            text = read_text(self.path)  # a regular file of at most 16 MiB: never /dev/zero or a FIFO
        except FileNotFoundError:
            raise ProfileError(f"{self.path}: no such file; pass a device id or a path to a .toml profile") from None
        except OSError as exc:
            raise ProfileError(f"{self.path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ProfileError(f"{self.path}: expected UTF-8 text, found byte {exc.object[exc.start]:#x}") from None
        try:
            raw = loads_toml(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{self.path}: TOML syntax: expected valid TOML, found an error: {exc}") from None
        except ValueError as exc:  # a non-finite number, an integer past 4300 digits, nesting too deep
            raise ProfileError(f"{self.path}: TOML: {exc}") from None
        return self.profile(raw)

    def profile(self, raw: dict) -> DeviceProfile:
        top = ("schema_version", "id", "name", "vendor", "kind", "notes", "cpu", "memory", "compute", "power", "price")
        self.table(raw, "", top, ("schema_version", "id", "name", "kind", "cpu", "memory", "compute", "power"))
        version = raw["schema_version"]
        if isinstance(version, bool) or version != SCHEMA_VERSION:
            raise self.fail(
                "schema_version",
                f"expected {SCHEMA_VERSION} (this edgefit reads version {SCHEMA_VERSION}), found {version!r}",
            )
        pid = self.string(raw, "id", "id")
        problem = id_problem(pid, "raspberry-pi-5-8gb")
        if problem is not None:
            raise self.fail("id", problem)
        if pid != self.path.stem:
            raise self.fail("id", f"expected the file name stem {self.path.stem!r}, found {pid!r}; rename one to match")
        cpu = self.table(raw["cpu"], "cpu", ("model", "isa", "features", "clusters", "last_level_cache"), ("clusters",))
        features = cpu.get("features", [])
        if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
            raise self.fail("cpu.features", f"expected an array of strings, found {_shown(features)}")
        mem = self.table(
            raw["memory"],
            "memory",
            ("type", "ram", "usable_ram", "bandwidth", "measured_bandwidth", "measured_read_bandwidth"),
        )
        ram = self._req(self.figure(mem, "ram", "memory.ram", "bytes"))
        usable = self._req(self.figure(mem, "usable_ram", "memory.usable_ram", "bytes"))
        if usable.value > ram.value:
            raise self.fail(
                "memory.usable_ram",
                f"expected <= memory.ram ({mem['ram']['value']}), found {mem['usable_ram']['value']}",
            )
        bandwidth = self._req(self.figure(mem, "bandwidth", "memory.bandwidth", "bytes_per_s"))
        measured = {
            key: self.figure(mem, key, f"memory.{key}", "bytes_per_s", required=False)
            for key in ("measured_bandwidth", "measured_read_bandwidth")
        }
        for key, fig in measured.items():
            if fig is not None and fig.value > bandwidth.value * 1.05:
                raise self.fail(
                    f"memory.{key}",
                    f"expected <= the theoretical memory.bandwidth ({mem['bandwidth']['value']}), "
                    f"found {mem[key]['value']}",
                )
        power = self.table(raw["power"], "power", ("idle", "load", "max", "budget", "battery"))
        idle, load, peak = (self._req(self.figure(power, k, f"power.{k}", "w")) for k in ("idle", "load", "max"))
        if not idle.value <= load.value <= peak.value:
            raise self.fail(
                "power",
                f"expected idle <= load <= max, found idle {power['idle']['value']}, load {power['load']['value']}, "
                f"max {power['max']['value']}",
            )
        price, price_date = self._price(raw)
        return DeviceProfile(
            id=pid,
            name=self.string(raw, "name", "name"),
            kind=self.string(raw, "kind", "kind", choices=KINDS),
            cpu_model=self.string(cpu, "model", "cpu.model"),
            isa=self.string(cpu, "isa", "cpu.isa", choices=ISAS),
            cpu_features=tuple(features),
            clusters=self._clusters(cpu["clusters"]),
            ram=ram,
            usable_ram=usable,
            memory_type=self.string(mem, "type", "memory.type"),
            bandwidth=bandwidth,
            engines=self._engines(raw["compute"]),
            idle_power=idle,
            load_power=load,
            max_power=peak,
            measured_bandwidth=measured["measured_bandwidth"],
            measured_read_bandwidth=measured["measured_read_bandwidth"],
            last_level_cache=self.figure(cpu, "last_level_cache", "cpu.last_level_cache", "bytes", required=False),
            power_budget=self.figure(power, "budget", "power.budget", "w", required=False),
            battery=self.figure(power, "battery", "power.battery", "wh", required=False),
            price=price,
            price_date=price_date,
            vendor=self.string(raw, "vendor", "vendor", required=False),
            notes=self.string(raw, "notes", "notes", required=False),
            path=str(self.path),
        )

    @staticmethod
    def _req(fig: Figure | None) -> Figure:
        if fig is None:  # figure(required=True) never returns None; this narrows the type
            raise ValueError("required figure missing")
        return fig

    def _clusters(self, raw: object) -> tuple[CpuCluster, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(
                "cpu.clusters", f"expected a non-empty array of tables, found {_type_name(raw)} {_shown(raw)}"
            )
        clusters = []
        for i, item in enumerate(raw):
            field = f"cpu.clusters[{i}]"
            c = self.table(item, field, ("name", "cores", "max_clock"), ("name", "cores", "max_clock"))
            clusters.append(
                CpuCluster(
                    name=self.string(c, "name", f"{field}.name"),
                    cores=self.positive_int(c, "cores", f"{field}.cores"),
                    max_clock_hz=self._req(self.figure(c, "max_clock", f"{field}.max_clock", "hz")),
                )
            )
        return tuple(clusters)

    def _engines(self, raw: object) -> tuple[ComputeEngine, ...]:
        compute = self.table(raw, "compute", ENGINE_KINDS, ("cpu",))
        engines = []
        for kind in ENGINE_KINDS:
            if kind not in compute:
                continue
            field = f"compute.{kind}"
            e = self.table(compute[kind], field, ("provider", "name", *_ENGINE_FIGURES), ("provider",))
            figs = {k: self.figure(e, k, f"{field}.{k}", unit, required=False) for k, unit in _ENGINE_FIGURES.items()}
            if kind == "cpu" and figs["peak_fp32"] is None:
                raise self.fail(
                    f"{field}.peak_fp32",
                    'required figure missing; expected { value = "150 GFLOPS", estimated = true, '
                    'note = "cores x clock x FLOP/cycle" }',
                )
            if all(f is None for f in figs.values()):
                raise self.fail(field, "expected at least one of peak_fp32, peak_fp16, peak_int8, found none")
            engines.append(
                ComputeEngine(
                    kind=kind,
                    provider=self.string(e, "provider", f"{field}.provider"),
                    peak_fp32_flops_per_s=figs["peak_fp32"],
                    peak_fp16_flops_per_s=figs["peak_fp16"],
                    peak_int8_ops_per_s=figs["peak_int8"],
                    measured_fp32_flops_per_s=figs["measured_fp32"],
                    measured_int8_ops_per_s=figs["measured_int8"],
                    name=self.string(e, "name", f"{field}.name", required=False),
                )
            )
        return tuple(engines)

    def _price(self, raw: dict) -> tuple[Figure | None, str | None]:
        if "price" not in raw:
            return None, None
        price = self.table(raw["price"], "price", ("usd",), ("usd",))
        fig = self.figure(price, "usd", "price.usd", "usd", extra=("date",))
        date = price["usd"].get("date")
        if not isinstance(date, str) or not re.match(r"^\d{4}-\d{2}(-\d{2})?$", date):
            raise self.fail("price.usd.date", f"expected a date like '2025-06', found {_shown(date)}")
        return fig, date


# --- the library ---------------------------------------------------------------------------------------------


def profile_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def load_profiles(extra_dirs: tuple[str | Path, ...] | list[str | Path] = ()) -> tuple[DeviceProfile, ...]:
    """Every profile in the built-in library plus ``extra_dirs``, sorted by id. Duplicate ids are an error."""
    seen: dict[str, DeviceProfile] = {}
    for directory in (builtin_profiles_dir(), *(Path(d) for d in extra_dirs)):
        for path in profile_files(directory):
            p = DeviceProfile.from_toml(path)
            if p.id in seen:
                raise ProfileError(
                    f"{path}: id: expected a unique device id, found {p.id!r} also in {seen[p.id].path}; "
                    f"remove or rename one of the two files"
                )
            seen[p.id] = p
    return tuple(sorted(seen.values(), key=lambda p: p.id))


def get_profile(ref: str, extra_dirs: tuple[str | Path, ...] | list[str | Path] = ()) -> DeviceProfile:
    """A device by id (built-in library, ``extra_dirs``), by path to a .toml file, or ``host`` (this machine:
    ``edgefit.detect.host_profile()``, cached after the first probe)."""
    if ref == "host":
        from edgefit.detect import host_profile  # detect builds on this module; import it only when asked

        return host_profile()
    if ref.endswith(".toml") or "/" in ref or "\\" in ref:
        return DeviceProfile.from_toml(Path(ref))
    profiles = load_profiles(extra_dirs)
    for p in profiles:
        if p.id == ref:
            return p
    hints = did_you_mean(ref, [p.id for p in profiles], n=3)
    mean = f"; did you mean {', '.join(hints)}?" if hints else ";"
    raise ProfileError(f"unknown device {ref!r}{mean} `edgefit profiles list` shows all")


def with_id(profile: DeviceProfile, new_id: str) -> DeviceProfile:
    """The same profile under another id (``edgefit detect --save my-box.toml`` names it after the file)."""
    check_id(new_id, "id", ProfileError, example="my-laptop")
    return replace(profile, id=new_id)


# --- views ---------------------------------------------------------------------------------------------------


def iter_figures(p: DeviceProfile) -> list[tuple[str, Figure]]:
    """Every figure of a profile with its field path as written in the TOML file (``memory.ram``, ...)."""
    out: list[tuple[str, Figure | None]] = [
        *((f"cpu.clusters[{i}].max_clock", c.max_clock_hz) for i, c in enumerate(p.clusters)),
        ("cpu.last_level_cache", p.last_level_cache),
        ("memory.ram", p.ram),
        ("memory.usable_ram", p.usable_ram),
        ("memory.bandwidth", p.bandwidth),
        ("memory.measured_bandwidth", p.measured_bandwidth),
        ("memory.measured_read_bandwidth", p.measured_read_bandwidth),
    ]
    for e in p.engines:
        out += [
            (f"compute.{e.kind}.peak_fp32", e.peak_fp32_flops_per_s),
            (f"compute.{e.kind}.peak_fp16", e.peak_fp16_flops_per_s),
            (f"compute.{e.kind}.peak_int8", e.peak_int8_ops_per_s),
            (f"compute.{e.kind}.measured_fp32", e.measured_fp32_flops_per_s),
            (f"compute.{e.kind}.measured_int8", e.measured_int8_ops_per_s),
        ]
    out += [
        ("power.idle", p.idle_power),
        ("power.load", p.load_power),
        ("power.max", p.max_power),
        ("power.budget", p.power_budget),
        ("power.battery", p.battery),
        ("price.usd", p.price),
    ]
    return [(name, fig) for name, fig in out if fig is not None]


def figure_to_dict(fig: Figure | None) -> dict[str, Any] | None:
    if fig is None:
        return None
    value: float | int = int(fig.value) if fig.unit == "bytes" and float(fig.value).is_integer() else fig.value
    d: dict[str, Any] = {"value": value, "unit": fig.unit, "source": fig.source, "estimated": fig.estimated}
    if fig.note:
        d["note"] = fig.note
    if fig.method:
        d["method"] = fig.method
    return d


def profile_to_dict(p: DeviceProfile) -> dict[str, Any]:
    """JSON-able view: base SI units, the unit in every key, each figure with its source or estimate note."""
    f = figure_to_dict
    return {
        "schema_version": SCHEMA_VERSION,
        "id": p.id,
        "name": p.name,
        "vendor": p.vendor,
        "kind": p.kind,
        "notes": p.notes,
        "path": p.path,
        "cpu": {
            "model": p.cpu_model,
            "isa": p.isa,
            "features": list(p.cpu_features),
            "cores": p.cpu_cores,
            "clusters": [{"name": c.name, "cores": c.cores, "max_clock_hz": f(c.max_clock_hz)} for c in p.clusters],
            "last_level_cache_bytes": f(p.last_level_cache),
        },
        "memory": {
            "type": p.memory_type,
            "ram_bytes": f(p.ram),
            "usable_ram_bytes": f(p.usable_ram),
            "bandwidth_bytes_per_s": f(p.bandwidth),
            "measured_bandwidth_bytes_per_s": f(p.measured_bandwidth),
            "measured_read_bandwidth_bytes_per_s": f(p.measured_read_bandwidth),
        },
        "compute": {
            e.kind: {
                "provider": e.provider,
                "name": e.name,
                "peak_fp32_flops_per_s": f(e.peak_fp32_flops_per_s),
                "peak_fp16_flops_per_s": f(e.peak_fp16_flops_per_s),
                "peak_int8_ops_per_s": f(e.peak_int8_ops_per_s),
                "measured_fp32_flops_per_s": f(e.measured_fp32_flops_per_s),
                "measured_int8_ops_per_s": f(e.measured_int8_ops_per_s),
            }
            for e in p.engines
        },
        "power": {
            "idle_w": f(p.idle_power),
            "load_w": f(p.load_power),
            "max_w": f(p.max_power),
            "budget_w": f(p.power_budget),
            "battery_wh": f(p.battery),
        },
        "price": {"usd": f(p.price), "date": p.price_date} if p.price else None,
    }
