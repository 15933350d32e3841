"""Measure a fleet of real devices through Ansible: install this edgefit on each host of an inventory, run
`edgefit bench` there, bring the results bundles back and import them, linking each host's fingerprint to its
device profile (`edgefit_device`, or a profile from the host's own `edgefit detect --save`).

ansible-core is optional (``pip install 'edgefit[fleet]'``) and runs as a subprocess (edgefit.fleet.ansible);
the playbooks (``playbooks/``) and the Ansible callback that reports per-host events (``plugins/callback/``) ship
inside the package.
"""

from edgefit.fleet.bench import BenchRequest, FleetBenchResult, HostResult, bench_fleet, plan_request
from edgefit.fleet.inventory import FleetHost, load_inventory
from edgefit.fleet.status import FleetStatus, HostStatus, fleet_status

__all__ = [
    "BenchRequest",
    "FleetBenchResult",
    "FleetHost",
    "FleetStatus",
    "HostResult",
    "HostStatus",
    "bench_fleet",
    "fleet_status",
    "load_inventory",
    "plan_request",
]
