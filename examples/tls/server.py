"""TLS server: two-way TLS (the client shows a certificate too); the method sees who called.

python server.py: makes fresh certificates in a temporary folder (make_certs.py), serves, runs
client.py and stops. python server.py --forever: makes them in ./certs (unless all are there) and
serves until Ctrl-C, for python client.py <uri> certs.
"""

import os
import shutil
import sys
import tempfile

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
    import make_certs
    if not forever:
        certs = tempfile.mkdtemp(prefix="geopyro-tls-")
        try:
            return serve_once(make_certs.main(certs))
        finally:
            shutil.rmtree(certs, ignore_errors=True)
    if not all(os.path.exists(os.path.join(CERTS, name)) for name in make_certs.FILES):
        make_certs.main(CERTS)
    serve(CERTS).requestLoop()
    return 0


def serve(certs):
    """A daemon with Safe registered, serving two-way TLS with the certificates in ``certs``."""
    api.config.SSL = True
    api.config.SSL_SERVERCERT = os.path.join(certs, "server.pem")
    api.config.SSL_SERVERKEY = os.path.join(certs, "server.key")
    api.config.SSL_REQUIRECLIENTCERT = True              # two-way: no certificate, no connection
    api.config.SSL_CACERTS = os.path.join(certs, "ca.pem")  # the CA that signs client certificates
    daemon = api.Daemon(host="localhost")
    print("server: serving", daemon.register(Safe, "safe"), flush=True)
    return daemon


def serve_once(certs):
    """Serve while client.py runs, then stop; the client's exit code."""
    daemon = serve(certs)
    loop = gevent.spawn(daemon.requestLoop)
    try:
        client = subprocess.run([sys.executable, os.path.join(HERE, "client.py"), str(daemon.uriFor("safe")), certs],
                                timeout=50)
    finally:
        daemon.shutdown()
        loop.join(5)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
