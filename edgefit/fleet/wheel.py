"""This edgefit as a wheel, to install on the fleet's hosts.

From a source checkout (an editable install, or running from the repository) it is built with
``pip wheel --no-deps`` each time, so the hosts run the code the controller runs. From an installed wheel there
is no source to build from: the wheel is taken from ``--wheels DIR`` (``edgefit-<version>-*.whl``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from edgefit import __version__
from edgefit.errors import FleetError

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def source_tree() -> Path | None:
    """The repository this edgefit runs from, if it runs from one (pyproject.toml of project "edgefit")."""
    root = _PACKAGE_DIR.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "edgefit"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def _in_wheelhouse(wheels_dir: Path) -> Path | None:
    found = sorted(wheels_dir.glob(f"edgefit-{__version__}-*.whl"))
    return found[-1] if found else None


def wheelhouse_tar(wheels_dir: Path, work_dir: Path) -> Path:
    """``wheels_dir``'s wheels as one tar in ``work_dir`` (one transfer per host instead of one per file), named
    by a hash of the wheels' names, sizes and times so an unchanged folder is neither re-packed nor re-sent."""
    wheels = sorted(p for p in wheels_dir.iterdir() if p.is_file() and p.name.endswith(".whl"))
    if not wheels:
        raise FleetError(f"--wheels {wheels_dir}: no .whl files in it; fill it with `pip wheel -w {wheels_dir} ...`")
    h = hashlib.sha256()
    for p in wheels:
        st = p.stat()
        h.update(f"{p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    target = work_dir / f"wheelhouse-{h.hexdigest()[:16]}.tar"
    if not target.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        for old in work_dir.glob("wheelhouse-*.tar"):
            old.unlink()
        tmp = target.with_name(target.name + ".tmp")
        with tarfile.open(tmp, "w") as tar:  # wheels are zip files already: no compression
            for p in wheels:
                tar.add(p, arcname=p.name)
        tmp.replace(target)
    return target


def edgefit_wheel(work_dir: Path, wheels_dir: Path | None = None, *, timeout_s: float = 600.0) -> Path:
    """Path of a wheel of this edgefit (built into ``work_dir/wheel/`` from the source tree, else found in
    ``wheels_dir``). Raises FleetError saying how to provide one."""
    src = source_tree()
    if src is None:
        found = _in_wheelhouse(wheels_dir) if wheels_dir is not None else None
        if found is not None:
            return found
        raise FleetError(
            f"edgefit {__version__} is installed without its source, so its wheel cannot be built here; pass "
            f"--wheels DIR with edgefit-{__version__}-py3-none-any.whl in it (the wheel you installed from)"
        )
    out_dir = work_dir / "wheel"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgefit-wheel-") as tmp:
        cmd = [
            sys.executable,
            "-I",  # isolated: a pip.py in the working folder is not imported
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-w",
            tmp,
            str(src),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise FleetError(
                f"building edgefit's wheel from {src} took over {timeout_s:.0f} s; pass --wheels DIR"
            ) from None
        built = sorted(Path(tmp).glob("edgefit-*.whl"))
        if proc.returncode != 0 or not built:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else f"exit code {proc.returncode}"
            raise FleetError(
                f"`pip wheel --no-deps {src}` failed ({why}); fix the build or pass --wheels DIR with an edgefit wheel"
            )
        target = out_dir / built[0].name
        shutil.move(str(built[0]), target)
    return target
