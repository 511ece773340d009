"""autoproxy client: python client.py <uri of the garage>."""

import sys

import geopyro.api as api


def main(uri):
    with api.Proxy(uri) as garage:
        car = garage.build("beetle")
        print("client: build() returned a", type(car).__name__, "for", car._pyroUri)
        print("client:", car.drive(40))
        print("client:", car.drive(25))
        print("client: remote property mileage =", car.mileage)
        print("client: sketch() returned plain data:", garage.sketch("bus"))
        print("client: the garage's own record:", garage.report())
        car._pyroRelease()


if __name__ == "__main__":
    main(sys.argv[1])
