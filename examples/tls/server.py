"""TLS server: two-way TLS (the client shows a certificate too); the method sees who called.

python server.py [--forever]: makes certificates with make_certs.py if ./certs is missing, serves,
runs client.py and stops.
"""

import os
import sys

import gevent
from gevent import subprocess

import geopyro.api as api

HERE = os.path.dirname(os.path.abspath(__file__))
CERTS = os.path.join(HERE, "certs")


@api.expose
class Safe:
    def whoami(self):
        """The common name in the certificate the calling client presented."""
        certificate = api.current_context.client.getpeercert()
        subject = dict(field for part in certificate["subject"] for field in part)
        return subject["commonName"]


def main(forever=False):
    if not os.path.exists(os.path.join(CERTS, "server.pem")):
        import make_certs
        make_certs.main(CERTS)
    api.config.SSL = True
    api.config.SSL_SERVERCERT = os.path.join(CERTS, "server.pem")
    api.config.SSL_SERVERKEY = os.path.join(CERTS, "server.key")
    api.config.SSL_REQUIRECLIENTCERT = True              # two-way: no certificate, no connection
    api.config.SSL_CACERTS = os.path.join(CERTS, "ca.pem")  # the CA that signs client certificates
    daemon = api.Daemon(host="localhost")
    uri = daemon.register(Safe, "safe")
    print("server: serving", uri, flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = gevent.spawn(daemon.requestLoop)
    client = subprocess.run([sys.executable, os.path.join(HERE, "client.py"), str(uri), CERTS])
    daemon.shutdown()
    loop.join(5)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
