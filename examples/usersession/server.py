"""usersession server: instance_creator builds each session around the calling user's own resource."""

import logging
import sys
import time

import gevent
from gevent import subprocess

import geopyro.api as api

STORAGE = {}  # user -> list of notes; only ever touched through that user's Notebook
OPEN_NOTEBOOKS = set()  # the server's own record of open per-user resources


class Notebook:
    """A per-user resource (think: a database connection opened with the user's credentials)."""

    def __init__(self, user):
        self.user = user
        self.notes = STORAGE.setdefault(user, [])
        OPEN_NOTEBOOKS.add(self)
        print("server: opened notebook of %s" % user, flush=True)

    def close(self):
        OPEN_NOTEBOOKS.discard(self)
        print("server: closed notebook of %s" % self.user, flush=True)


def create_notes(cls):
    user = api.current_context.annotations.get("USER")
    if not user:
        raise PermissionError("no USER annotation: who are you?")
    notebook = Notebook(bytes(user).decode())
    api.current_context.track_resource(notebook)  # closed when this client disconnects
    return cls(notebook)


@api.expose
@api.behavior(instance_mode="session", instance_creator=create_notes)
class Notes:
    def __init__(self, notebook):
        self.notebook = notebook

    def whoami(self):
        return self.notebook.user

    def add(self, text):
        time.sleep(0.05)  # pretend storage is slow: the two users' calls interleave
        self.notebook.notes.append(text)
        return len(self.notebook.notes)

    def all(self):
        return list(self.notebook.notes)


def main(forever=False):
    logging.basicConfig(stream=sys.stdout, level=logging.ERROR, format="server log: %(message)s")
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(Notes, "notes")
    print("server: serving %s" % uri, flush=True)
    if forever:
        daemon.requestLoop()
        return 0
    loop = gevent.spawn(daemon.requestLoop)
    client = subprocess.run([sys.executable, "client.py", str(uri)], cwd=sys.path[0])
    gevent.sleep(0.1)  # let the last disconnect be handled
    daemon.shutdown()
    loop.join(5)
    print("server: notebooks still open after the clients left: %d" % len(OPEN_NOTEBOOKS), flush=True)
    return client.returncode


if __name__ == "__main__":
    sys.exit(main("--forever" in sys.argv))
