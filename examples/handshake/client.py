"""handshake client: python client.py <uri of the vault>."""

import sys

import geopyro.api as api
from geopyro.errors import CommunicationError


class CheckingProxy(api.Proxy):
    def _pyroValidateHandshake(self, response):
        print("client: handshake answer:", response["greeting"])
        if not response["greeting"].startswith("welcome"):
            raise CommunicationError("this is not the vault we know")


def main(uri):
    with CheckingProxy(uri) as vault:
        vault._pyroHandshake = {"secret": "open sesame", "name": "dave"}
        print("client: connected; my token from the handshake is", vault.my_token())
    with CheckingProxy(uri) as vault:
        vault._pyroHandshake = {"secret": "let me in", "name": "mallory"}
        try:
            vault.my_token()
        except CommunicationError as exc:
            print("client: with the wrong secret:", exc)


if __name__ == "__main__":
    main(sys.argv[1])
