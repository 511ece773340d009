"""The behaviours. Each check names its source: a document and its section (see ``catalogue.Document``).

Client code runs here (in the harness) with the client target; objects live in the
server subprocess (see ``objects.py``). Server-side daemon API checks call the
``conformance.probe`` object, which performs them in the server process.
"""

import os
import shutil
import tempfile
import threading
import time
import uuid

from . import objects as o
from .catalogue import PYRO4_CORE_API as CORE_API
from .catalogue import PYRO5_SERVER_API as SERVER_API
from .catalogue import PYRO5_SERVERS as MANUAL
from .catalogue import check, expect, expect_raises, expect_true
from .harness import poll

BOTH = ("concurrent", "multiplex")

EXPOSING = MANUAL("Creating a Pyro class and exposing its methods and properties")
THIRDPARTY = MANUAL("Exposing classes and methods without changing existing source code")
PUBLISHING = MANUAL("Pyro Daemon: publishing Pyro objects")
REGISTERING = MANUAL("Registering objects/classes")
INSTANCE = MANUAL("Controlling Instance modes and Instance creation")
SERVERTYPES = MANUAL("Server types and Concurrency model")


def raw(proxy, name, *args):
    """Invoke ``name`` on the wire, bypassing the proxy's own metadata checks."""
    return proxy._pyroInvoke(name, args, {})


def metadata(ctx, object_id, servertype=None):
    ctx.uri(object_id, servertype)  # (n/a for a server command that does not register the object)
    meta = ctx.proxy(ctx.c.DAEMON_NAME, servertype).get_metadata(object_id)
    return {key: set(meta.get(key, ())) for key in ("methods", "oneway", "attrs")}


# ---------------------------------------------------------------- exposure rules ---------

@check("expose.class", EXPOSING, "@expose on a class exposes every public method", servertypes=BOTH)
def _(ctx):
    p = ctx.proxy(o.EVERYTHING)
    expect(p.method(21), 42, "Everything.method(21) on a class exposed as a whole")
    expect(p.echo("x"), "x", "Everything.echo('x')")


@check("expose.method", EXPOSING, "@expose on a single method makes that method callable")
def _(ctx):
    expect(ctx.proxy(o.PARTIAL).exposed_method(), "exposed", "Partial.exposed_method()")


@check("expose.unexposed-method", EXPOSING, "a method without @expose is not remotely accessible")
def _(ctx):
    p = ctx.proxy(o.PARTIAL)
    expect_raises(AttributeError, lambda: p.unexposed_method(), "proxy.unexposed_method()")
    expect_raises(AttributeError, lambda: raw(p, "unexposed_method"),
                  "invoking 'unexposed_method' by name on the wire (server must refuse it)")


@check("expose.property-get", EXPOSING, "an exposed @property is readable as a remote attribute")
def _(ctx):
    p = ctx.proxy(o.PARTIAL)
    expect(p.prop, 1, "proxy.prop (exposed property)")
    expect(p.readonly, "ro", "proxy.readonly (exposed read-only property)")


@check("expose.property-set", EXPOSING, "an exposed property setter makes the remote attribute writable")
def _(ctx):
    p = ctx.proxy(o.PARTIAL)
    p.prop = 99
    expect(p.prop, 99, "proxy.prop after 'proxy.prop = 99'")


@check("expose.property-unexposed", EXPOSING, "a property without @expose is not a remote attribute")
def _(ctx):
    p = ctx.proxy(o.PARTIAL)
    expect_raises(AttributeError, lambda: p.hidden_prop, "reading proxy.hidden_prop (unexposed property)")
    expect_raises(AttributeError, lambda: raw(p, "__getattr__", "hidden_prop"),
                  "remote __getattr__('hidden_prop') on the wire")


@check("expose.plain-attribute", EXPOSING, "plain class and instance attributes are never exposed")
def _(ctx):
    p = ctx.proxy(o.EVERYTHING)
    expect_raises(AttributeError, lambda: p.value, "reading proxy.value (plain class attribute)")
    expect_raises(AttributeError, lambda: raw(p, "__getattr__", "plain"),
                  "remote __getattr__('plain') (plain instance attribute)")
    expect(metadata(ctx, o.EVERYTHING)["attrs"], {"prop"}, "exposed attributes of Everything")


@check("expose.static-class-methods", EXPOSING, "staticmethods and classmethods can be exposed")
def _(ctx):
    p = ctx.proxy(o.PARTIAL)
    expect(p.static(1), "static 1", "Partial.static(1)")
    expect(p.klass(2), "class 2", "Partial.klass(2)")
    q = ctx.proxy(o.EVERYTHING)
    expect(q.static(3), "static 3", "Everything.static(3) on a class exposed as a whole")
    expect(q.klass(4), "class 4", "Everything.klass(4) on a class exposed as a whole")


@check("expose.metadata", EXPOSING, "the metadata lists exactly the exposed methods and attributes")
def _(ctx):
    meta = metadata(ctx, o.PARTIAL)
    expect(meta["methods"], {"exposed_method", "static", "klass"}, "exposed methods of Partial")
    expect(meta["attrs"], {"prop", "readonly"}, "exposed attributes of Partial")


@check("expose.as-function", THIRDPARTY, "expose() called as a function exposes a third-party class")
def _(ctx):
    p = ctx.proxy(o.THIRDPARTY)
    expect(p.compute(1), 2, "LibraryThing.compute(1) after expose(LibraryThing)")
    expect_raises(AttributeError, lambda: raw(p, "_hidden"), "invoking LibraryThing._hidden on the wire")


# ---------------------------------------------------------------- private names -----------

@check("private.single-underscore", EXPOSING, "single-underscore methods are never remoted, even on an exposed class")
def _(ctx):
    p = ctx.proxy(o.EVERYTHING)
    expect_raises(AttributeError, lambda: p._private(), "proxy._private()")
    expect_raises(AttributeError, lambda: raw(p, "_private"), "invoking '_private' on the wire")
    expect_true("_private" not in metadata(ctx, o.EVERYTHING)["methods"], "'_private' must not be in the metadata")


