"""Shared by server and client: the shop's own exception type."""


class OutOfStock(Exception):
    pass
