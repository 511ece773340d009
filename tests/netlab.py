"""A network lab for tests: Linux network namespaces as hosts, joined by veth pairs and a bridge, behind a
router namespace that does real NAT with nftables.

    lan 192.0.2.0/24 (TEST-NET-1)            wan 198.51.100.0/24 (TEST-NET-2)
    a .10  b .11  c .12  d .13 --[br-lan]-- router .1 | .1 --- x .20

Hosts a to d share one segment (a bridge in the router's namespace, so broadcasts reach each other); x is
outside, its default route the router, which masquerades the lan and lets in from outside only what it
forwards (``Lab.forward``: DNAT of a port of its wan address). Nothing has a route anywhere else: traffic stays on these addresses. ``Lab.close()`` removes every namespace (and
with them every interface), also after a failed test.
"""

import functools
import itertools
import json
import os
import shutil
import subprocess
import sys
import time

from support import ROOT, wait_until

LAN = {"a": "192.0.2.10", "b": "192.0.2.11", "c": "192.0.2.12", "d": "192.0.2.13"}
WAN = {"x": "198.51.100.20"}
ROUTER_LAN, ROUTER_WAN = "192.0.2.1", "198.51.100.1"
COMMAND_TIMEOUT = 15.0  # seconds any one ip/nft command may take
_serial = itertools.count()


@functools.lru_cache(maxsize=None)
def unavailable():
    """Why this machine cannot build a lab (None when it can); asked once per process."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux's"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("sysctl", "procps")):
        if shutil.which(tool) is None:
            return "%r is not installed (Debian: apt-get install %s)" % (tool, package)
    sweep_stale()
    probe = "gp%d-probe" % os.getpid()
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if made.returncode:
        return "cannot make a network namespace: %s" % made.stderr.strip()
    try:
        for argv in (["nft", "add", "table", "ip", "probe"], ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]):
            done = subprocess.run(["ip", "netns", "exec", probe] + argv, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT)
            if done.returncode:
                return "%s fails in a network namespace: %s" % (argv[0], done.stderr.strip())
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=COMMAND_TIMEOUT)
    return None


def sweep_stale():
    """Remove the namespaces of labs whose test process is gone (killed before it could clean up)."""
    for line in _netns_list():
        name = line.split()[0] if line.split() else ""
        if not name.startswith("gp") or "-" not in name or not name[2:name.index("-")].isdigit():
            continue
        if not os.path.exists("/proc/%s" % name[2:name.index("-")]):
            _delete_namespace(name)


def _delete_namespace(name):
    """Kill what still runs in namespace ``name``, then delete it (and with it its interfaces)."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    for pid in pids.stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=COMMAND_TIMEOUT)