@check("private.double-underscore", EXPOSING, "double-underscore (mangled) methods are never remoted")
def _(ctx):
    p = ctx.proxy(o.EVERYTHING)
    for name in ("__private", "_Everything__private"):
        expect_raises(AttributeError, lambda: raw(p, name), "invoking %r on the wire" % name)
    methods = metadata(ctx, o.EVERYTHING)["methods"]
    expect_true(not any("private" in m for m in methods), "no *private* name may be in the metadata", methods)


@check("private.attribute", PUBLISHING.about("note: Private methods"), "private instance attributes are not readable")
def _(ctx):
    p = ctx.proxy(o.EVERYTHING)
    expect_raises(AttributeError, lambda: raw(p, "__getattr__", "_secret"), "remote __getattr__('_secret')")
    expect_raises(AttributeError, lambda: p._secret, "proxy._secret")


@check("private.property", EXPOSING, "a property whose name starts with an underscore is not remoted")
def _(ctx):
    p = ctx.proxy(o.EVERYTHING)
    expect_raises(AttributeError, lambda: raw(p, "__getattr__", "_privprop"), "remote __getattr__('_privprop')")
    expect_true("_privprop" not in metadata(ctx, o.EVERYTHING)["attrs"], "'_privprop' must not be an exposed attribute")


@check("private.dunder-exposed", EXPOSING, "regular dunder methods (e.g. __len__, __dunder__) are exposed")
def _(ctx):
    methods = metadata(ctx, o.EVERYTHING)["methods"]
    for name in ("__dunder__", "__len__"):
        expect_true(name in methods, "%r must be an exposed method" % name, sorted(methods))
    p = ctx.proxy(o.EVERYTHING)
    expect(raw(p, "__dunder__"), "dunder", "invoking __dunder__ on the wire")
    expect(raw(p, "__len__"), 7, "invoking __len__ on the wire")


@check("private.never-remoted", EXPOSING,
       "the dunders a proxy relies on (__init__, __call__, __repr__, ...) are never remoted")
def _(ctx):
    methods = metadata(ctx, o.EVERYTHING)["methods"]
    banned = {"__init__", "__call__", "__repr__", "__sizeof__", "__getattr__", "__setattr__", "__class__"}
    expect(methods & banned, set(), "never-remoted dunders found in the metadata")
    p = ctx.proxy(o.EVERYTHING)
    for name in ("__call__", "__repr__", "__init__"):
        expect_raises(AttributeError, lambda: raw(p, name), "invoking %r on the wire" % name)


@check("private.expose-refused", EXPOSING, "@expose on a private name is refused", side="server")
def _(ctx):
    seen = ctx.probe().expose_private()
    for outcome in seen:
        expect_true(outcome.startswith("AttributeError"),
                    "expose() on a private function must raise AttributeError", outcome)


# ---------------------------------------------------------------- oneway ------------------

ONEWAY_DOC = MANUAL("Creating a Pyro class and exposing its methods and properties", "the @oneway decorator")


@check("oneway.returns-early", ONEWAY_DOC, "a oneway call returns before the method has finished")
def _(ctx):
    p = ctx.proxy(o.ONEWAY)
    p._pyroBind()
    token = ctx.token()
    start = time.monotonic()
    result = p.work(token, 1.5)
    took = time.monotonic() - start
    expect(result, None, "return value of a oneway call")
    expect_true(took < 1.0, "oneway call must return before the 1.5s method ends; it took %.2fs" % took)
    poll(lambda: p.status(token) == "done", 10)


@check("oneway.still-runs", ONEWAY_DOC, "the oneway method still runs on the server")
def _(ctx):
    p = ctx.proxy(o.ONEWAY)
    token = ctx.token()
    p.work(token, 0.05)
    status = poll(lambda: p.status(token) == "done" or None, 10)
    expect_true(status, "oneway method never completed within 10s; status=%r" % p.status(token))


@check("oneway.threaded", SERVERTYPES.about("note: ONEWAY_THREADED"),
       "oneway calls run in their own worker, so the next call on the same proxy is not held up",
       servertypes=BOTH)
def _(ctx):
    p = ctx.proxy(o.ONEWAY)
    p._pyroBind()
    token = ctx.token()
    p.work(token, 1.5)
    start = time.monotonic()
    status = p.status(token)
    took = time.monotonic() - start
    expect_true(took < 1.0, "a call after a 1.5s oneway call on the same proxy waited %.2fs (status %r); "
                "expected the oneway method to run in its own worker" % (took, status))
    poll(lambda: p.status(token) == "done", 10)


@check("oneway.metadata", ONEWAY_DOC, "the metadata tells the client which methods are oneway")
def _(ctx):
    expect(metadata(ctx, o.ONEWAY)["oneway"], {"work", "fail"}, "oneway methods of OnewayThing")


@check("oneway.error-not-reported", ONEWAY_DOC, "an exception in a oneway method is not raised in the client")
def _(ctx):
    p = ctx.proxy(o.ONEWAY)
    token = ctx.token()
    expect(p.fail(token), None, "oneway call of a method that raises")
    expect_true(poll(lambda: p.status(token) == "raised", 10), "the failing oneway method never ran")
    expect(p.status(token), "raised", "proxy still usable after a failing oneway call")


# ---------------------------------------------------------------- instance modes ----------

@check("instance.session", INSTANCE, "instance_mode='session': one instance per proxy connection", servertypes=BOTH)
def _(ctx):
    p1, p2 = ctx.proxy(o.SESSION), ctx.proxy(o.SESSION)
    a, b = p1.ident(), p1.ident()
    expect(b, a, "instance serial of the second call on the same proxy")
    c = p2.ident()
    expect_true(c != a, "a second proxy must get its own instance; both got serial %r" % a)


@check("instance.single", INSTANCE, "instance_mode='single': one instance for every proxy", servertypes=BOTH)
def _(ctx):
    p1, p2 = ctx.proxy(o.SINGLE), ctx.proxy(o.SINGLE)
    expect(p2.ident(), p1.ident(), "instance serial seen by a second proxy")


