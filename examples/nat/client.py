"""nat client: python client.py <uri of the office>."""

import sys

import geopyro.api as api


def main(uri):
    with api.Proxy(uri) as office:
        print("client: connecting to", office._pyroUri.location)
        print("client:", office.where())
        ticket = office.issue(7)
        print("client: the returned proxy points at", ticket._pyroUri.location)
        print("client:", ticket.describe())
        ticket._pyroRelease()


if __name__ == "__main__":
    main(sys.argv[1])
