"""nat on a network lab: the daemon on a host behind a real NAT router, the client on a host outside.

Needs root, ``ip`` and ``nft`` (Debian: iproute2, nftables): it builds the test suite's lab
(tests/netlab.py), Linux network namespaces joined by veth pairs, whose router forwards one port of
its outside address to the daemon. The daemon listens on 192.0.2.10:9999 and hands out URIs for
198.51.100.1:9999; the client, on 198.51.100.20, reaches it only through them.
"""

import json
import os
import select
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests"))  # (the lab of the test suite)

import netlab  # noqa: E402

PORT = 9999

DAEMON = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
import geopyro.api as api
from server import Office
daemon = api.Daemon(host=sys.argv[2], port=int(sys.argv[4]), nathost=sys.argv[3], natport=int(sys.argv[4]))
uri = daemon.register(Office, "office")
print(json.dumps({"uri": str(uri), "inside": str(daemon.uriFor("office", nat=False))}), flush=True)
daemon.requestLoop()
'''


def main():
    reason = netlab.unavailable()
    if reason:
        print("server_netlab: cannot build the lab here (%s); nothing to show" % reason)
        return 0
    lab = netlab.Lab()
    try:
        lab.forward(PORT, "a")
        daemon = lab.spawn("a", ["-c", DAEMON, HERE, netlab.LAN["a"], netlab.ROUTER_WAN, str(PORT)])
        ready, _, _ = select.select([daemon.stdout], [], [], 30)
        if not ready:
            print("server_netlab: the daemon did not start", file=sys.stderr)
            return 1
        uris = json.loads(daemon.stdout.readline())
        print("server (on host a, %s): uri handed out (NAT address): %s" % (netlab.LAN["a"], uris["uri"]))
        print("server: uriFor(nat=False) (inside address): %s" % uris["inside"])
        client = lab.spawn("x", [os.path.join(HERE, "client.py"), uris["uri"]])
        out, err = client.communicate(timeout=60)
        print("client (on host x, %s, outside the router):" % netlab.WAN["x"])
        print(out.rstrip())
        if client.returncode:
            print(err, file=sys.stderr)
        return client.returncode
    finally:
        lab.close()


if __name__ == "__main__":
    sys.exit(main())