@check("instance.percall", INSTANCE, "instance_mode='percall': a new instance for every call", servertypes=BOTH)
def _(ctx):
    p = ctx.proxy(o.PERCALL)
    a, b = p.ident(), p.ident()
    expect_true(a != b, "two calls on one proxy must hit two instances; both got serial %r" % a)


@check("instance.creator", INSTANCE, "instance_creator is called with the class to make the instance")
def _(ctx):
    expect(ctx.proxy(o.CREATOR).how(), "made by instance_creator for CreatorThing", "CreatorThing.how()")


@check("instance.lazy", INSTANCE.about("sidebar: Instance creation is lazy"),
       "a registered class is instantiated only when first needed")
def _(ctx):
    probe = ctx.probe()
    object_id = probe.new_lazy_class()
    expect(probe.lazy_count(object_id), 0, "instances of a registered class before anyone called it")
    expect(ctx.proxy(object_id).hello(), "hello", "LazyThing.hello()")
    expect(probe.lazy_count(object_id), 1, "instances of the class after one session made one call")


@check("instance.invalid-mode", SERVER_API("behavior()"),
       "behavior() with an unknown instance_mode is refused", side="server")
def _(ctx):
    outcome = ctx.probe().behavior_invalid()
    expect_true(outcome.startswith("ValueError"), "behavior(instance_mode='forever') on a class must raise ValueError",
                outcome)


# ---------------------------------------------------------------- autoproxy ---------------

AUTOPROXY = MANUAL("Autoproxying")


@check("autoproxy.returned", AUTOPROXY, "a registered object returned from a call arrives as a proxy", servertypes=BOTH)
def _(ctx):
    child = ctx.proxy(o.FACTORY).make("kid")
    ctx.on_cleanup(getattr(child, "_pyroRelease", lambda: None))
    expect_true(isinstance(child, ctx.c.Proxy), "returned registered object must be a %s Proxy; got %s"
                % (ctx.c.name, type(child).__name__))
    expect(child.name(), "kid", "calling the returned proxy")


@check("autoproxy.passed", AUTOPROXY, "a proxy passed back as an argument reaches the object it stands for")
def _(ctx):
    factory = ctx.proxy(o.FACTORY)
    child = factory.make("kid2")
    ctx.on_cleanup(child._pyroRelease)
    expect(factory.use(child), "kid2", "server calling the proxy the client passed in")


@check("autoproxy.client-object", (AUTOPROXY, SERVER_API("callback")),
       "a client's registered object passed as an argument becomes a proxy the server can call")
def _(ctx):
    c = ctx.c

    @c.expose
    class Shouter:
        def shout(self, text):
            return text.upper() + "!"

    daemon = ctx.client_daemon()
    shouter = Shouter()
    daemon.register(shouter)
    expect(ctx.proxy(o.FACTORY).call_back(shouter, "hi"), "HI!", "server calling back the client's object")


@check("attrs.in-method", MANUAL("Attributes added to Pyro objects"),
       "_pyroId and _pyroDaemon are usable inside a registered object's methods")
def _(ctx):
    child = ctx.proxy(o.FACTORY).make("kid3")
    ctx.on_cleanup(child._pyroRelease)
    uri = child._pyroUri
    expect(child.whoami(), [uri.object, ctx.location()], "[_pyroId, _pyroDaemon.locationStr] inside the method")


# ---------------------------------------------------------------- daemon API (server side)

NAT = MANUAL("Creating a Daemon", "nathost, natport")


@check("nat.register-uri", NAT, "register() hands out URIs with the NAT host and port", side="server")
def _(ctx):
    seen = ctx.probe().nat()
    expect(seen["register"], "PYRO:natobj@nat.example.org:45678", "register() URI with nathost/natport")
    expect(seen["uriFor"], "PYRO:natobj@nat.example.org:45678", "uriFor(obj) with nathost/natport")


@check("nat.natport-zero", NAT, "natport=0 publishes the daemon's real port under the NAT host", side="server")
def _(ctx):
    seen = ctx.probe().nat()
    port = seen["natport0_location"].rsplit(":", 1)[1]
    expect(seen["natport0_uri"], "PYRO:natobj0@nat.example.org:" + port, "URI of a daemon made with natport=0")


@check("nat.uriFor-nat-false", SERVER_API("Daemon.uriFor"),
       "uriFor(..., nat=False) gives the internal address", side="server")
def _(ctx):
    seen = ctx.probe().nat()
    expect(seen["uriFor_nat_false"], "PYRO:natobj@" + seen["location"], "uriFor(obj, nat=False)")


@check("nat.proxyFor", SERVER_API("Daemon.proxyFor"), "proxyFor honours NAT, and nat=False ignores it", side="server")
def _(ctx):
    seen = ctx.probe().nat()
    expect(seen["proxyFor"], "PYRO:natobj@nat.example.org:45678", "proxyFor('natobj')._pyroUri")
    expect(seen["proxyFor_nat_false"], "PYRO:natobj@" + seen["location"], "proxyFor(obj, nat=False)._pyroUri")


ATTRS = MANUAL("Attributes added to Pyro objects")


@check("attrs.pyroid-pyrodaemon", ATTRS, "register() sets _pyroId and _pyroDaemon on the object", side="server")
def _(ctx):
    seen = ctx.probe().register_rules()
    expect(seen["pyroId"], "custom.id", "obj._pyroId after register(obj, 'custom.id')")
    expect(seen["pyroDaemon_location"], seen["location"], "obj._pyroDaemon.locationStr")


@check("attrs.removed-on-unregister", ATTRS, "unregister() removes _pyroId and _pyroDaemon again", side="server")
def _(ctx):
    seen = ctx.probe().register_rules()
    expect(seen["attrs_after_unregister"], [False, False], "[has _pyroId, has _pyroDaemon] after unregister(obj)")


