"""The objects a conformance server hosts, built with the decorators of one target.

Runs only inside a server subprocess. ``build(T, state)`` returns ``{object id: class or
instance}``; the ids are the names the checks use. The ``conformance.probe`` object
performs server-side checks (daemon API: register, uriFor, NAT, ...) in the server
process and returns what it saw as plain data.
"""

import collections
import gc
import itertools
import socket
import threading
import time

# object ids the checks use
EVERYTHING = "conformance.everything"      # class exposed as a whole
PARTIAL = "conformance.partial"            # only some members exposed
THIRDPARTY = "conformance.thirdparty"      # expose() used as a function
SINGLE = "conformance.single"
SESSION = "conformance.session"
PERCALL = "conformance.percall"
CREATOR = "conformance.creator"
ONEWAY = "conformance.oneway"
FACTORY = "conformance.factory"
FAILING = "conformance.failing"
STREAMS = "conformance.streams"
CALC = "conformance.calc"
BLOB = "conformance.blob"
CONTEXT = "conformance.context"
CONCURRENCY = "conformance.concurrency"
PROBE = "conformance.probe"
ECHO = "conformance.echo"
CONTROL = "conformance.control"
GATE = "conformance.gate"                  # blocking waits released by other calls (execution checks)


class State:
    """Everything the server objects record, so the probe can report it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.oneway = {}
        self.lazy_created = collections.Counter()
        self.closed_streams = set()
        self.arrived = collections.Counter()
        self.active = collections.Counter()
        self.max_active = collections.Counter()
        self.errors_seen = []
        self.handshake_tags = {}
        self.disconnected = []
        self.children = []
        self.daemon = None
        self.stop_requested = False
        self.gates = {}                 # token -> threading.Event (Gate)
        self.gate_status = {}           # token -> "waiting" / "released" / "timed out" (Gate)


class LibraryThing:
    """Stands in for a third-party class that knows nothing about Pyro."""

    def compute(self, x):
        return x + 1

    def _hidden(self):
        return "hidden"


def build(T, state):
    expose, oneway, behavior = T.expose, T.oneway, T.behavior

    @expose
    class Everything:
        value = 42                      # plain class attribute: never remoted

        def __init__(self):
            self._secret = "secret"
            self.plain = "plain"

        def method(self, x):
            return x * 2

        def echo(self, x):
            return x

        def ident(self):
            return id(self)

        def __dunder__(self):
            return "dunder"

        def __len__(self):
            return 7

        def _private(self):
            return "private"

        def __private(self):
            return "mangled"

        def __repr__(self):
            return "<Everything>"

        def __call__(self):
            return "called"

        def __sizeof__(self):
            return 1

        @property
        def prop(self):
            return self.value

        @prop.setter
        def prop(self, v):
            self.value = v

        @property
        def _privprop(self):
            return "private property"

        @staticmethod
        def static(x):
            return "static %s" % x

        @classmethod
        def klass(cls, x):
            return "class %s" % x

    class Partial:
        def __init__(self):
            self._value = 1

        @expose
        def exposed_method(self):
            return "exposed"

        def unexposed_method(self):
            return "hidden"

        @expose
        @property
        def prop(self):
            return self._value

        @expose
        @prop.setter
        def prop(self, v):
            self._value = v

        @property
        def hidden_prop(self):
            return "hidden"

        @expose
        @property
        def readonly(self):
            return "ro"

        @staticmethod
        @expose
        def static(x):
            return "static %s" % x

        @classmethod
        @expose
        def klass(cls, x):
            return "class %s" % x

    serials = itertools.count(1)

    @expose
    class Ident:
        def __init__(self):
            self.serial = next(serials)

        def ident(self):
            """A number unique to this instance (id() could be reused after a free)."""
            return self.serial

    @behavior(instance_mode="single")
    class SingleThing(Ident):
        pass

    @behavior(instance_mode="session")
    class SessionThing(Ident):
        pass

    @behavior(instance_mode="percall")
    class PercallThing(Ident):
        pass

    def creator(cls):
        return cls("made by instance_creator for %s" % cls.__name__)

    @behavior(instance_mode="session", instance_creator=creator)
    @expose
    class CreatorThing:
        def __init__(self, origin):
            self.origin = origin

        def how(self):
            return self.origin

    @behavior(instance_mode="single")
    @expose
    class OnewayThing:
        @oneway
        def work(self, token, seconds):
            state.oneway[token] = "running"
            time.sleep(seconds)
            state.oneway[token] = "done"

        @oneway
        def fail(self, token):
            state.oneway[token] = "raised"
            raise ValueError("a oneway failure is not reported to the client")

        def status(self, token):
            return state.oneway.get(token)

    @expose
    class Child:
        def __init__(self, name):
            self.name_ = name

        def name(self):
            return self.name_

        def whoami(self):
            return [self._pyroId, self._pyroDaemon.locationStr]

    @behavior(instance_mode="single")
    @expose
    class Factory:
        def make(self, name):
            child = Child(name)
            self._pyroDaemon.register(child)
            state.children.append(child)
            return child

        def use(self, thing):
            """Called with a proxy (or object) the client passes in."""
            try:
                return thing.name()
            finally:
                if hasattr(thing, "_pyroRelease"):
                    thing._pyroRelease()

        def call_back(self, callback, text):
            try:
                return callback.shout(text)
            finally:
                callback._pyroRelease()

    @expose
    class Failing:
        def fail(self, message):
            raise ValueError(message)

        def divide(self, a, b):
            return a / b

        def deep(self):
            return self._level_one()

        def _level_one(self):
            raise KeyError("raised two levels down")

    @behavior(instance_mode="single")
    @expose
    class Streams:
        def count(self, n):
            for i in range(n):
                yield i

        def infinite(self, token):
            try:
                i = 0
                while True:
                    yield i
                    i += 1
            finally:
                state.closed_streams.add(token)

        def broken(self, n):
            for i in range(n):
                yield i
            raise ValueError("stream broke after %d items" % n)

        def closed(self, token):
            return token in state.closed_streams

    @expose
    class Calc:
        def add(self, a, b):
            return a + b

        def mul(self, a, b):
            return a * b

        def fail(self, message):
            raise ValueError(message)

        def note(self, token):
            state.oneway[token] = "noted"

    @expose
    class BlobSink:
        def receive(self, blob):
            return [type(blob).__name__, blob.info, blob.deserialized()]

    @expose
    class Context:
        def client_info(self):
            ctx = T.current_context
            addr = ctx.client_sock_addr
            return {"addr": list(addr) if addr else None, "has_client": ctx.client is not None,
                    "correlation_id": str(ctx.correlation_id) if ctx.correlation_id else None}

        def annotations_seen(self):
            return {k: bytes(v).decode("ascii", "replace") for k, v in T.current_context.annotations.items()
                    if k.startswith("X")}

        def respond_annotated(self):
            T.current_context.response_annotations["XRSP"] = b"from-method"
            return "ok"

    @behavior(instance_mode="single")
    @expose
    class Concurrency:
        def rendezvous(self, key, parties, timeout):
            with state.cond:
                state.arrived[key] += 1
                state.cond.notify_all()
                return state.cond.wait_for(lambda: state.arrived[key] >= parties, timeout)

        def hold(self, key, seconds):
            with state.lock:
                state.active[key] += 1
                state.max_active[key] = max(state.max_active[key], state.active[key])
            time.sleep(seconds)
            with state.lock:
                state.active[key] -= 1
            return state.max_active[key]

        def max_active(self, key):
            return state.max_active[key]

        def nap(self, seconds):
            time.sleep(seconds)
            return "rested"

    def gate(token):
        with state.lock:
            event = state.gates.get(token)
            if event is None:
                event = state.gates[token] = threading.Event()
            return event

    def gate_wait(token, timeout):
        """Block in a real wait (threading.Event) until open(token) or the timeout; True when opened."""
        event = gate(token)
        with state.lock:
            state.gate_status[token] = "waiting"
        opened = bool(event.wait(timeout))
        with state.lock:
            state.gate_status[token] = "released" if opened else "timed out"
        return opened

    @behavior(instance_mode="single")
    @expose
    class Gate:
        """Calls that block until another call lets them go. Tokens are strings chosen by the client;
        every wait has a timeout, so a server that cannot run the releasing call still recovers."""

        def wait(self, token, timeout):
            return gate_wait(token, timeout)

        @oneway
        def wait_oneway(self, token, timeout):
            gate_wait(token, timeout)

        def open(self, token):
            gate(token).set()
            return True

        def status(self, token):
            """None (never waited), "waiting", "released" or "timed out"."""
            with state.lock:
                return state.gate_status.get(token)

        def meet(self, key, me, other, timeout):
            """Open gate key+me, then wait (threading.Event.wait) for gate key+other; True when it opened."""
            return self._meet(key, me, other, lambda event: event.wait(timeout))

        def meet_sleeping(self, key, me, other, timeout):
            """As meet(), but wait by polling with time.sleep()."""
            def sleep_until(event):
                deadline = time.monotonic() + timeout
                while not event.is_set() and time.monotonic() < deadline:
                    time.sleep(0.005)
                return event.is_set()
            return self._meet(key, me, other, sleep_until)

        def _meet(self, key, me, other, wait):
            with state.lock:
                state.active[key] += 1
                state.max_active[key] = max(state.max_active[key], state.active[key])
            try:
                gate(key + ":" + me).set()
                return bool(wait(gate(key + ":" + other)))
            finally:
                with state.lock:
                    state.active[key] -= 1

        def max_active(self, key):
            """The most meet() calls of ``key`` that were running at once."""
            with state.lock:
                return state.max_active[key]

    @expose
    class Echo:
        def echo(self, x):
            return x

        def where(self):
            return self._pyroDaemon.locationStr

    def fresh_class():
        @expose
        class Plain:
            def echo(self, x):
                return x
        return Plain

    @behavior(instance_mode="single")
    @expose
    class Probe:
        """Server-side checks; each returns plain data describing what the daemon did."""

        def nat(self):
            Plain = fresh_class()
            out = {}
            d = T.Daemon(host="127.0.0.1", port=0, nathost="nat.example.org", natport=45678)
            try:
                obj = Plain()
                out["location"] = d.locationStr
                out["register"] = str(d.register(obj, "natobj"))
                out["uriFor"] = str(d.uriFor(obj))
                out["uriFor_nat_false"] = str(d.uriFor(obj, nat=False))
                p = d.proxyFor("natobj")
                out["proxyFor"] = str(p._pyroUri)
                p._pyroRelease()
                p = d.proxyFor(obj, nat=False)
                out["proxyFor_nat_false"] = str(p._pyroUri)
                p._pyroRelease()
            finally:
                d.close()
            d = T.Daemon(host="127.0.0.1", port=0, nathost="nat.example.org", natport=0)
            try:
                out["natport0_location"] = d.locationStr
                out["natport0_uri"] = str(d.register(Plain(), "natobj0"))
            finally:
                d.close()
            return out

        def register_rules(self):
            Plain = fresh_class()
            out = {}
            d = T.Daemon(host="127.0.0.1", port=0)
            try:
                registered = lambda: sorted(T.DaemonObject(d).registered())  # noqa: E731
                obj = Plain()
                uri = d.register(obj, "custom.id")
                out["uri"] = str(uri)
                out["location"] = d.locationStr
                out["pyroId"] = getattr(obj, "_pyroId", None)
                out["pyroDaemon_location"] = getattr(getattr(obj, "_pyroDaemon", None), "locationStr", None)
                out["registered"] = registered()
                out["same_object_again"] = _outcome(lambda: d.register(obj))
                other = Plain()
                out["other_object_same_id"] = _outcome(lambda: d.register(other, "custom.id"))
                out["force_same_id"] = _outcome(lambda: d.register(other, "custom.id", force=True))
                out["forced_object_has_id"] = getattr(other, "_pyroId", None)
                auto = Plain()
                out["generated_id_uri"] = str(d.register(auto))
                out["generated_id"] = getattr(auto, "_pyroId", None)
                d.unregister(auto._pyroId)
                out["after_unregister_by_id"] = registered()
                d.unregister(other)
                out["after_unregister_by_object"] = registered()
                out["attrs_after_unregister"] = [hasattr(other, "_pyroId") and bool(other._pyroId),
                                                 hasattr(other, "_pyroDaemon") and other._pyroDaemon is not None]
                out["uriFor_unregistered_name"] = _outcome(lambda: str(d.uriFor("just.a.name")))
            finally:
                d.close()
            return out

        def weak(self):
            Plain = fresh_class()
            out = {}
            d = T.Daemon(host="127.0.0.1", port=0)
            try:
                obj = Plain()
                d.register(obj, "weak.one", weak=True)
                out["while_alive"] = "weak.one" in T.DaemonObject(d).registered()
                del obj
                gc.collect()
                out["after_gc"] = "weak.one" in T.DaemonObject(d).registered()
            finally:
                d.close()
            return out

        def expose_private(self):
            def _hidden():
                pass

            def __mangled():
                pass
            return [_outcome(lambda: T.expose(_hidden)), _outcome(lambda: T.expose(__mangled))]

        def behavior_invalid(self):
            return _outcome(lambda: T.behavior(instance_mode="forever")(fresh_class()))

        def localhost(self):
            d = T.Daemon()
            try:
                return {"location": d.locationStr, "bound": d.sock.getsockname()[0]}
            finally:
                d.close()

        def with_close(self):
            with T.Daemon(host="127.0.0.1", port=0) as d:
                port = d.sock.getsockname()[1]
                inside = _can_connect(port)
            return {"inside": inside, "after": _can_connect(port)}

        def new_lazy_class(self):
            """Register a new class in this daemon; return its object id. Counts its instances."""
            object_id = "conformance.lazy.%d" % next(serials)

            @expose
            class LazyThing:
                def __init__(self):
                    state.lazy_created[object_id] += 1

                def hello(self):
                    return "hello"
            state.daemon.register(LazyThing, object_id)
            return object_id

        def lazy_count(self, object_id):
            return state.lazy_created[object_id]

        def errors_seen(self):
            return list(state.errors_seen)

        def disconnected(self, tag):
            return tag in state.disconnected

        def servertype(self):
            return str(T.config.SERVERTYPE)

    return {
        EVERYTHING: Everything, PARTIAL: Partial, THIRDPARTY: T.expose(LibraryThing),
        SINGLE: SingleThing, SESSION: SessionThing, PERCALL: PercallThing, CREATOR: CreatorThing,
        ONEWAY: OnewayThing, FACTORY: Factory, FAILING: Failing, STREAMS: Streams,
        CALC: Calc, BLOB: BlobSink, CONTEXT: Context, CONCURRENCY: Concurrency, PROBE: Probe,
        ECHO: Echo, GATE: Gate,
    }


def _outcome(fn):
    """Run fn; describe the result as 'ok' or the exception's class name and message."""
    try:
        fn()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported to the checking side
        return "%s: %s" % (type(exc).__name__, exc)


def _can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def make_daemon_class(T, state):
    """A Daemon subclass with the overridable hooks the checks observe."""

    class ConformanceDaemon(T.Daemon):
        def validateHandshake(self, conn, data):
            if data == "please deny":
                raise ValueError("conformance validator denies this client")
            if isinstance(data, dict) and "tag" in data:
                state.handshake_tags[id(conn)] = data["tag"]
            return {"accepted": data}

        def clientDisconnect(self, conn):
            tag = state.handshake_tags.pop(id(conn), None)
            if tag is not None:
                state.disconnected.append(tag)

        def annotations(self):
            return {"XDMN": b"daemon-annotation"}

    return ConformanceDaemon


def install_error_handler(daemon, state):
    def handler(daemon_, client_sock, method, vargs, kwargs, exception):
        state.errors_seen.append([getattr(method, "__name__", str(method)), type(exception).__name__, str(exception)])
    daemon.methodcall_error_handler = handler