class Lab:
    """The namespaces of one test; ``ns(host)`` names one, ``spawn(host, argv)`` runs a process in it."""

    def __init__(self):
        self.tag = "gp%d-%d" % (os.getpid(), next(_serial))  # (the pid: see sweep_stale)
        self.namespaces = []
        self.processes = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # --- building ---

    def ns(self, host):
        return "%s-%s" % (self.tag, host)

    def sh(self, *argv, host=None, check=True):
        """Run one command (in ``host``'s namespace if given)."""
        if host is not None:
            argv = ("ip", "netns", "exec", self.ns(host)) + argv
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        if check and done.returncode:
            raise RuntimeError("netlab: %s failed: %s" % (" ".join(argv), done.stderr.strip()))
        return done

    def _namespace(self, host):
        self.sh("ip", "netns", "add", self.ns(host))
        self.namespaces.append(self.ns(host))
        self.sh("ip", "link", "set", "lo", "up", host=host)

    def _veth(self, host, address, prefix, inside_name, router_name):
        """A veth pair: ``inside_name`` in ``host`` (with ``address``), ``router_name`` in the router. (Made in
        place: no interface of a lab ever appears in the root namespace.)"""
        self.sh("ip", "link", "add", inside_name, "netns", self.ns(host), "type", "veth", "peer", "name",
                router_name, "netns", self.ns("router"))
        self.sh("ip", "addr", "add", "%s/%d" % (address, prefix), "dev", inside_name, host=host)
        self.sh("ip", "link", "set", inside_name, "up", host=host)
        self.sh("ip", "link", "set", router_name, "up", host="router")

    def _build(self):
        self._namespace("router")
        self.sh("ip", "link", "add", "br-lan", "type", "bridge", host="router")
        self.sh("ip", "addr", "add", ROUTER_LAN + "/24", "dev", "br-lan", host="router")
        self.sh("ip", "link", "set", "br-lan", "up", host="router")
        for host, address in LAN.items():
            self._namespace(host)
            self._veth(host, address, 24, "eth0", "lan-" + host)
            self.sh("ip", "link", "set", "lan-" + host, "master", "br-lan", host="router")
            self.sh("ip", "route", "add", "default", "via", ROUTER_LAN, host=host)
        for host, address in WAN.items():
            self._namespace(host)
            self._veth(host, address, 24, "eth0", "wan0")
            self.sh("ip", "addr", "add", ROUTER_WAN + "/24", "dev", "wan0", host="router")
            self.sh("ip", "route", "add", "default", "via", ROUTER_WAN, host=host)
        self.sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", host="router")
        self.sh("nft", "add table ip nat", host="router")
        self.sh("nft", "add chain ip nat prerouting { type nat hook prerouting priority -100 ; }", host="router")
        self.sh("nft", "add chain ip nat postrouting { type nat hook postrouting priority 100 ; }", host="router")
        self.sh("nft", "add rule ip nat postrouting oifname wan0 masquerade", host="router")
        # as a NAT router does: from outside, only forwarded ports reach the lan
        self.sh("nft", "add table ip filter", host="router")
        self.sh("nft", "add chain ip filter forward { type filter hook forward priority 0 ; policy accept ; }",
                host="router")
        self.sh("nft", "add rule ip filter forward iifname wan0 oifname br-lan ct status dnat accept", host="router")
        self.sh("nft", "add rule ip filter forward iifname wan0 oifname br-lan ct state established,related accept",
                host="router")
        self.sh("nft", "add rule ip filter forward iifname wan0 oifname br-lan drop", host="router")

    def forward(self, port, host, to_port=None):
        """DNAT: connections to the router's wan address on ``port`` go to ``host`` (on ``to_port``)."""
        self.sh("nft", "add rule ip nat prerouting iifname wan0 tcp dport %d dnat to %s:%d"
                % (port, LAN[host], to_port or port), host="router")

    def link(self, host, up):
        """Cut (or restore) ``host``'s only link."""
        self.sh("ip", "link", "set", "eth0", "up" if up else "down", host=host)

    # --- processes ---

    def spawn(self, host, argv, env=None):
        """Start ``python argv...`` in ``host``'s namespace (stdin, stdout and stderr piped)."""
        environment = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        for key in list(environment):
            if key.startswith("PYRO_"):
                del environment[key]
        environment.update(env or {})
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(host), sys.executable] + list(argv),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=environment)
        self.processes.append(proc)
        return proc

    def run_python(self, host, code, env=None, timeout=60.0):
        """Run ``code`` in a fresh Python in ``host``; it prints one JSON line as its last output; return it."""
        proc = self.spawn(host, ["-c", code], env)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError("netlab: code on %s did not finish within %s s\nstderr:\n%s" % (host, timeout, err))
        lines = [line for line in out.splitlines() if line.strip()]
        if proc.returncode or not lines:
            raise AssertionError("netlab: code on %s failed (exit %s)\nstdout:\n%s\nstderr:\n%s"
                                 % (host, proc.returncode, out, err[-4000:]))
        return json.loads(lines[-1])

    def wait_listening(self, host, port, timeout=30.0):
        """Wait until something in ``host`` listens on ``port`` (its own view, ss -ltn)."""
        def listening():
            return (":%d " % port) in self.sh("ss", "-ltnH", host=host, check=False).stdout + " "
        assert wait_until(listening, timeout), "netlab: nothing listens on %s:%d" % (host, port)

    def close(self):
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.communicate(timeout=10)
            except (subprocess.TimeoutExpired, ValueError, OSError):
                pass
        for name in reversed(self.namespaces):
            _delete_namespace(name)
        self.namespaces = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(line.startswith(self.tag + "-") for line in _netns_list()):
            time.sleep(0.05)


def _netns_list():
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    return done.stdout.splitlines()
