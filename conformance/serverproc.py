"""A conformance server: ``python -m conformance.serverproc --target T --scenario S``.

Started and stopped by the harness. It talks back over stdout, one line per event:
``CONFORMANCE {"event": "ready", ...}``. It exits by itself when its parent process goes
away, so a killed harness leaves nothing behind.

Scenarios: ``main`` (every test object, shared by many checks), ``ns`` (a name server),
and fresh-server scenarios for checks that end or reshape a server: ``shutdown``,
``loopcondition``, ``eventloop``, ``serve``, ``unix``, ``combine``.
"""

import argparse
import json
import os
import sys
import threading
import time

MARK = "CONFORMANCE "


def emit(event, **data):
    data["event"] = event
    sys.stdout.write(MARK + json.dumps(data) + "\n")
    sys.stdout.flush()


def _watch_parent(parent):
    # a watchdog, not synchronisation: leave when the harness is gone
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(0.5)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="conformance.serverproc")
    ap.add_argument("--target", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--servertype", default="concurrent")
    ap.add_argument("--params", default="{}")
    args = ap.parse_args(argv)
    params = json.loads(args.params)

    from conformance import targets
    adapter = targets.adapter_module(args.target)  # built in, or found as the command line found it
    prepare = getattr(adapter, "prepare_server_process", None)
    if prepare is not None:
        prepare()
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    from conformance import objects
    T = targets.load(args.target)
    T.server_setup()
    T.configure(SERVERTYPE=T.servertypes[args.servertype])
    for key, value in params.get("config", {}).items():
        T.configure(**{key: value})
    SCENARIOS[args.scenario](T, objects, params)
    return 0


def main_daemon(T, objects, host="127.0.0.1"):
    """A daemon hosting every test object (the contract of the checks), not yet serving."""
    state = objects.State()
    daemon = objects.make_daemon_class(T, state)(host=host, port=0)
    state.daemon = daemon
    if "methodcall_error_handler" not in T.lacks:
        objects.install_error_handler(daemon, state)
    for object_id, thing in objects.build(T, state).items():
        daemon.register(thing, object_id)
    return daemon


def scenario_main(T, objects, params):
    daemon = main_daemon(T, objects)
    emit("ready", location=daemon.locationStr, servertype=str(T.config.SERVERTYPE))
    daemon.requestLoop()


def scenario_ns(T, objects, params):
    uri, daemon = T.start_ns("127.0.0.1")
    emit("ready", uri=str(uri), location=daemon.locationStr)
    daemon.requestLoop()


def _control(T, daemon, state):
    @T.expose
    class Control:
        def shutdown_daemon(self):
            threading.Thread(target=daemon.shutdown).start()
            return "shutting down"

        def stop_loop(self):
            state.stop_requested = True
            return "stopping"

    return Control()


def _finish(daemon):
    emit("loop-exited")
    daemon.close()
    emit("closed")


def scenario_shutdown(T, objects, params):
    state = objects.State()
    daemon = T.Daemon(host="127.0.0.1", port=0)
    daemon.register(_control(T, daemon, state), objects.CONTROL)
    daemon.register(objects.build(T, state)[objects.ECHO], objects.ECHO)
    emit("ready", location=daemon.locationStr)
    daemon.requestLoop()
    _finish(daemon)


def scenario_loopcondition(T, objects, params):
    state = objects.State()
    daemon = T.Daemon(host="127.0.0.1", port=0)
    daemon.register(_control(T, daemon, state), objects.CONTROL)
    daemon.register(objects.build(T, state)[objects.ECHO], objects.ECHO)
    emit("ready", location=daemon.locationStr)
    daemon.requestLoop(loopCondition=lambda: not state.stop_requested)
    _finish(daemon)


def scenario_eventloop(T, objects, params):
    import select
    state = objects.State()
    daemon = T.Daemon(host="127.0.0.1", port=0)
    daemon.register(_control(T, daemon, state), objects.CONTROL)
    daemon.register(objects.build(T, state)[objects.ECHO], objects.ECHO)
    emit("ready", location=daemon.locationStr)
    while not state.stop_requested:
        ready, _, _ = select.select(daemon.sockets, [], [], 0.1)
        if ready:
            daemon.events(ready)
    _finish(daemon)


def scenario_serve(T, objects, params):
    state = objects.State()
    echo = objects.build(T, state)[objects.ECHO]
    daemon = T.Daemon(host="127.0.0.1", port=0)
    emit("ready", location=daemon.locationStr)
    T.serve({echo: params["name"]}, daemon, params["use_ns"])


def scenario_unix(T, objects, params):
    state = objects.State()
    daemon = T.Daemon(unixsocket=params["path"])
    uri = daemon.register(objects.build(T, state)[objects.ECHO], objects.ECHO)
    emit("ready", uri=str(uri), location=daemon.locationStr)
    daemon.requestLoop()


def scenario_combine(T, objects, params):
    state = objects.State()
    first = T.Daemon(host="127.0.0.1", port=0)
    second = T.Daemon(host="127.0.0.1", port=0)
    first.register(objects.build(T, state)[objects.ECHO], "first")
    second.register(objects.build(T, state)[objects.ECHO], "second")
    first.combine(second)
    emit("ready", first=first.locationStr, second=second.locationStr)
    first.requestLoop()


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}

if __name__ == "__main__":
    sys.exit(main())