@check("register.object-id", REGISTERING, "register() with an objectId uses it in the URI", side="server")
def _(ctx):
    seen = ctx.probe().register_rules()
    expect(seen["uri"], "PYRO:custom.id@" + seen["location"], "URI returned by register(obj, 'custom.id')")


@check("register.generated-id", REGISTERING, "register() without an objectId generates a unique one", side="server")
def _(ctx):
    seen = ctx.probe().register_rules()
    expect_true(seen["generated_id"], "a generated object id", seen["generated_id"])
    expect(seen["generated_id_uri"], "PYRO:%s@%s" % (seen["generated_id"], seen["location"]), "URI with generated id")


@check("register.duplicate-refused", SERVER_API("Daemon.register"),
       "registering twice, or reusing an id, raises DaemonError",
       side="server")
def _(ctx):
    seen = ctx.probe().register_rules()
    expect_true(seen["same_object_again"].startswith("DaemonError"), "registering the same object again",
                seen["same_object_again"])
    expect_true(seen["other_object_same_id"].startswith("DaemonError"), "registering another object under a taken id",
                seen["other_object_same_id"])


@check("register.force", REGISTERING, "register(..., force=True) overwrites an existing registration", side="server")
def _(ctx):
    seen = ctx.probe().register_rules()
    expect(seen["force_same_id"], "ok", "register(other, 'custom.id', force=True)")
    expect(seen["forced_object_has_id"], "custom.id", "_pyroId of the force-registered object")


@check("register.unregister-by-id", MANUAL("Unregistering objects"), "unregister(objectId) removes the object",
       side="server")
def _(ctx):
    seen = ctx.probe().register_rules()
    expect_true(seen["generated_id"] not in seen["after_unregister_by_id"],
                "unregistered id must be gone from registered()", seen["after_unregister_by_id"])


@check("register.unregister-by-object", MANUAL("Unregistering objects"), "unregister(obj) removes the object",
       side="server")
def _(ctx):
    seen = ctx.probe().register_rules()
    expect(seen["after_unregister_by_object"], ["Pyro.Daemon"], "registered() after unregistering everything")


@check("register.weak", REGISTERING, "register(..., weak=True) unregisters the object when it is garbage-collected",
       side="server", needs=("weak_register",))
def _(ctx):
    seen = ctx.probe().weak()
    expect(seen, {"while_alive": True, "after_gc": False}, "registration while alive / after gc")


@check("register.uriFor-name", SERVER_API("Daemon.uriFor"), "uriFor() accepts an unregistered name (just makes a URI)",
       side="server")
def _(ctx):
    expect(ctx.probe().register_rules()["uriFor_unregistered_name"], "ok", "uriFor('just.a.name')")


@check("register.unknown-object", MANUAL("Unregistering objects"), "calling an unknown object id raises DaemonError")
def _(ctx):
    p = ctx.proxy("no.such.object")
    # Pyro5 refuses at connect time (metadata handshake), Pyro4 on the call: both say "unknown object"
    expect_raises((ctx.c.errors.DaemonError, ctx.c.errors.CommunicationError), lambda: p.echo(1),
                  "calling an object id the daemon does not know", contains="unknown object")


# ---------------------------------------------------------------- DaemonObject ------------

DAEMONOBJ = MANUAL("Daemon Pyro interface")


@check("daemon.ping", DAEMONOBJ, "the Pyro.Daemon object answers ping()")
def _(ctx):
    expect(ctx.proxy(ctx.c.DAEMON_NAME).ping(), None, "Pyro.Daemon ping()")


@check("daemon.registered", DAEMONOBJ, "registered() lists every object id, including Pyro.Daemon")
def _(ctx):
    wanted = {"Pyro.Daemon", o.EVERYTHING, o.PARTIAL, o.PROBE, o.ONEWAY}
    for object_id in sorted(wanted):
        ctx.uri(object_id)  # (n/a for a server command that does not register them all)
    ids = set(ctx.proxy(ctx.c.DAEMON_NAME).registered())
    expect(wanted - ids, set(), "ids missing from registered()")


@check("daemon.info", SERVER_API("DaemonObject.info"), "info() returns a description naming the daemon's location")
def _(ctx):
    info = ctx.proxy(ctx.c.DAEMON_NAME).info()
    expect_true(isinstance(info, str) and info, "info() must be a non-empty str", info)
    port = ctx.location().rsplit(":", 1)[1]
    expect_true(port in info, "info() should mention the daemon's port %s" % port, info)


@check("daemon.get_metadata", SERVER_API("DaemonObject.get_metadata"), "get_metadata() gives methods, oneway and attrs")
def _(ctx):
    meta = metadata(ctx, o.ONEWAY)
    expect(meta["methods"], {"work", "fail", "status"}, "methods of OnewayThing")
    expect(meta["attrs"], set(), "attrs of OnewayThing")


@check("daemon.get_metadata-unknown", SERVER_API("DaemonObject.get_metadata"),
       "get_metadata() of an unknown id raises DaemonError")
def _(ctx):
    d = ctx.proxy(ctx.c.DAEMON_NAME)
    expect_raises(ctx.c.errors.DaemonError, lambda: d.get_metadata("no.such.object"), "get_metadata('no.such.object')")


# ---------------------------------------------------------------- binding, loops ----------

@check("bind.localhost-default", MANUAL("Network adapter binding and localhost"),
       "a Daemon made without host binds on localhost", side="server")
def _(ctx):
    seen = ctx.probe().localhost()
    expect_true(seen["location"].startswith("localhost:"), "default daemon location must be localhost:<port>", seen)
    expect_true(seen["bound"] in ("127.0.0.1", "::1"), "default daemon must bind a loopback address", seen)


@check("bind.unix-socket", (CORE_API("URI", "./u:sockname"), MANUAL("Creating a Daemon", "unixsocket")),
       "a daemon on a Unix domain socket is reachable through a ./u: URI")
def _(ctx):
    tmp = tempfile.mkdtemp(prefix="cf")
    ctx.on_cleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
    path = os.path.join(tmp, "s")
    server = ctx.scenario("unix", params={"path": path})
    uri = server.info["uri"]
    expect(uri, "PYRO:%s@./u:%s" % (o.ECHO, path), "URI of an object on a unix-socket daemon")
    expect(ctx.proxy(uri).echo(5), 5, "call over the unix socket")


