"""Glue the commands share: this host's profile and calibration from the results database, and a device ref."""

from __future__ import annotations

from pathlib import Path

from edgefit import detect, profiles
from edgefit.errors import PredictError
from edgefit.predict.calibrate import Calibration, calibrate
from edgefit.profiles import DeviceProfile
from edgefit.store import Store


def host_calibration(db: Path) -> tuple[DeviceProfile, Calibration]:
    """Calibrate from every ladder measurement this host has in ``db`` (drift-normalised). PredictError when
    there are none, naming the command that makes them."""
    if not db.exists():
        raise PredictError(f"{db}: no results database; run `edgefit bench --ladder quick` first")
    fingerprint = detect.host_fingerprint()
    with Store(db) as store:
        ms = store.measurements(host_fingerprint=fingerprint)
    if not ms:
        raise PredictError(
            f"{db}: no measurements from this host ({fingerprint}); run `edgefit bench --ladder quick` first "
            "(or `edgefit results import` a bundle measured here)"
        )
    host = detect.host_profile()
    return host, calibrate(ms, host)


def resolve_device(ref: str, host: DeviceProfile) -> DeviceProfile:
    return host if ref == "host" else profiles.get_profile(ref)
