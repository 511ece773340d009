"""blob-dispatch client: python client.py <uri of the dispatcher>."""

import sys

import geopyro.api as api


class Parcel:
    def __init__(self, content, weight):
        self.content, self.weight = content, weight


api.register_class_to_dict(Parcel, lambda p: {"__class__": "parcels.Parcel", "content": p.content,
                                              "weight": p.weight})


def main(uri):
    parcels = [("fragile", Parcel("glass vase", 1.2)), ("bulk", Parcel("bag of sand", 25.0)),
               ("fragile", Parcel("old clock", 3.4))]
    with api.Proxy(uri) as dispatcher:
        for topic, parcel in parcels:
            blob = api.SerializedBlob(topic, [parcel])  # info: the topic; data: what the worker will get
            print("client:", dispatcher.process(blob))


if __name__ == "__main__":
    main(sys.argv[1])