@check("bind.context-manager", PUBLISHING.about("note: with statement"),
       "a Daemon used in a with-block is closed after it",
       side="server")
def _(ctx):
    expect(ctx.probe().with_close(), {"inside": True, "after": False}, "can connect inside / after the with-block")


LOOP = MANUAL("Running the request loop")
CLEANUP = MANUAL("Cleaning up")


@check("loop.shutdown", (CLEANUP, SERVER_API("Daemon.shutdown")),
       "shutdown() from another thread ends requestLoop cleanly", servertypes=BOTH)
def _(ctx):
    server = ctx.scenario("shutdown", ctx.servertype)
    control = ctx.proxy("PYRO:%s@%s" % (o.CONTROL, server.info["location"]))
    control.shutdown_daemon()
    control._pyroRelease()
    server.wait_event("loop-exited", 15)
    expect(server.wait_exit(15), 0, "server exit code after shutdown()")


@check("loop.loopcondition", (LOOP, CLEANUP), "requestLoop returns once loopCondition is false", servertypes=BOTH)
def _(ctx):
    server = ctx.scenario("loopcondition", ctx.servertype, params={"config": {"POLLTIMEOUT": 0.1, "COMMTIMEOUT": 0.5}})
    control = ctx.proxy("PYRO:%s@%s" % (o.CONTROL, server.info["location"]))
    expect(control.stop_loop(), "stopping", "stop_loop()")
    control._pyroRelease()
    server.wait_event("loop-exited", 15)
    expect(server.wait_exit(15), 0, "server exit code after the loop ended")


@check("loop.eventloop", MANUAL("Integrating Pyro in your own event loop"),
       "daemon.sockets and daemon.events() let your own select loop serve requests", servertypes=("multiplex",))
def _(ctx):
    server = ctx.scenario("eventloop", "multiplex")
    location = server.info["location"]
    expect(ctx.proxy("PYRO:%s@%s" % (o.ECHO, location)).echo("looped"), "looped", "call served by a select() loop")
    ctx.proxy("PYRO:%s@%s" % (o.CONTROL, location)).stop_loop()
    server.wait_event("loop-exited", 15)


@check("loop.combine", MANUAL("Combining Daemon request loops"), "combine() serves two daemons from one requestLoop",
       servertypes=("multiplex",))
def _(ctx):
    server = ctx.scenario("combine", "multiplex")
    for name in ("first", "second"):
        p = ctx.proxy("PYRO:%s@%s" % (name, server.info[name]))
        expect(p.echo(name), name, "call to the %s daemon of a combined pair" % name)


SERVE = MANUAL("Oneliner Pyro object publishing: Pyro5.server.serve()")


def _call_when_ready(ctx, uri, arg, timeout=15):
    errors = ctx.c.errors
    last = [None]

    def attempt():
        p = ctx.c.Proxy(uri)
        try:
            return ("ok", p.echo(arg))
        except (errors.DaemonError, errors.CommunicationError, errors.NamingError) as exc:
            last[0] = exc
            return None
        finally:
            p._pyroRelease()
    result = poll(attempt, timeout, 0.05)
    expect_true(result, "no answer from %s within %ss (last error: %r)" % (uri, timeout, last[0]))
    return result[1]


@check("serve.without-ns", SERVE, "serve(..., use_ns=False) uses the given names as object ids in the daemon")
def _(ctx):
    server = ctx.scenario("serve", params={"name": "conformance.served", "use_ns": False})
    uri = "PYRO:conformance.served@" + server.info["location"]
    expect(_call_when_ready(ctx, uri, 3), 3, "call to an object published by serve() without a name server")


@check("serve.with-ns", SERVE, "serve(...) with a name server registers the names there")
def _(ctx):
    ns = ctx.ns()
    name = "conformance.served." + ctx.token()
    server = ctx.scenario("serve", params={"name": name, "use_ns": True},
                          env={"PYRO_NS_HOST": ns["host"], "PYRO_NS_PORT": str(ns["port"])})
    uri = "PYRONAME:%s@%s:%d" % (name, ns["host"], ns["port"])
    expect(_call_when_ready(ctx, uri, 4), 4, "call through PYRONAME to an object published by serve()")
    found = ctx.ns_proxy().lookup(name)
    expect(found.location, server.info["location"], "location of the name server entry made by serve()")


# ---------------------------------------------------------------- server types ------------

def _in_threads(ctx, object_id, fn, count=2):
    """Run fn(proxy) in ``count`` threads at once, each with its own proxy; return results."""
    results, errors = [None] * count, []
    barrier = threading.Barrier(count)
    uri = ctx.uri(object_id)

    def run(i):
        p = ctx.c.Proxy(uri)
        try:
            p._pyroBind()
            barrier.wait(10)
            results[i] = fn(p)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            p._pyroRelease()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise AssertionError("a concurrent client call failed: %r" % errors[0])
    return results


@check("servertype.concurrent", SERVERTYPES.about("threaded server, the default"),
       "the default server type runs calls from different proxies concurrently")
def _(ctx):
    key = ctx.token()
    results = _in_threads(ctx, o.CONCURRENCY, lambda p: p.rendezvous(key, 2, 5.0))
    expect(results, [True, True], "two calls waiting for each other inside the server (True = they met)")


@check("servertype.sequential", SERVERTYPES.about("multiplexed server"),
       "the multiplex server type runs one call at a time", servertypes=("multiplex",))
def _(ctx):
    key = ctx.token()
    _in_threads(ctx, o.CONCURRENCY, lambda p: p.hold(key, 0.3))
    expect(ctx.proxy(o.CONCURRENCY).max_active(key), 1, "most calls active at once on the multiplex server")


