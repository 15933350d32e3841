"""The results database (SQLite, standard library) and versioned JSON bundles that move results between hosts.

```
 runs          id (uuid4 text), kind, started_at, finished_at, status, host_fingerprint,
               environment (JSON, edgefit.bench.env.Environment.to_dict), edgefit / onnxruntime versions
 measurements  one row per Measurement: every field a column; samples / warnings as JSON; fields a newer
               Measurement has that this schema lacks go to `extra` (JSON). UNIQUE natural key, so importing
               the same measurement twice adds nothing.
 validations   JSON result of `edgefit validate`, created_at, host
```

Durability: WAL journal, and every add commits at once, so a bench killed mid-run leaves a readable database
with every finished measurement. The schema version is ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes a
database from version i to i + 1, applied in order in one transaction when a database is opened.
A results bundle is a JSON file (``BUNDLE_FORMAT``, ``BUNDLE_SCHEMA_VERSION``) of runs, each with its
environment and its measurements with raw samples; importing validates everything before writing anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefit import __version__
from edgefit.bench.env import Environment
from edgefit.bench.measurement import Measurement, Phase
from edgefit.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_SCHEMA_VERSION,
    RUN_STATUSES,
    load_bundle,
    measurement_from_dict,
    measurement_to_dict,
)
from edgefit.errors import StoreError
from edgefit.inputfiles import dumps_json, loads_json

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_SCHEMA_VERSION",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ExportSummary",
    "HostInfo",
    "ImportSummary",
    "RunInfo",
    "Store",
    "load_bundle",
    "measurement_from_dict",
    "measurement_to_dict",
]


# MIGRATIONS[i] upgrades schema version i to i + 1. Never edit a released step; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 -> 1: runs and measurements
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
            status TEXT NOT NULL, host_fingerprint TEXT NOT NULL, environment TEXT NOT NULL,
            edgefit_version TEXT NOT NULL, onnxruntime_version TEXT)""",
        """CREATE TABLE measurements (
            id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id), host_fingerprint TEXT NOT NULL,
            model_id TEXT NOT NULL, model_hash TEXT NOT NULL, precision TEXT NOT NULL, threads INTEGER NOT NULL,
            provider TEXT NOT NULL, phase TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
            context_tokens INTEGER NOT NULL, samples_s TEXT NOT NULL, warmup_samples_s TEXT NOT NULL,
            params INTEGER NOT NULL, weight_file_bytes INTEGER NOT NULL,
            weight_read_bytes_per_token INTEGER NOT NULL, peak_rss_bytes INTEGER, steady_rss_bytes INTEGER,
            load_s REAL, stop_reason TEXT NOT NULL, warnings TEXT NOT NULL, timer TEXT NOT NULL,
            started_at TEXT NOT NULL,
            UNIQUE (run_id, model_id, model_hash, precision, threads, provider, phase, prompt_tokens,
                    context_tokens, started_at))""",
        "CREATE INDEX measurements_host ON measurements (host_fingerprint, precision)",
    ),
    (  # 1 -> 2: probe bandwidth and model shape on measurements, forward-compatible extras, validations
        "ALTER TABLE measurements ADD COLUMN probe_bandwidth_bytes_per_s REAL",
        "ALTER TABLE measurements ADD COLUMN layers INTEGER",
        "ALTER TABLE measurements ADD COLUMN hidden_size INTEGER",
        "ALTER TABLE measurements ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'",
        """CREATE TABLE validations (
            id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, host_fingerprint TEXT, result TEXT NOT NULL)""",
    ),
    (  # 2 -> 3: kernel tables (the calibration, one per kernel run) and device <-> host fingerprint links
        """CREATE TABLE kernel_tables (
            id INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE REFERENCES runs(id),
            host_fingerprint TEXT NOT NULL, created_at TEXT NOT NULL, kernel_table TEXT NOT NULL)""",
        "CREATE INDEX kernel_tables_host ON kernel_tables (host_fingerprint)",
        """CREATE TABLE device_links (
            device_id TEXT NOT NULL, host_fingerprint TEXT NOT NULL, created_at TEXT NOT NULL,
            PRIMARY KEY (device_id, host_fingerprint))""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# Measurement fields stored in their own columns (as of SCHEMA_VERSION); the rest go to `extra`.
_COLUMNS = (
    *("run_id", "host_fingerprint", "model_id", "model_hash", "precision", "threads", "provider", "phase"),
    *("prompt_tokens", "context_tokens", "samples_s", "warmup_samples_s", "params", "weight_file_bytes"),
    *("weight_read_bytes_per_token", "peak_rss_bytes", "steady_rss_bytes", "load_s", "stop_reason", "warnings"),
    *("timer", "started_at", "probe_bandwidth_bytes_per_s", "layers", "hidden_size"),
)
_JSON_COLUMNS = ("samples_s", "warmup_samples_s", "warnings")
_EMPTY_DEFAULTS = frozenset(f.name for f in dataclasses.fields(Measurement) if f.default in (None, ()))


def _row_json(text: object, where: str) -> Any:
    """A JSON column of a row, or StoreError naming the row (a hand-edited or damaged database)."""
    try:
        return loads_json(str(text))
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, nesting
        raise StoreError(
            f"{where}: not valid JSON ({exc}); the database was edited or damaged: fix or delete that row, "
            "or pass another --db"
        ) from None


# --- whose run is it: the process identity stored with a running run --------------------------------------
PROCESS_KEY = "process"  # key in a run's environment JSON: {"pid", "start_ticks", "boot_id"}


def _read_proc(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot, /proc/<pid>/stat field 22); None where unknown."""
    text = _read_proc(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name (field 2) may hold spaces and parentheses
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _boot_id() -> str | None:
    text = _read_proc("/proc/sys/kernel/random/boot_id")
    return text.strip() if text else None


def process_identity(pid: int) -> dict[str, Any]:
    """What tells this process apart from a later one with the same pid: its start time and the boot it ran in."""
    return {"pid": pid, "start_ticks": _start_ticks(pid), "boot_id": _boot_id()}


def process_gone(ident: Mapping[str, Any]) -> bool:
    """True when the process ``ident`` describes no longer runs (pid dead, reused, or the machine rebooted)."""
    pid = ident.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False  # nothing to judge by
    boot = ident.get("boot_id")
    if boot is not None and _boot_id() is not None and boot != _boot_id():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        pass  # exists, owned by someone else
    ticks = ident.get("start_ticks")
    return ticks is not None and _start_ticks(pid) not in (None, ticks)


def _now(timespec: str = "seconds") -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec=timespec)


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: str
    kind: str
    started_at: str
    finished_at: str | None
    status: str
    host_fingerprint: str
    edgefit_version: str
    onnxruntime_version: str | None
    measurement_count: int
    environment: Environment

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "environment"}
        out["environment"] = self.environment.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class HostInfo:
    host_fingerprint: str
    cpu_model: str | None
    machine: str
    os_name: str
    runs: int
    measurements: int
    first_seen: str
    last_seen: str


