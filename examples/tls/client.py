"""TLS client: python client.py <uri> <certs folder>. Calls with its certificate, then without one."""

import os
import sys

import geopyro.api as api
from geopyro.errors import CommunicationError


def main(uri, certs):
    api.config.SSL = True
    api.config.SSL_CACERTS = os.path.join(certs, "ca.pem")        # trust servers signed by this CA only
    api.config.SSL_CLIENTCERT = os.path.join(certs, "client.pem")
    api.config.SSL_CLIENTKEY = os.path.join(certs, "client.key")
    with api.Proxy(uri) as safe:
        print("client: the server says I am", safe.whoami())
        print("client: server certificate issued to", dict(
            field for part in safe._pyroConnection.sock.getpeercert()["subject"] for field in part)["commonName"])
    api.config.SSL_CLIENTCERT = api.config.SSL_CLIENTKEY = ""
    with api.Proxy(uri) as safe:
        try:
            safe.whoami()
        except CommunicationError as exc:
            print("client: without a certificate: refused (%s)" % type(exc).__name__)


if __name__ == "__main__":
    main(*sys.argv[1:3])