@check("servertype.single-concurrent", SERVERTYPES, "a 'single' instance is called concurrently on the threaded server")
def _(ctx):
    key = ctx.token()
    results = _in_threads(ctx, o.CONCURRENCY, lambda p: p.rendezvous(key, 3, 5.0), count=3)
    expect(results, [True, True, True], "three calls meeting inside one 'single' instance")


# ---------------------------------------------------------------- errors ------------------

ERRORS = (CORE_API("Proxy", "remote exceptions"), SERVER_API("Daemon.handleRequest"))


@check("errors.remote-exception", ERRORS, "an exception raised remotely is raised in the client with its message",
       servertypes=BOTH)
def _(ctx):
    p = ctx.proxy(o.FAILING)
    expect_raises(ValueError, lambda: p.fail("boom 42"), "calling a method that raises ValueError('boom 42')",
                  contains="boom 42")
    expect_raises(ZeroDivisionError, lambda: p.divide(1, 0), "remote 1/0")


@check("errors.remote-traceback", ERRORS, "a remote exception carries the remote traceback (_pyroTraceback)")
def _(ctx):
    exc = expect_raises(KeyError, lambda: ctx.proxy(o.FAILING).deep(), "calling a method that raises KeyError")
    tb = getattr(exc, "_pyroTraceback", None)
    expect_true(isinstance(tb, (list, tuple)) and tb, "exception must have a non-empty _pyroTraceback list", tb)
    text = "".join(tb)
    expect_true("_level_one" in text and "KeyError" in text,
                "remote traceback must name the raising function _level_one and KeyError", text[-600:])


@check("errors.formatted-traceback", CORE_API("util.getPyroTraceback / errors.get_pyro_traceback"),
       "get_pyro_traceback() formats local and remote traceback together")
def _(ctx):
    exc = expect_raises(KeyError, lambda: ctx.proxy(o.FAILING).deep(), "calling a method that raises KeyError")
    text = "".join(ctx.c.get_pyro_traceback(exc))
    expect_true("Remote traceback" in text and "_level_one" in text,
                "formatted traceback must contain the 'Remote traceback' section naming _level_one", text[-600:])


@check("errors.unknown-method", EXPOSING, "calling a method the object does not have raises AttributeError")
def _(ctx):
    p = ctx.proxy(o.EVERYTHING)
    expect_raises(AttributeError, lambda: p.no_such_method(), "proxy.no_such_method()")
    expect_raises(AttributeError, lambda: raw(p, "no_such_method"), "invoking 'no_such_method' on the wire")


@check("errors.methodcall-error-handler", MANUAL("Intercepting errors in user code executed in a method call"),
       "methodcall_error_handler sees the exception raised in user code", needs=("methodcall_error_handler",))
def _(ctx):
    token = ctx.token()
    expect_raises(ValueError, lambda: ctx.proxy(o.FAILING).fail("handled " + token), "calling Failing.fail")
    probe = ctx.probe()
    seen = poll(lambda: [e for e in probe.errors_seen() if e[2] == "handled " + token], 10)
    expect(seen, [["fail", "ValueError", "handled " + token]], "[method, exception type, message] seen by the handler")


# ---------------------------------------------------------------- handshake, annotations --

def _handshake_proxy(ctx, object_id, responses):
    class HandshakeProxy(ctx.c.Proxy):
        def _pyroValidateHandshake(self, response):
            responses.append(response)
    return ctx.proxy(object_id, cls=HandshakeProxy)


@check("handshake.accept", (SERVER_API("Daemon.validateHandshake"), CORE_API("Proxy._pyroHandshake")),
       "validateHandshake sees the proxy's handshake data and its return value reaches the proxy",
       needs=("daemon_hooks",))
def _(ctx):
    responses = []
    p = _handshake_proxy(ctx, o.ECHO, responses)
    p._pyroHandshake = {"hello": "from client"}
    p._pyroBind()
    expect(responses, [{"accepted": {"hello": "from client"}}], "handshake response seen by _pyroValidateHandshake")


@check("handshake.deny", SERVER_API("Daemon.validateHandshake"),
       "an exception in validateHandshake rejects the connection with its message",
       needs=("daemon_hooks",))
def _(ctx):
    p = ctx.proxy(o.ECHO)
    p._pyroHandshake = "please deny"
    expect_raises(ctx.c.errors.CommunicationError, p._pyroBind, "connecting with a handshake the server denies",
                  contains="conformance validator denies this client")


@check("annotations.client-to-server", CORE_API("Proxy._pyroAnnotations / current_context"),
       "annotations the client sets arrive in the server's current_context.annotations")
def _(ctx):
    p = ctx.proxy(o.CONTEXT)
    ctx.c.current_context.annotations = {"XCLI": b"from-client"}
    try:
        seen = p.annotations_seen()
    finally:
        ctx.c.current_context.annotations = {}
    expect(seen.get("XCLI"), "from-client", "annotation XCLI seen by the server")


@check("annotations.server-to-client", (SERVER_API("Daemon.annotations"), CORE_API("Proxy._pyroResponseAnnotations")),
       "Daemon.annotations() and response_annotations set in a method reach the client",
       needs=("daemon_hooks",))
def _(ctx):
    p = ctx.proxy(o.CONTEXT)
    expect(p.respond_annotated(), "ok", "respond_annotated()")
    got = {k: bytes(v) for k, v in dict(ctx.c.current_context.response_annotations).items() if k.startswith("X")}
    expect(got, {"XRSP": b"from-method", "XDMN": b"daemon-annotation"}, "custom response annotations")


@check("context.correlation-id", CORE_API("current_context"),
       "a correlation id set by the client is seen by the server")
def _(ctx):
    p = ctx.proxy(o.CONTEXT)
    cid = uuid.uuid4()
    ctx.c.current_context.correlation_id = cid
    try:
        info = p.client_info()
    finally:
        ctx.c.current_context.correlation_id = None
    expect(info["correlation_id"], str(cid), "current_context.correlation_id in the server")


@check("context.client-address", CORE_API("current_context"), "current_context tells a method who the client is")
def _(ctx):
    info = ctx.proxy(o.CONTEXT).client_info()
    expect(info["has_client"], True, "current_context.client is set")
    expect_true(info["addr"] and info["addr"][0] == "127.0.0.1", "client_sock_addr must be the client's address",
                info["addr"])


