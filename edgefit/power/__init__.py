"""Measured power: find the machine's own sensors and sample them while a measurement runs.

- ``sensors.discover(sysfs_root)`` -> ``Discovery`` (sensors this process can read, notes on those it cannot)
- ``sampler.PowerSampler(sensors, interval_s)``: background thread, ``start()`` / ``stop() -> PowerReading``s
- ``reading.PowerReading``: one sensor over one window (stored on ``Measurement.power``), ``primary``,
  ``energy_per_unit``
"""

from edgefit.power.reading import COVERS, EnergyPerUnit, PowerReading, energy_per_unit, primary
from edgefit.power.sampler import PowerSampler, sample_for, with_idle
from edgefit.power.sensors import Discovery, Sensor, SensorError, discover

__all__ = [
    "COVERS",
    "Discovery",
    "EnergyPerUnit",
    "PowerReading",
    "PowerSampler",
    "Sensor",
    "SensorError",
    "discover",
    "energy_per_unit",
    "primary",
    "sample_for",
    "with_idle",
]
