"""usersession client: python client.py <uri of notes>. Two users at once, then an anonymous caller."""

import sys

import gevent

import geopyro.api as api


def session(uri, user, notes):
    api.current_context.annotations = {"USER": user.encode()}  # greenlet-local: this user's calls only
    with api.Proxy(uri) as proxy:
        print("client: connected as", proxy.whoami())
        for text in notes:
            proxy.add(text)
        return user, proxy.all()


def main(uri):
    jobs = [gevent.spawn(session, uri, "alice", ["buy milk", "call bob"]),
            gevent.spawn(session, uri, "bob", ["fix bike", "read mail", "water plants"])]
    gevent.joinall(jobs, raise_error=True)
    for job in jobs:
        user, notes = job.value
        print("client: %s sees only their own notes: %s" % (user, notes))
    api.current_context.annotations = {}
    try:
        with api.Proxy(uri) as anonymous:
            anonymous.all()
    except Exception as exc:
        print("client: a call without a user was refused: %s: %s" % (type(exc).__name__, exc))


if __name__ == "__main__":
    main(sys.argv[1])