@check("disconnect.clientDisconnect", SERVER_API("Daemon.clientDisconnect"),
       "clientDisconnect is called when a client's connection goes away")
def _(ctx):
    tag = ctx.token()
    p = ctx.proxy(o.ECHO)
    p._pyroHandshake = {"tag": tag}
    expect(p.echo(1), 1, "echo(1)")
    p._pyroRelease()
    probe = ctx.probe()
    expect_true(poll(lambda: probe.disconnected(tag), 10),
                "clientDisconnect was not called within 10s after the proxy released its connection")


# ---------------------------------------------------------------- timeouts, proxy ----------

@check("timeout.raises", CORE_API("Proxy._pyroTimeout"), "a call slower than _pyroTimeout raises TimeoutError")
def _(ctx):
    p = ctx.proxy(o.CONCURRENCY)
    p._pyroBind()
    p._pyroTimeout = 0.3
    start = time.monotonic()
    expect_raises(ctx.c.errors.TimeoutError, lambda: p.nap(2.0), "a 2s call with _pyroTimeout=0.3")
    took = time.monotonic() - start
    expect_true(took < 1.8, "TimeoutError must come after about 0.3s, it took %.2fs" % took)


@check("timeout.recovers", CORE_API("Proxy._pyroTimeout / _pyroReconnect"),
       "after a timeout the proxy can be used again")
def _(ctx):
    p = ctx.proxy(o.CONCURRENCY)
    p._pyroTimeout = 0.2
    expect_raises(ctx.c.errors.TimeoutError, lambda: p.nap(1.0), "a 1s call with _pyroTimeout=0.2")
    p._pyroTimeout = None
    expect(p.nap(0), "rested", "next call on the same proxy after the timeout")


@check("proxy.release-reconnect", CORE_API("Proxy._pyroRelease"), "a released proxy reconnects on the next call")
def _(ctx):
    p = ctx.proxy(o.EVERYTHING)
    expect(p.method(1), 2, "first call")
    p._pyroRelease()
    expect(p.method(2), 4, "call after _pyroRelease()")


# ---------------------------------------------------------------- batch ---------------------

BATCH = CORE_API("Proxy._pyroBatch / batch()")


@check("batch.results-in-order", BATCH, "a batch runs its calls in one round trip and yields results in order",
       servertypes=BOTH)
def _(ctx):
    b = ctx.c.batch(ctx.proxy(o.CALC))
    b.add(1, 2)
    b.mul(3, 4)
    b.add("a", "b")
    expect(list(b()), [3, 12, "ab"], "batch results")


@check("batch.exception-stops", BATCH, "an exception in a batch is raised at its place and stops the batch")
def _(ctx):
    token = ctx.token()
    b = ctx.c.batch(ctx.proxy(o.CALC))
    b.add(1, 1)
    b.fail("batch boom")
    b.note(token)
    results = b()
    expect(next(results), 2, "first batch result")
    expect_raises(ValueError, lambda: next(results), "second batch result (the failing call)", contains="batch boom")
    expect(ctx.proxy(o.ONEWAY).status(token), None, "the call after the failing one must not have run; its mark")


@check("batch.oneway", BATCH, "a oneway batch returns None at once and still runs its calls")
def _(ctx):
    token = ctx.token()
    b = ctx.c.batch(ctx.proxy(o.CALC))
    b.add(1, 1)
    b.note(token)
    expect(b(oneway=True), None, "result of a oneway batch")
    status = ctx.proxy(o.ONEWAY)
    expect_true(poll(lambda: status.status(token) == "noted", 10), "the oneway batch's calls never ran")


# ---------------------------------------------------------------- streams ------------------

STREAMS = CORE_API("_StreamResultIterator", "streamed iterators")


@check("stream.iterate", STREAMS, "a generator result is streamed to the client as an iterator", servertypes=BOTH)
def _(ctx):
    result = ctx.proxy(o.STREAMS).count(5)
    expect_true(not isinstance(result, (list, tuple)), "a generator result must arrive as an iterator, not a %s"
                % type(result).__name__)
    expect(list(result), [0, 1, 2, 3, 4], "items of the streamed generator")


@check("stream.exception", STREAMS, "an exception inside a streamed generator reaches the client after the items")
def _(ctx):
    got = []

    def consume():
        for item in ctx.proxy(o.STREAMS).broken(2):
            got.append(item)
    expect_raises(ValueError, consume, "iterating a generator that raises after 2 items", contains="stream broke")
    expect(got, [0, 1], "items received before the exception")


@check("stream.close", STREAMS, "closing a streamed iterator closes the generator on the server")
def _(ctx):
    token = ctx.token()
    p = ctx.proxy(o.STREAMS)
    it = p.infinite(token)
    expect([next(it), next(it)], [0, 1], "first two items of an endless stream")
    it.close()
    expect_true(poll(lambda: p.closed(token), 10), "the server generator was not closed within 10s of iterator.close()")


# ---------------------------------------------------------------- SerializedBlob ------------

BLOB = CORE_API("SerializedBlob")


@check("blob.passthrough", BLOB, "a SerializedBlob argument reaches the method still serialized, with its info")
def _(ctx):
    blob = ctx.c.SerializedBlob("blob-info", {"k": [1, 2]})
    expect(ctx.proxy(o.BLOB).receive(blob), ["SerializedBlob", "blob-info", {"k": [1, 2]}],
           "[type, info, deserialized()] seen by the method")


@check("blob.only-argument", BLOB, "a SerializedBlob must be the only argument of the call", side="client")
def _(ctx):
    blob = ctx.c.SerializedBlob("info", {"k": 1})
    p = ctx.proxy(o.BLOB)
    expect_raises(ctx.c.errors.SerializeError, lambda: p.receive(blob, 2), "a call with a blob and another argument")


# ---------------------------------------------------------------- serializers ---------------

