"""Separate network hosts on this machine: Linux network namespaces on one bridge.

Each host is a network namespace with its own veth interface and address on a private /24; the
bridge in the machine's own namespace joins them, and holds the test's own address. A call from
one host to another crosses two veth interfaces and the bridge; no host reaches another through
loopback or a Unix socket. Each host's processes also get a UTS namespace with the host's name,
so what they report as their hostname (Celery's worker names) tells the hosts apart.

The hosts share the machine's file system, as hosts share a network file system.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


class NamespacesRefused(RuntimeError):
    """This machine does not let the tests create network namespaces (not root, or no CAP_NET_ADMIN)."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NamespacesRefused(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")


@dataclass
class Hosts:
    """``names`` -> addresses 10.<subnet>.0.1, .2, ...; the test itself is .254 on the bridge."""

    names: tuple[str, ...]
    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000}")
    subnet: int = field(default_factory=lambda: 100 + os.getpid() % 100)

    def address(self, host: str) -> str:
        return f"10.{self.subnet}.0.{self.names.index(host) + 1}"

    @property
    def own_address(self) -> str:
        return f"10.{self.subnet}.0.254"

    def namespace(self, host: str) -> str:
        return f"btc-{host}-{self.tag}"

    @property
    def bridge(self) -> str:
        return f"btcbr{self.tag}"

    def hostname(self, host: str) -> str:
        return f"host-{host}"

    def command(self, host: str, command: list[str], mounts: list[str] | None = None) -> list[str]:
        """``command`` on ``host``: in its network namespace, under its own hostname. ``mounts``:
        folders that host sees empty (a tmpfs over each, in a mount namespace of its own), as a
        host sees a network file system it has not mounted."""
        setup = 'hostname "$0"'
        unshare = ["unshare", "--uts"]
        if mounts:
            unshare.append("--mount")
            setup += "".join(f" && mount -t tmpfs none {folder}" for folder in mounts)
        return [
            "ip",
            "netns",
            "exec",
            self.namespace(host),
            *unshare,
            "sh",
            "-c",
            f'{setup} && exec "$@"',
            self.hostname(host),
            *command,
        ]

    def pids(self, host: str) -> list[int]:
        result = subprocess.run(["ip", "netns", "pids", self.namespace(host)], capture_output=True, text=True)
        return [int(pid) for pid in result.stdout.split()]

    def kill(self, host: str) -> list[int]:
        """Every process of ``host`` killed at once (SIGKILL), as a host that loses its power."""
        pids = self.pids(host)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.own_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for n, host in enumerate(self.names):
            ns, outside, inside = self.namespace(host), f"btv{self.tag}{n}", f"btp{self.tag}{n}"
            _ip("netns", "add", ns)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", ns)
            _ip("link", "set", outside, "master", self.bridge)
            _ip("link", "set", outside, "up")
            _ip("-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", inside)
            _ip("-n", ns, "link", "set", inside, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def remove(self) -> None:
        for host in self.names:
            self.kill(host)
            subprocess.run(["ip", "netns", "del", self.namespace(host)], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


@contextmanager
def separate_hosts(*names: str) -> Iterator[Hosts]:
    """Hosts ``names`` for the block; NamespacesRefused when this machine does not allow them."""
    hosts = Hosts(names)
    try:
        hosts.create()
    except NamespacesRefused:
        hosts.remove()
        raise
    except FileNotFoundError as error:  # no `ip` command
        raise NamespacesRefused(f"iproute2's `ip` is missing: {error}") from error
    try:
        yield hosts
    finally:
        hosts.remove()
