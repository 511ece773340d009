"""Make a small certificate authority and certificates for the TLS example: python make_certs.py [folder].

Runs the openssl command line (it prints each command), so you can see how to make your own. The
folder (default: certs) gets ca.pem, server.pem/server.key (for localhost and 127.0.0.1) and
client.pem/client.key (for a client named "alice"). Keys are unencrypted: keep the folder private.
"""

import os
import shlex
import subprocess
import sys

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
SERVER_EXTENSIONS = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
CLIENT_EXTENSIONS = "extendedKeyUsage=clientAuth\n"
FILES = ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")  # what the example needs


def openssl(*args, folder):
    print("  " + shlex.join(["openssl", *args]), flush=True)
    subprocess.run(["openssl", *args], cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def signed(name, common_name, extensions, folder):
    """A key and a certificate request for ``name``, signed by the CA with the given extensions."""
    openssl("req", *EC_KEY, "-keyout", name + ".key", "-subj", "/CN=" + common_name, "-out", name + ".csr",
            folder=folder)
    with open(os.path.join(folder, name + ".ext"), "w") as f:
        f.write(extensions)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "365", "-extfile", name + ".ext", "-out", name + ".pem", folder=folder)


def main(folder="certs"):
    os.makedirs(folder, exist_ok=True)
    print("making a CA and certificates in", folder, flush=True)
    openssl("req", "-x509", *EC_KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", "365",
            "-subj", "/CN=example CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", folder=folder)
    signed("server", "localhost", SERVER_EXTENSIONS, folder)
    signed("client", "alice", CLIENT_EXTENSIONS, folder)
    return folder


if __name__ == "__main__":
    main(*sys.argv[1:2])
