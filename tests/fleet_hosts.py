"""Real SSH hosts on this machine for the fleet tests: one sshd per host on its own loopback address and port,
each with its own user, home and hostname (a UTS namespace, so each host has its own edgefit fingerprint).

```
 SshLab(root)                       /tmp/efl-XXXX/ (0755)
   client key, host key, known_hosts    id_ed25519, host_ed25519, known_hosts
   add_host("alpha")  -> useradd efl<tag>alpha (home under root/), sshd -D on 127.0.0.2:<free port>
                         started as `unshare --uts` (hostname efl-<tag>-alpha), optionally in a memory cgroup
   add_silent("dead") -> a socket that listens and never accepts: TCP connects, the SSH banner never comes
   host.kill()        -> SIGKILL sshd and every process of that host (by pid): "the board lost power"
   close()            -> kill every host, userdel, remove cgroups and files (also after a failed test)
```

Needs root, /usr/sbin/sshd and unshare; `SshLab.unavailable()` says why not. Only loopback addresses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SSHD = Path("/usr/sbin/sshd")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60)


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@dataclass
class MemoryLimit:
    """A memory cgroup (v2 memory.max, else v1 memory.limit_in_bytes) made for one host; `kind` says which."""

    path: Path
    kind: str  # "cgroup v2" | "cgroup v1"

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(f"{pid}\n")

    def remove(self) -> None:
        deadline = time.monotonic() + 5.0
        while self.path.exists() and time.monotonic() < deadline:
            try:
                self.path.rmdir()
            except OSError:
                time.sleep(0.1)  # processes still leaving

    def oom_kills(self) -> int | None:
        """How many processes the kernel killed in this cgroup for memory, where the kernel says."""
        for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
            f = self.path / name
            if f.exists():
                for line in f.read_text().splitlines():
                    k, _, v = line.partition(" ")
                    if k == key:
                        return int(v)
        return None


def make_memory_limit(name: str, limit_bytes: int) -> MemoryLimit | None:
    """A child of this process's own memory cgroup with a hard limit, or None where none can be made."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(","):
            own[c] = path
    v2 = Path("/sys/fs/cgroup")
    candidates: list[tuple[Path, str]] = []
    if (v2 / "cgroup.controllers").exists() and "" in own:
        parent = v2 / own[""].lstrip("/")
        if "memory" in (parent / "cgroup.subtree_control").read_text().split():
            candidates.append((parent / name, "cgroup v2"))
    if "memory" in own and (Path("/sys/fs/cgroup/memory") / "memory.limit_in_bytes").exists():
        candidates.append((Path("/sys/fs/cgroup/memory") / own["memory"].lstrip("/") / name, "cgroup v1"))
    for path, kind in candidates:
        try:
            path.mkdir()
            if kind == "cgroup v2":
                (path / "memory.max").write_text(str(limit_bytes))
                with contextlib.suppress(OSError):
                    (path / "memory.swap.max").write_text("0")
            else:
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                with contextlib.suppress(OSError):
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
            return MemoryLimit(path, kind)
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
    return None


@dataclass
class SshHost:
    name: str
    user: str
    home: Path
    address: str
    port: int
    hostname: str
    config: Path
    log: Path
    memory: MemoryLimit | None = None
    proc: subprocess.Popen[bytes] | None = None
    uid: int = -1

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$1" -D -e -f "$2"', self.hostname,
                 str(SSHD), str(self.config)],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )  # fmt: skip
        if self.memory is not None:
            self.memory.add(self.proc.pid)  # every session and process it starts inherits the limit
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:  # bounded: wait until sshd listens
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd for {self.name} exited: {self.log.read_text()[-500:]}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex((self.address, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"sshd for {self.name} did not listen on {self.address}:{self.port} within 10 s")

    def processes(self) -> list[psutil.Process]:
        """sshd, its descendants and anything else running as this host's user (found by pid, never by name)."""
        procs: dict[int, psutil.Process] = {}
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(self.proc.pid)
                procs[root.pid] = root
                for c in root.children(recursive=True):
                    procs[c.pid] = c
        for p in psutil.process_iter(["uids"]):
            with contextlib.suppress(psutil.Error):
                if p.info["uids"] is not None and p.info["uids"].real == self.uid:
                    procs[p.pid] = p
        return list(procs.values())

    def kill(self) -> None:
        """Everything of this host dies at once (SIGKILL), as when a board loses power."""
        for p in self.processes():
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 5.0
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.05)

    def running(self, needle: str) -> bool:
        """Whether a process of this host has ``needle`` in its command line."""
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                if needle in " ".join(p.cmdline()):
                    return True
        return False


