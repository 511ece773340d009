"""instancemode client: python client.py <single uri> <session uri> <percall uri>."""

import sys

import geopyro.api as api


def main(uris):
    for uri in uris:
        mode = api.URI(uri).object
        print("client: --- instance mode %s ---" % mode)
        with api.Proxy(uri) as first, api.Proxy(uri) as second:
            for proxy, name in ((first, "proxy 1"), (second, "proxy 2"), (first, "proxy 1"), (second, "proxy 2")):
                print("client: %s -> %s" % (name, proxy.count()))


if __name__ == "__main__":
    main(sys.argv[1:4])
