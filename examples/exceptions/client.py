"""exceptions client: python client.py <uri of the shop>."""

import sys

import geopyro.api as api
import geopyro.errors
import shop


def rebuild_out_of_stock(classname, data):
    exc = shop.OutOfStock(*data["args"])
    exc.__dict__.update(data.get("attributes", {}))  # brings the remote traceback along
    return exc


api.register_dict_to_class("shop.OutOfStock", rebuild_out_of_stock)


def main(uri):
    with api.Proxy(uri) as remote_shop:
        print("client:", remote_shop.buy("apple"))
        try:
            remote_shop.divide(1, 0)
        except ZeroDivisionError as exc:
            print("client: caught ZeroDivisionError:", exc)
            print("client: local and remote traceback together:")
            print("".join(geopyro.errors.get_pyro_traceback()))
        try:
            remote_shop.buy("durian")
        except ValueError as exc:
            print("client: caught ValueError:", exc)
            print("client: the remote traceback ends with:", exc._pyroTraceback[-1].strip())
        try:
            remote_shop.buy("pear")
        except shop.OutOfStock as exc:
            print("client: caught the custom shop.OutOfStock for", exc.args[0])


if __name__ == "__main__":
    main(sys.argv[1])
