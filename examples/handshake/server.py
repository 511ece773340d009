"""handshake server: a Daemon subclass that checks a secret when a client connects."""

import sys
import uuid

import gevent
from gevent import subprocess

import geopyro.api as api

SECRET = "open sesame"
TOKENS = {}  # connection -> token handed out in the handshake


class GuardedDaemon(api.Daemon):
    def validateHandshake(self, conn, data):
        if not isinstance(data, dict) or data.get("secret") != SECRET:
            print("server: refused a connection from %s (secret %r)" % (conn.getpeername(), data.get("secret")),
                  flush=True)
            raise ValueError("wrong secret, go away")
        token = uuid.uuid4().hex[:8]
        TOKENS[conn] = token
        print("server: accepted %s, token %s" % (data.get("name"), token), flush=True)
        return {"greeting": "welcome, " + data.get("name", "?"), "token": token}

    def clientDisconnect(self, conn):
        TOKENS.pop(conn, None)


@api.expose
class Vault:
    def my_token(self):
        return TOKENS[api.current_context.client]  # the connection this call came in on


def main(forever=False):
    daemon = GuardedDaemon(host="127.0.0.1")
    uri = daemon.register(Vault, "vault")
    print("server: serving", uri, flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = gevent.spawn(daemon.requestLoop)
    client = subprocess.run([sys.executable, "client.py", str(uri)], cwd=sys.path[0])
    daemon.shutdown()
    loop.join(5)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
