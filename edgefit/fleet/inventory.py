"""The fleet: hosts of an Ansible inventory (INI or YAML), read through ``ansible-inventory`` so groups, group
vars and every format Ansible knows work as they do in Ansible.

Host variables edgefit reads: ``edgefit_device`` (a device profile id, e.g. ``raspberry-pi-5-8gb``: the host's
measurements are linked to it), ``edgefit_python`` (the interpreter to build the venv with, default ``python3``),
``edgefit_dir`` (where edgefit lives on the host, default ``~/.edgefit-fleet``), ``edgefit_pip_args`` (a list of
extra pip arguments, e.g. an index URL), ``edgefit_calibrate`` (false: no `edgefit calibrate` on that host). A host
without ``edgefit_device`` gets a profile from its own ``edgefit detect --save``, named after the inventory host
(``Pi5.Lab`` -> ``pi5-lab``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefit.errors import FleetError, ProfileError, UsageError
from edgefit.fleet.ansible import inventory_json
from edgefit.profiles import get_profile


@dataclass(frozen=True, slots=True)
class FleetHost:
    name: str  # inventory hostname
    address: str  # ansible_host, else the name
    device_id: str | None  # edgefit_device, when the inventory names the device
    file_stem: str  # the name made safe for files and profile ids: bundles/<stem>.json, profiles/<stem>.toml
    python: str  # edgefit_python

    @property
    def profile_id(self) -> str:
        """The device id this host's measurements are linked to: its edgefit_device, else its detected profile."""
        return self.device_id or self.file_stem


def file_stem(name: str) -> str:
    """``Pi5.Lab`` -> ``pi5-lab``: lowercase letters, digits and dashes (a valid profile id)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "host"


def _hosts_of(data: dict[str, Any]) -> list[str]:
    names: dict[str, None] = dict.fromkeys(data.get("_meta", {}).get("hostvars", {}))
    for group, body in data.items():
        if group != "_meta" and isinstance(body, dict):
            names.update(dict.fromkeys(str(h) for h in body.get("hosts", ())))
    return list(names)


def load_inventory(path: Path, *, profile_dirs: tuple[Path, ...] = ()) -> tuple[FleetHost, ...]:
    """Every host of the inventory at ``path``, in inventory order. Raises UsageError / FleetError / ProfileError
    (one line: the file, the host, what is wrong) before anything runs on any host."""
    if not path.is_file():
        raise UsageError(f"{path}: no such inventory file; expected an Ansible inventory (INI or YAML)")
    data = inventory_json(path)
    hostvars: dict[str, dict[str, Any]] = data.get("_meta", {}).get("hostvars", {})
    names = _hosts_of(data)
    if not names:
        raise FleetError(f"{path}: the inventory has no hosts; add lines like `pi5 ansible_host=192.0.2.10`")
    hosts = []
    stems: dict[str, str] = {}
    for name in names:
        hv = hostvars.get(name, {})
        device = hv.get("edgefit_device")
        if device is not None:
            device = str(device)
            if device == "host":
                raise UsageError(f"{path}: host {name}: edgefit_device=host means this machine; name the device")
            try:
                get_profile(device, extra_dirs=profile_dirs)
            except ProfileError as exc:
                raise ProfileError(f"{path}: host {name}: edgefit_device: {exc}") from None
        stem = file_stem(name)
        if stem in stems:
            raise UsageError(
                f"{path}: hosts {stems[stem]!r} and {name!r} both map to the file name {stem!r}; rename one"
            )
        stems[stem] = name
        hosts.append(
            FleetHost(
                name=name,
                address=str(hv.get("ansible_host", name)),
                device_id=device,
                file_stem=stem,
                python=str(hv.get("edgefit_python", "python3")),
            )
        )
    return tuple(hosts)