@dataclass(frozen=True, slots=True)
class ImportSummary:
    path: str
    runs_added: int
    runs_skipped: int  # already present (same run id)
    measurements_added: int
    measurements_skipped: int  # already present (same natural key)
    hosts: tuple[str, ...]  # host fingerprints in the bundle


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: str
    runs: int
    measurements: int
    hosts: tuple[str, ...]


# ---------------------------------------------------------------------------------------------- the store


_SQLITE_HEADER = b"SQLite format 3\x00"


class Store:
    """``with Store(path) as store: ...``. Creates the file and its folder; migrates older schemas."""

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory, not a results database; pass a file path to --db")
        self._check_existing_file()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create its folder ({exc.strerror}); pass another --db") from None
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open ({exc}); check permissions or pass another --db") from None
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if "not a database" in str(exc) or "encrypted" in str(exc):
                raise StoreError(
                    f"{self.path}: not an SQLite results database ({exc}); point --db (or EDGEFIT_DB) at an "
                    "edgefit database or a new file, and move this one away"
                ) from None
            raise StoreError(
                f"{self.path}: cannot use the results database ({exc}); check its permissions and free disk "
                "space, or pass another --db"
            ) from None
        except BaseException:
            self._conn.close()
            raise

    def _check_existing_file(self) -> None:
        """An existing --db must be a regular file that is empty (a new database) or starts with SQLite's header:
        SQLite itself would quietly turn a short non-database file (a 1-byte typo'd path) into a database."""
        if not os.path.lexists(self.path):
            return
        if not self.path.is_file():
            raise StoreError(f"{self.path}: not a regular file; point --db (or EDGEFIT_DB) at a database file")
        try:
            with self.path.open("rb") as f:
                head = f.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot read ({exc.strerror or exc}); check permissions or pass another --db"
            ) from None
        if head and head != _SQLITE_HEADER:
            raise StoreError(
                f"{self.path}: not an SQLite results database (it does not start with SQLite's header); point --db "
                "(or EDGEFIT_DB) at an edgefit database or a new file, and move this one away"
            )

    def _open(self) -> None:
        c = self._conn
        version = int(c.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: results schema version {version} is newer than this edgefit {__version__} reads "
                f"({SCHEMA_VERSION}); upgrade edgefit, or pass another --db"
            )
        if version == 0:
            tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if tables:
                raise StoreError(
                    f"{self.path}: an SQLite database but not edgefit's (tables: {', '.join(sorted(tables))}); "
                    "pass another --db"
                )
        c.execute("PRAGMA journal_mode = WAL")
        c.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            with self._transaction():
                # Re-read inside the write lock: another process may have migrated meanwhile.
                version = int(c.execute("PRAGMA user_version").fetchone()[0])
                for step in MIGRATIONS[version:]:
                    for statement in step:
                        c.execute(statement)
                c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front: a second writer waits (timeout 30 s) instead of
        # failing half-way. Operational failures (locked past the timeout, disk full, read-only file) become
        # StoreError; the transaction is rolled back, so the database keeps its previous state.
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise StoreError(
                f"{self.path}: could not write ({exc}); is another edgefit writing to it, the disk full or the "
                "file read-only? Retry, or pass another --db"
            ) from None

    # ------------------------------------------------------------------------------------------ runs

    def start_run(self, env: Environment, kind: str, *, run_id: str | None = None) -> str:
        """Record a new run (status ``running``) with its environment; returns its id (a uuid4)."""
        rid = run_id or str(uuid.uuid4())
        self.reap_dead_runs(env.host_fingerprint)
        env_dict = env.to_dict()
        env_dict[PROCESS_KEY] = process_identity(os.getpid())  # who runs it: a later command can tell it died
        with self._transaction() as c:
            c.execute(
                "INSERT INTO runs (id, kind, started_at, finished_at, status, host_fingerprint, environment, "
                "edgefit_version, onnxruntime_version) VALUES (?, ?, ?, NULL, 'running', ?, ?, ?, ?)",
                (rid, kind, _now(), env.host_fingerprint, dumps_json(env_dict), __version__,
                 env.onnxruntime_version),
            )  # fmt: skip
        return rid

    def reap_dead_runs(self, host_fingerprint: str) -> tuple[str, ...]:
        """Mark ``killed`` every ``running`` run of this host whose process is gone (SIGKILL, a crash, a reboot):
        its pid is dead, or reused by a process that started at another time, or the machine rebooted since.
        Runs recorded without a process identity (older edgefit) are left alone. Best effort: a read-only
        database is left as it is. Returns the ids marked."""
        rows = self._conn.execute(
            "SELECT id, environment FROM runs WHERE status = 'running' AND host_fingerprint = ?", (host_fingerprint,)
        ).fetchall()
        dead = []
        for rid, env_text in rows:
            try:
                ident = json.loads(env_text).get(PROCESS_KEY)
            except (ValueError, AttributeError):
                continue
            if isinstance(ident, dict) and process_gone(ident):
                dead.append(str(rid))
        if dead:
            with contextlib.suppress(StoreError), self._transaction() as c:
                c.executemany(
                    "UPDATE runs SET status = 'killed', finished_at = ? WHERE id = ? AND status = 'running'",
                    [(_now(), rid) for rid in dead],
                )
        return tuple(dead)

    def finish_run(self, run_id: str, status: str = "finished") -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, found {status!r}")
        with self._transaction() as c:
            cur = c.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, _now(), run_id))
            if cur.rowcount == 0:
                raise StoreError(f"{self.path}: no run {run_id!r} to finish")

    def _run_rows(self, where: str = "", params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        self._conn.row_factory = sqlite3.Row
        try:
            return list(
                self._conn.execute(
                    "SELECT r.*, (SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.id) AS n "
                    f"FROM runs r {where} ORDER BY r.started_at, r.rowid",
                    tuple(params),
                )
            )
        finally:
            self._conn.row_factory = None

    def _run_info(self, row: sqlite3.Row) -> RunInfo:
        return RunInfo(
            id=row["id"],
            kind=row["kind"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            status=row["status"],
            host_fingerprint=row["host_fingerprint"],
            edgefit_version=row["edgefit_version"],
            onnxruntime_version=row["onnxruntime_version"],
            measurement_count=int(row["n"]),
            environment=Environment.from_dict(
                _row_json(row["environment"], f"{self.path}: runs row {row['id']!r}: environment")
            ),
        )

    def runs(self, host_fingerprint: str | None = None) -> tuple[RunInfo, ...]:
        """All runs, oldest first (one host's if given)."""
        if host_fingerprint is None:
            rows = self._run_rows()
        else:
            rows = self._run_rows("WHERE r.host_fingerprint = ?", (host_fingerprint,))
        return tuple(self._run_info(r) for r in rows)

    def resolve_run_id(self, ref: str) -> str:
        """A full run id or a unique prefix of one -> the full id (StoreError: unknown or ambiguous)."""
        ref = ref.strip()
        if not ref:
            raise StoreError("empty run id; `edgefit results list` shows the runs")
        pattern = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        ids = [r[0] for r in self._conn.execute("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\'", (pattern,))]
        if len(ids) == 1:
            return str(ids[0])
        if ref in ids:
            return ref
        if not ids:
            raise StoreError(f"{self.path}: no run {ref!r}; `edgefit results list` shows the runs")
        shown = ", ".join(sorted(i[: len(ref) + 4] for i in ids)[:5])
        raise StoreError(f"{self.path}: run prefix {ref!r} is ambiguous ({shown}...); give more characters")

    def run(self, ref: str) -> RunInfo:
        rows = self._run_rows("WHERE r.id = ?", (self.resolve_run_id(ref),))
        return self._run_info(rows[0])

    def hosts(self) -> tuple[HostInfo, ...]:
        """Every host with runs here, with its CPU (from its latest run) and counts; most recent first."""
        out: list[HostInfo] = []
        by_host: dict[str, list[RunInfo]] = {}
        for r in self.runs():
            by_host.setdefault(r.host_fingerprint, []).append(r)
        for fp, runs in by_host.items():
            env = runs[-1].environment
            out.append(
                HostInfo(
                    host_fingerprint=fp,
                    cpu_model=env.cpu_model,
                    machine=env.machine,
                    os_name=env.os_name,
                    runs=len(runs),
                    measurements=sum(r.measurement_count for r in runs),
                    first_seen=runs[0].started_at,
                    last_seen=runs[-1].started_at,
                )
            )
        return tuple(sorted(out, key=lambda h: h.last_seen, reverse=True))

    # ------------------------------------------------------------------------------------------ measurements

    @staticmethod
    def _row_values(m: Measurement) -> tuple[list[str], list[Any]]:
        d = measurement_to_dict(m)
        # Fields without a column go to `extra`; empty ones (no power readings, no series) are left out: they
        # come back as their defaults
        extra = {k: v for k, v in d.items() if k not in _COLUMNS and not (k in _EMPTY_DEFAULTS and v in (None, []))}
        names, values = [], []
        for col in _COLUMNS:
            value = d[col]
            if col in _JSON_COLUMNS:
                value = dumps_json(value)  # NaN/Infinity would be invalid JSON in every export: refused
            elif col == "started_at" and value is None:
                value = ""  # part of the UNIQUE key: NULLs would never collide
            names.append(col)
            values.append(value)
        names.append("extra")
        values.append(dumps_json(extra))
        return names, values

    def add_measurement(self, m: Measurement) -> int:
        """Store one measurement of a started run and commit at once; returns its row id.

        ``m.run_id`` must name a run from ``start_run``. A missing ``started_at`` is set to now (microseconds),
        which keeps two repeats of one configuration in one run apart.
        """
        if m.run_id is None:
            raise ValueError("measurement has no run_id: call Store.start_run first and set Measurement.run_id")
        if m.started_at is None:
            m = dataclasses.replace(m, started_at=_now("microseconds"))
        names, values = self._row_values(m)
        sql = f"INSERT INTO measurements ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        try:
            with self._transaction() as c:
                cur = c.execute(sql, values)
        except sqlite3.IntegrityError as exc:
            raise StoreError(
                f"{self.path}: cannot store measurement of {m.model_id} {m.precision} {m.phase.value} in run "
                f"{m.run_id} ({exc}); is the run started, and is this configuration already stored?"
            ) from None
        return int(cur.lastrowid or 0)

    def measurements(
        self,
        host_fingerprint: str | None = None,
        precision: str | None = None,
        model_id: str | None = None,
        run_id: str | None = None,
        phase: Phase | str | None = None,
    ) -> tuple[Measurement, ...]:
        """Stored measurements rebuilt as Measurement objects, in insertion order; filters combine with AND."""
        clauses, params = [], []
        for col, value in (
            ("host_fingerprint", host_fingerprint),
            ("precision", precision),
            ("model_id", model_id),
            ("run_id", run_id),
            ("phase", phase.value if isinstance(phase, Phase) else phase),
        ):
            if value is not None:
                clauses.append(f"{col} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        cols = [*_COLUMNS, "extra"]
        rows = self._conn.execute(f"SELECT id, {', '.join(cols)} FROM measurements {where} ORDER BY id", params)
        return tuple(self._measurement(row[0], dict(zip(cols, row[1:], strict=True))) for row in rows)

    def _measurement(self, row_id: int, row: dict[str, Any]) -> Measurement:
        data: dict[str, Any] = {}
        where = f"{self.path}: measurements row {row_id}"
        extra = _row_json(row.pop("extra") or "{}", f"{where}: extra")
        if not isinstance(extra, dict):
            raise StoreError(f"{where}: extra: expected a JSON object, found {type(extra).__name__}")
        data.update(extra)
        for col, value in row.items():
            data[col] = _row_json(value, f"{where}: {col}") if col in _JSON_COLUMNS else value
        if data.get("started_at") == "":
            data["started_at"] = None
        return measurement_from_dict(data, where=f"{self.path}: measurements row {row_id}")

    # ------------------------------------------------------------------------------------------ validations

    def save_validation(self, result: Mapping[str, Any], host_fingerprint: str | None = None) -> int:
        try:
            text = dumps_json(dict(result))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"validation result must be JSON-able: {exc}") from None
        with self._transaction() as c:
            cur = c.execute(
                "INSERT INTO validations (created_at, host_fingerprint, result) VALUES (?, ?, ?)",
                (_now(), host_fingerprint, text),
            )
        return int(cur.lastrowid or 0)

    def latest_validation(self, host_fingerprint: str | None = None) -> dict[str, Any] | None:
        """The most recently saved validation result (of one host if given), as saved; None if there is none."""
        sql = "SELECT result FROM validations"
        params: tuple[Any, ...] = ()
        if host_fingerprint is not None:
            sql += " WHERE host_fingerprint = ?"
            params = (host_fingerprint,)
        row = self._conn.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
        if row is None:
            return None
        result = _row_json(row[0], f"{self.path}: latest validation")
        if not isinstance(result, dict):
            raise StoreError(f"{self.path}: latest validation: expected a JSON object; re-run `edgefit validate`")
        return result

    # ------------------------------------------------------------------------------------------ kernel tables

    def save_kernel_table(self, run_id: str, host_fingerprint: str, table: Mapping[str, Any]) -> None:
        """Store a kernel table (JSON-able dict, ``edgefit.kernels.table.KernelTable.to_dict``) for a run."""
        text = json.dumps(dict(table), allow_nan=False)
        with self._transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO kernel_tables (run_id, host_fingerprint, created_at, kernel_table) "
                "VALUES (?, ?, ?, ?)",
                (run_id, host_fingerprint, _now(), text),
            )

    def kernel_tables(self, host_fingerprint: str | None = None) -> tuple[tuple[str, str, dict[str, Any]], ...]:
        """(run_id, host_fingerprint, table dict) of every stored kernel table, oldest first."""
        sql = "SELECT run_id, host_fingerprint, kernel_table FROM kernel_tables"
        params: tuple[Any, ...] = ()
        if host_fingerprint is not None:
            sql += " WHERE host_fingerprint = ?"
            params = (host_fingerprint,)
        out = []
        for run_id, fp, text in self._conn.execute(sql + " ORDER BY id", params):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise StoreError(
                    f"{self.path}: kernel table of run {run_id} is not valid JSON ({exc.msg}); "
                    "re-run `edgefit calibrate` or pass another --db"
                ) from None
            if isinstance(data, dict):
                out.append((str(run_id), str(fp), data))
        return tuple(out)

    # ------------------------------------------------------------------------------------------ device links

    def link_device(self, device_id: str, host_fingerprint: str) -> bool:
        """Say that ``host_fingerprint`` is device ``device_id``; False when the link already existed."""
        with self._transaction() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO device_links (device_id, host_fingerprint, created_at) VALUES (?, ?, ?)",
                (device_id, host_fingerprint, _now()),
            )
        return bool(cur.rowcount)

    def device_links(self) -> dict[str, tuple[str, ...]]:
        """device id -> host fingerprints linked to it (oldest link first)."""
        out: dict[str, list[str]] = {}
        for dev, fp in self._conn.execute("SELECT device_id, host_fingerprint FROM device_links ORDER BY rowid"):
            out.setdefault(str(dev), []).append(str(fp))
        return {k: tuple(v) for k, v in out.items()}

    # ------------------------------------------------------------------------------------------ bundles

    def _check_same_runs(self, c: sqlite3.Connection, path: object, runs: Sequence[Mapping[str, Any]]) -> None:
        """A bundle run whose id is already here must be that same run (host, kind, start time): otherwise its
        measurements would silently join another run. Refused, not renamed: a run id is what every other copy of
        these results and every report refers to, so a silent new id would split one run into two."""
        for run in runs:
            row = c.execute("SELECT host_fingerprint, kind, started_at FROM runs WHERE id = ?", (run["id"],)).fetchone()
            if row is None:
                continue
            here = (str(row[0]), str(row[1]), str(row[2]))
            there = (run["host_fingerprint"], run["kind"], run["started_at"])
            if here != there:
                raise StoreError(
                    f"{path}: run {run['id']} (host {there[0][:8]}, {there[1]}, started {there[2]}) has the id of a "
                    f"different run in {self.path} (host {here[0][:8]}, {here[1]}, started {here[2]}); refused, "
                    "nothing imported: import the bundle into another --db"
                )

    def export_bundle(self, run_ids: Iterable[str] | None, path: str | os.PathLike[str]) -> ExportSummary:
        """Write runs (all if ``run_ids`` is None; ids or unique prefixes) to a versioned JSON bundle."""
        ids = None if run_ids is None else [self.resolve_run_id(r) for r in run_ids]
        runs = self.runs() if ids is None else tuple(self.run(i) for i in dict.fromkeys(ids))
        env_json = dict(self._conn.execute("SELECT id, environment FROM runs"))
        tables = {run_id: t for run_id, _fp, t in self.kernel_tables()}
        bundle_runs = []
        n = 0
        for r in runs:
            ms = [measurement_to_dict(m) for m in self.measurements(run_id=r.id)]
            for d in ms:
                d.pop("run_id", None)
            n += len(ms)
            bundle_runs.append(
                {
                    "id": r.id,
                    "kind": r.kind,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "status": r.status,
                    "host_fingerprint": r.host_fingerprint,
                    "edgefit_version": r.edgefit_version,
                    "onnxruntime_version": r.onnxruntime_version,
                    # as stored, so fields a newer edgefit recorded survive a pass through this one
                    "environment": _row_json(env_json[r.id], f"{self.path}: runs row {r.id!r}: environment"),
                    "measurements": ms,
                }
            )
            if r.id in tables:
                bundle_runs[-1]["kernel_table"] = tables[r.id]
        bundle = {
            "format": BUNDLE_FORMAT,
            "schema_version": BUNDLE_SCHEMA_VERSION,
            "edgefit_version": __version__,
            "exported_at": _now(),
            "runs": bundle_runs,
        }
        out = Path(path)
        if out.is_dir():
            raise StoreError(f"{out}: is a directory; --out expects a file path such as {out / 'results.json'}")
        try:
            text = dumps_json(bundle, indent=1) + "\n"
        except ValueError as exc:  # NaN/Infinity slipped into the database: refuse rather than write invalid JSON
            raise StoreError(f"{self.path}: cannot export ({exc}); the database holds a non-finite number") from None
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(out)
        except OSError as exc:
            raise StoreError(f"{out}: cannot write the bundle ({exc.strerror or exc}); pick another --out") from None
        finally:
            with contextlib.suppress(OSError):  # ENOTDIR when the folder is a file: the StoreError above says it
                tmp.unlink(missing_ok=True)  # after a successful replace there is nothing left to remove
        hosts = tuple(dict.fromkeys(r.host_fingerprint for r in runs))
        return ExportSummary(path=str(out), runs=len(runs), measurements=n, hosts=hosts)

    def import_bundle(self, path: str | os.PathLike[str]) -> ImportSummary:
        """Add a bundle's runs and measurements. Validates everything first; idempotent (re-import adds 0)."""
        runs = load_bundle(path)
        added_runs = skipped_runs = added_m = skipped_m = 0
        with self._transaction() as c:
            self._check_same_runs(c, path, [run for run, _ in runs])
            for run, ms in runs:
                cur = c.execute(
                    "INSERT OR IGNORE INTO runs (id, kind, started_at, finished_at, status, host_fingerprint, "
                    "environment, edgefit_version, onnxruntime_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run["id"], run["kind"], run["started_at"], run["finished_at"], run["status"],
                     run["host_fingerprint"], dumps_json(run["environment"]), run["edgefit_version"],
                     run["onnxruntime_version"]),
                )  # fmt: skip
                if cur.rowcount:
                    added_runs += 1
                else:
                    skipped_runs += 1
                    # a run exported while still running, now re-exported finished: take the final status
                    c.execute(
                        "UPDATE runs SET status = ?, finished_at = ? WHERE id = ? AND status = 'running'",
                        (run["status"], run["finished_at"], run["id"]),
                    )
                if "kernel_table" in run:
                    c.execute(
                        "INSERT OR IGNORE INTO kernel_tables (run_id, host_fingerprint, created_at, kernel_table) "
                        "VALUES (?, ?, ?, ?)",
                        (run["id"], run["host_fingerprint"], _now(), dumps_json(run["kernel_table"])),
                    )
                for m in ms:
                    names, values = self._row_values(m)
                    sql = (
                        f"INSERT OR IGNORE INTO measurements ({', '.join(names)}) "
                        f"VALUES ({', '.join('?' * len(names))})"
                    )
                    if c.execute(sql, values).rowcount:
                        added_m += 1
                    else:
                        skipped_m += 1
        hosts = tuple(dict.fromkeys(run["host_fingerprint"] for run, _ in runs))
        return ImportSummary(str(path), added_runs, skipped_runs, added_m, skipped_m, hosts)
