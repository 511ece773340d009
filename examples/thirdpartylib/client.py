"""thirdpartylib client: python client.py <uri of the station>."""

import sys

import geopyro.api as api


class Reading:
    def __init__(self, city, celsius):
        self.city, self.celsius = city, celsius

    def __str__(self):
        return "%s %.1f C" % (self.city, self.celsius)


api.register_dict_to_class("weatherlib.Reading", lambda name, d: Reading(d["city"], d["celsius"]))


def main(uri):
    with api.Proxy(uri) as station:
        print("client: cities:", station.cities())
        print("client: Lisbon is", station.temperature("Lisbon"), "C")
        print("client: warmest (a remote property):", station.warmest)
        print("client: a library object came back as:", station.reading("Oslo"))
        try:
            station._calibrate()
        except AttributeError as exc:
            print("client: private method stays hidden:", exc)


if __name__ == "__main__":
    main(sys.argv[1])