PAYLOAD = {"text": "h\u00e9llo", "int": 42, "big": 2 ** 40, "float": 1.5, "list": [1, 2, 3], "none": None,
           "bool": True, "nested": {"a": ["b", {"c": 1}]}}

for _name in ("serpent", "json", "marshal", "msgpack", "pickle", "dill", "cloudpickle"):
    def _make(name):
        @check("serializer." + name, (MANUAL("Serialization"), CORE_API("Proxy._pyroSerializer")),
               "a proxy using the %s serializer round-trips common types" % name, serializer=name)
        def _(ctx):
            p = ctx.proxy(o.EVERYTHING)
            p._pyroSerializer = name
            expect(p.echo(PAYLOAD), PAYLOAD, "echo of a dict of common types over %s" % name)
    _make(_name)


# ---------------------------------------------------------------- name server ---------------

NSDOC = MANUAL("Intermission: Example 2: server and client, with name server")


@check("ns.locate", (NSDOC, CORE_API("locateNS")), "locate_ns(host, port) finds the name server")
def _(ctx):
    ns = ctx.ns_proxy()
    expect(ns.ping(), None, "name server ping()")
    found = ns.lookup(ctx.c.NAMESERVER_NAME)
    expect(found.location, "%s:%d" % (ctx.ns()["host"], ctx.ns()["port"]), "location of Pyro.NameServer")


def _registered_name(ctx, ns, metadata=None):
    name = "conformance.ns." + ctx.token()
    if metadata:
        ns.register(name, ctx.uri(o.ECHO), metadata=metadata)
    else:
        ns.register(name, ctx.uri(o.ECHO))
    ctx.on_cleanup(lambda: ns.remove(name))
    return name


@check("ns.register-lookup", REGISTERING, "ns.register(name, uri) then ns.lookup(name)")
def _(ctx):
    ns = ctx.ns_proxy()
    name = _registered_name(ctx, ns)
    expect(str(ns.lookup(name)), ctx.uri(o.ECHO), "URI looked up for the registered name")


@check("ns.pyroname", CORE_API("URI", "PYRONAME"), "a PYRONAME: URI is resolved through the name server")
def _(ctx):
    ns, info = ctx.ns_proxy(), ctx.ns()
    name = _registered_name(ctx, ns)
    p = ctx.proxy("PYRONAME:%s@%s:%d" % (name, info["host"], info["port"]))
    expect(p.echo(7), 7, "call through a PYRONAME proxy")


@check("ns.pyrometa", CORE_API("URI", "PYROMETA"), "a PYROMETA: URI finds an object by its metadata")
def _(ctx):
    ns, info = ctx.ns_proxy(), ctx.ns()
    meta = "conformance.meta." + ctx.token()
    _registered_name(ctx, ns, metadata={meta})
    p = ctx.proxy("PYROMETA:%s@%s:%d" % (meta, info["host"], info["port"]))
    expect(p.echo(8), 8, "call through a PYROMETA proxy")


@check("ns.list-remove", NSDOC, "ns.list(prefix) lists names; ns.remove(name) removes one")
def _(ctx):
    ns = ctx.ns_proxy()
    prefix = "conformance.list.%s." % ctx.token()
    for i in range(2):
        ns.register(prefix + str(i), ctx.uri(o.ECHO))
    expect(set(ns.list(prefix=prefix)), {prefix + "0", prefix + "1"}, "ns.list(prefix)")
    ns.remove(prefix + "0")
    expect(set(ns.list(prefix=prefix)), {prefix + "1"}, "ns.list(prefix) after remove")
    ns.remove(prefix + "1")


@check("ns.lookup-unknown", NSDOC, "looking up an unknown name raises NamingError")
def _(ctx):
    ns = ctx.ns_proxy()
    expect_raises(ctx.c.errors.NamingError, lambda: ns.lookup("conformance.never." + ctx.token()), "ns.lookup(unknown)")


@check("ns.safe-register", NSDOC, "ns.register(..., safe=True) refuses a name that is taken")
def _(ctx):
    ns = ctx.ns_proxy()
    name = _registered_name(ctx, ns)
    expect_raises(ctx.c.errors.NamingError, lambda: ns.register(name, ctx.uri(o.ECHO), safe=True),
                  "registering a taken name with safe=True")


# ---------------------------------------------------------------- URIs (client API) ---------

URIDOC = CORE_API("URI")


@check("uri.parse-pyro", URIDOC, "PYRO:objectid@host:port is parsed into its parts", side="client")
def _(ctx):
    u = ctx.c.URI("PYRO:some.object@example.com:4567")
    expect([u.protocol, u.object, u.host, u.port, u.location],
           ["PYRO", "some.object", "example.com", 4567, "example.com:4567"], "[protocol, object, host, port, location]")


@check("uri.lowercase", URIDOC, "the protocol may be written in lowercase", side="client")
def _(ctx):
    expect(ctx.c.URI("pyro:x@h:1").protocol, "PYRO", "protocol of 'pyro:x@h:1'")
    expect(str(ctx.c.URI("pyroname:x")), "PYRONAME:x", "str of 'pyroname:x'")


@check("uri.unix", URIDOC, "./u:sockname is a Unix domain socket location", side="client")
def _(ctx):
    u = ctx.c.URI("PYRO:x@./u:/tmp/some.sock")
    expect([u.sockname, u.host, u.location], ["/tmp/some.sock", None, "./u:/tmp/some.sock"], "[sockname, host, location]")


@check("uri.pyroname-pyrometa", URIDOC, "PYRONAME and PYROMETA URIs, with optional name server location", side="client")
def _(ctx):
    u = ctx.c.URI("PYRONAME:some.name@nshost:9999")
    expect([u.protocol, u.object, u.host, u.port], ["PYRONAME", "some.name", "nshost", 9999], "PYRONAME parts")
    u = ctx.c.URI("PYROMETA:m1,m2")
    meta = sorted(u.object.split(",") if isinstance(u.object, str) else u.object)
    expect([u.protocol, meta], ["PYROMETA", ["m1", "m2"]], "PYROMETA protocol and metadata")