@dataclass
class SshLab:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="efl-")))
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: list[SshHost] = field(default_factory=list)
    silent: list[socket.socket] = field(default_factory=list)
    _next_address: int = 2

    @staticmethod
    def unavailable() -> str | None:
        if os.geteuid() != 0:
            return "needs root (creates users and sshd instances)"
        for tool in (str(SSHD), "/usr/bin/ssh", "unshare", "useradd", "ssh-keygen"):
            if shutil.which(tool) is None:
                return f"{tool} not found (CI installs openssh-server in .ci/run)"
        return None

    def __post_init__(self) -> None:
        self.root.chmod(0o755)  # the hosts' users walk through it to their homes
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation directory
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgefit-fleet-test", "-f", str(self.key))
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / "host_ed25519"))
        self.known_hosts.write_text("")

    @property
    def key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    def _address(self) -> str:
        address = f"127.0.0.{self._next_address}"
        self._next_address += 1
        return address

    def add_host(self, name: str, *, memory_limit_bytes: int | None = None) -> SshHost:
        user = f"efl{self.tag}{name}"[:32]
        home = self.root / "home" / name
        home.parent.mkdir(exist_ok=True)
        home.parent.chmod(0o755)
        _run("useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", user)
        _run("usermod", "-p", "*", user)  # "*": no password, but not locked (sshd refuses locked accounts)
        uid = int(_run("id", "-u", user).stdout)
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        _run("chown", "-R", f"{user}:", str(ssh_dir))
        address = self._address()
        port = _free_port(address)
        config = self.root / f"sshd_{name}.conf"
        config.write_text(
            "\n".join(
                (
                    f"Port {port}",
                    f"ListenAddress {address}",
                    f"HostKey {self.root / 'host_ed25519'}",
                    f"PidFile {self.root / f'sshd_{name}.pid'}",
                    "AuthorizedKeysFile .ssh/authorized_keys",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "PermitRootLogin no",
                    f"AllowUsers {user}",
                    "Subsystem sftp internal-sftp",
                    "LogLevel ERROR",
                    "",
                )
            )
        )
        host_key = (self.root / "host_ed25519.pub").read_text().split()[:2]
        with self.known_hosts.open("a") as f:
            f.write(f"[{address}]:{port} {' '.join(host_key)}\n")
        memory = None
        if memory_limit_bytes is not None:
            memory = make_memory_limit(f"efl-{self.tag}-{name}", memory_limit_bytes)
        host = SshHost(
            name=name,
            user=user,
            home=home,
            address=address,
            port=port,
            hostname=f"efl-{self.tag}-{name}",
            config=config,
            log=self.root / f"sshd_{name}.log",
            memory=memory,
            uid=uid,
        )
        self.hosts.append(host)
        host.start()
        return host

    def add_silent(self) -> tuple[str, int]:
        """An address:port that accepts TCP connections and never says anything (a hung board)."""
        address = self._address()
        s = socket.socket()
        s.bind((address, 0))
        s.listen(8)
        self.silent.append(s)
        return address, int(s.getsockname()[1])

    def close(self) -> None:
        for s in self.silent:
            s.close()
        for host in self.hosts:
            host.kill()
            subprocess.run(["userdel", host.user], capture_output=True, timeout=60)
            subprocess.run(["groupdel", host.user], capture_output=True, timeout=60)
            if host.memory is not None:
                host.memory.remove()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SshLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
