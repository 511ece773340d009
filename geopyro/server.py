"""The server side: Daemon, DaemonObject, the decorators, and serve().

A Daemon keeps the registry of published objects and turns each received
message into a method call and a reply. How it listens (greenlet per
connection, multiplex, one connected socket) lives in ``geopyro.servers``.
"""

import atexit
import collections.abc
import inspect
import logging
import os
import random
import signal
import threading
import time
import uuid
import warnings
import weakref

import gevent
import gevent.lock
import gevent.monkey

from . import blockwatch, config, core, errors, pickles, protocol, protocol48, serializers, socketutil
from . import execution as _execution
from .callcontext import current_context
from .client import Proxy, SerializedBlob
from .execution import INLINE
from .exposure import (behavior, blocking, callback, check_instancing, cooperative, expose, get_exposed_members,
                       get_exposed_method, get_exposed_property_value, is_callback_method, is_private_attribute, oneway,
                       reset_exposed_members, set_exposed_property_value)
from .servers import make_server
from .socketutil import SocketConnection

__all__ = ["Daemon", "DaemonObject", "callback", "expose", "behavior", "oneway", "blocking", "cooperative", "serve",
           "is_private_attribute"]

log = logging.getLogger("geopyro.server")

_DICT_VIEW_ITERATORS = (type(iter({}.keys())), type(iter({}.values())), type(iter({}.items())))


@expose
class DaemonObject:
    """The daemon's own remote interface, registered as ``Pyro.Daemon``.

    Its quick methods run inline; the stream methods run user generators, so they follow the daemon's rule.
    """

    def __init__(self, daemon):
        self.daemon = daemon

    @cooperative
    def registered(self):
        """The ids of all objects registered in this daemon."""
        return list(self.daemon.objectsById)

    @cooperative
    def ping(self):
        """Do nothing (a liveness check)."""

    @cooperative
    def info(self):
        """A line describing the daemon."""
        return "%s bound on %s, NAT %s, %d objects registered. Servertype: %s" % (
            core.DAEMON_NAME, self.daemon.locationStr, self.daemon.natLocationStr,
            len(self.daemon.objectsById), self.daemon.transportServer)

    @cooperative
    def get_metadata(self, objectId, as_lists=False):
        """Exposed methods, oneway methods and attributes of a registered object (``as_lists``: lists instead of
        sets, for Pyro4's serializers that have no sets)."""
        obj = _unpack_weakref(self.daemon.objectsById.get(objectId))
        if obj is None:
            log.debug("metadata asked for unknown object %r", objectId)
            raise errors.DaemonError("unknown object")
        metadata = get_exposed_members(obj)
        if not metadata["methods"] and not metadata["attrs"]:
            warnings.warn("Class %r doesn't expose any methods or attributes. Did you forget setting @expose on them?"
                          % (obj,))
        if as_lists:
            metadata = {key: sorted(value) for key, value in metadata.items()}
        return metadata

    def get_next_stream_item(self, streamId):
        """The next item of a streamed result (StopIteration at the end)."""
        return self.daemon._streams.next_item(streamId)

    def close_stream(self, streamId):
        """Forget a streamed result the client no longer wants."""
        self.daemon._streams.close(streamId)


class _Streams:
    """The live iterator results of a daemon, by stream id, with their owner connection and timestamps."""

    def __init__(self, settings):
        self.settings = settings
        self.items = {}  # stream id -> [connection or None, created, lingering since, iterator, where]

    def add(self, iterator, conn, where=None):
        stream_id = str(uuid.uuid4())
        self.items[stream_id] = [conn, time.time(), 0.0, iterator, where]
        return stream_id

    def where(self, stream_id):
        """Where the stream's items are made: where the method that returned the generator ran (or None)."""
        entry = self.items.get(stream_id) if isinstance(stream_id, str) else None
        return entry[4] if entry is not None else None

    def next_item(self, stream_id):
        entry = self.items.get(stream_id)
        if entry is None:
            raise errors.PyroError("item stream terminated")
        if entry[0] is None:  # the client came back after a disconnect
            entry[0], entry[2] = current_context.client, 0.0
        try:
            return next(entry[3])
        except BaseException:
            self.close(stream_id)  # StopIteration or an error ends the stream
            raise

    def close(self, stream_id):
        entry = self.items.pop(stream_id, None)
        if entry is not None:
            _close_iterator(entry[3])

    def client_gone(self, conn):
        linger = self.settings.ITER_STREAM_LINGER
        for stream_id, entry in list(self.items.items()):
            if entry[0] is conn:
                if linger > 0:
                    entry[0], entry[2] = None, time.time()
                else:
                    self.close(stream_id)

    def expire(self):
        if not self.items:
            return
        now = time.time()
        lifetime, linger = self.settings.ITER_STREAM_LIFETIME, self.settings.ITER_STREAM_LINGER
        for stream_id, entry in list(self.items.items()):
            if (lifetime > 0 and now - entry[1] > lifetime) or (linger > 0 and entry[2] and now - entry[2] > linger):
                self.close(stream_id)

    def clear(self):
        for stream_id in list(self.items):
            self.close(stream_id)


def _close_iterator(iterator):
    close = getattr(iterator, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.debug("error closing a stream's iterator", exc_info=True)


def _unpack_weakref(obj):
    if isinstance(obj, weakref.ref):
        target = obj()
        if target is None:
            raise errors.DaemonError("weakly registered object has been garbage collected")
        return target
    return obj


class _CannotRegister(errors.DaemonError, AttributeError):
    """An object that cannot carry _pyroId: a DaemonError, and the AttributeError Pyro5 lets through."""


def _ctrl_c_through_the_hub():
    """In a monkey-patched program's main thread, have Ctrl-C reach the request loop's greenlet through the
    hub, at a point where it waits, and not wherever Python happens to be when the signal comes: a connection's
    greenlet interrupted inside logging would die holding logging's lock, and the program's exit would not be
    quiet. Returns the signal watcher to cancel, or None where Python's own handling stays (unpatched
    programs, other threads, a program with a SIGINT handler of its own)."""
    if not gevent.monkey.is_module_patched("threading") or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return None
    return gevent.signal_handler(signal.SIGINT, gevent.kill, gevent.getcurrent(), KeyboardInterrupt)


def _peer_address(conn):
    """The client's address, or None where a connection object of the program's own cannot say."""
    try:
        return conn.getpeername() if hasattr(conn, "getpeername") else conn.sock.getpeername()
    except (AttributeError, OSError):
        return None


def _recv_exactly(conn, size):
    """``size`` bytes from a connection object that only has ``recv``, however it hands them out."""
    parts, missing = [], size
    while missing:
        chunk = conn.recv(missing)
        if not chunk:
            raise errors.ConnectionClosedError("receiving: connection closed")
        parts.append(chunk)
        missing -= len(chunk)
    return b"".join(parts)


def _receive(conn, max_size, accepted_types):
    """The next message on a connection: a SocketConnection reads its own; any other object with only
    ``recv(size)`` (a stand-in Pyro5 programs and tests pass to handleRequest) is read header first."""
    own_reader = getattr(conn, "recv_message", None)
    if own_reader is not None:
        return own_reader(max_size, accepted_types)
    reader = protocol.MessageReader(max_size)
    header = _recv_exactly(conn, protocol.HEADER_SIZE)
    reader.feed(header)
    msg = reader.next_message()
    if msg is None:
        _, _, _, _, data_size, ann_size, _ = protocol.parse_header(header, max_size)
        reader.feed(_recv_exactly(conn, data_size + ann_size))
        msg = reader.next_message()
    protocol.check_type(msg, accepted_types)
    return msg


def _default_methodcall_error_handler(daemon, client_sock, method, vargs, kwargs, exception):
    log.debug("exception in method call: client=%s method=%s exception=%r", client_sock,
              getattr(method, "__qualname__", method), exception)


class Daemon:
    """Publishes objects and serves remote calls to them.

    ``host``/``port`` (default: config HOST, a free port) or ``unixsocket``
    say where to listen; ``nathost``/``natport`` what address to put in URIs
    (``natport=0``: the real port); ``connected_socket`` serves one existing
    connection instead of listening. As in Pyro5, the daemon reads
    ``geopyro.config`` as it goes: what decides how it listens (server type,
    host, TLS, thread pool) is read when it is made, the rest (timeouts,
    message size, streaming, tracebacks) when it is used.
    """

    def __init__(self, host=None, port=0, unixsocket=None, nathost=None, natport=None, interface=DaemonObject,
                 connected_socket=None):
        settings = config
        if connected_socket is not None:
            nathost = natport = None
        else:
            if nathost is None:
                nathost = settings.NATHOST
            elif not isinstance(nathost, str):
                nathost = str(nathost)
            if natport is None and nathost is not None:
                natport = settings.NATPORT
            if nathost and unixsocket:
                raise ValueError("cannot use nathost together with unixsocket")
            if (nathost is None) ^ (natport is None):
                raise ValueError("must provide natport with nathost")
        self._settings = settings
        self._mustshutdown = True
        self._calls = _execution.CallRunner(settings)
        self.transportServer = make_server(self, settings, host, port, unixsocket, connected_socket)
        self.locationStr = self.transportServer.locationStr
        if nathost:
            real_port = int(self.locationStr.rsplit(":", 1)[1])
            self.natLocationStr = "%s:%d" % (core.host_for_uri(nathost), natport or real_port)
        else:
            self.natLocationStr = None
        daemon_object = interface(self)
        daemon_object._pyroId = core.DAEMON_NAME
        self.objectsById = {core.DAEMON_NAME: daemon_object}
        self._pyroInstances = {}
        self._streams = _Streams(settings)
        self._single_instance_lock = gevent.lock.Semaphore()  # gevent's semaphore works across threads too
        self._busy = set()  # connections in _dispatch: a call runs, or a pool thread lingers on them
        self._executing = set()  # connections whose call runs or whose reply is being sent
        self._oneway_clients = []  # a connection per oneway call running in the background (append/remove: atomic)
        self._cut = set()  # connections cut at shutdown while a pool thread still ran their call
        self._gone = weakref.WeakSet()  # connections whose disconnect has been handled
        self._mustshutdown = False
        self.methodcall_error_handler = _default_methodcall_error_handler
        log.debug("daemon created on %s (pid %d), pyro protocol version: %d", self.locationStr, os.getpid(),
                  protocol.PROTOCOL_VERSION)

    # --- properties of the Pyro5 API ---

    @property
    def sock(self):
        """The listening socket (or the connected socket)."""
        return self.transportServer.sock

    @property
    def sockets(self):
        """Every socket the daemon uses: the listening one and each client's."""
        return self.transportServer.sockets

    @property
    def selector(self):
        """The selector of the multiplex server type."""
        return self.transportServer.selector

    @property
    def streaming_responses(self):
        """Live streamed results by stream id (the clean-up state of ITER_STREAM_* settings)."""
        return self._streams.items

    @property
    def _shutting_down(self):
        return self._mustshutdown

    # --- serving ---

    @staticmethod
    def serveSimple(objects, host=None, port=0, daemon=None, ns=True, verbose=True):
        """Pyro4's name for ``serve()``, kept for old code."""
        serve(objects, host, port, daemon, ns, verbose)

    def requestLoop(self, loopCondition=lambda: True):
        """Serve requests until shutdown() or until loopCondition() returns false."""
        if self.transportServer is None:
            raise errors.DaemonError("this daemon has been closed")
        self._mustshutdown = False
        log.info("daemon %s entering requestloop", self.locationStr)
        _running_daemons.add(self)
        hub = gevent.get_hub()
        quiet = hub.NOT_ERROR
        hub.NOT_ERROR = quiet + (KeyboardInterrupt,)  # Ctrl-C in the hub: not printed as a hub error
        ctrl_c = _ctrl_c_through_the_hub()
        try:
            self.transportServer.loop(lambda: not self._mustshutdown and loopCondition())
        except KeyboardInterrupt:
            log.debug("daemon %s stopping on break signal", self.locationStr)  # quietly, as Pyro5's loops do
        finally:
            if ctrl_c is not None:
                ctrl_c.cancel()
                signal.signal(signal.SIGINT, signal.default_int_handler)
            hub.NOT_ERROR = quiet
            _running_daemons.discard(self)
        log.debug("daemon %s left requestloop", self.locationStr)

    def events(self, eventsockets):
        """For an external event loop: handle what is pending on the given ready sockets."""
        return self.transportServer.events(eventsockets)

    def combine(self, daemon):
        """Serve another daemon from this daemon's request loop: on the multiplex type from the same selector
        (the other must be multiplex too), on the greenlet type by running its loop in a greenlet beside this one."""
        log.debug("combining event loop with other daemon")
        self.transportServer.combine_loop(daemon.transportServer)

    def shutdown(self):
        """End the request loop (callable from another greenlet or thread, or from a method) and close the daemon.

        Calls in progress still send their replies.
        """
        log.debug("daemon shutting down")
        self._mustshutdown = True
        self._streams.clear()
        if self.transportServer is not None:
            self.transportServer.shutdown()
        self.close()

    def close(self):
        """Release the sockets; the daemon cannot be used afterwards."""
        self._mustshutdown = True
        self._streams.clear()
        if self.transportServer is not None:
            log.debug("daemon closing")
            self.transportServer.close()
            self.transportServer = None
        self._calls.close()

    def __enter__(self):
        if self.transportServer is None:
            raise errors.PyroError("cannot reuse this object")
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    def __repr__(self):
        name = "%s.%s at 0x%x" % (type(self).__module__, type(self).__name__, id(self))
        if not hasattr(self, "locationStr"):
            return "<%s; unusable>" % name  # one that came out of a serializer: daemons don't travel
        server = self.transportServer
        if server is None:
            return "<%s; closed>" % name
        family = socketutil.family_str(server.sock) if getattr(server, "sock", None) is not None else "?"
        return "<%s; %s - %s; %d objects>" % (name, self.locationStr, family, len(self.objectsById))

    def __getstate__(self):
        return ()  # daemons are not meant to travel; this only keeps serialization of registered objects safe

    def __setstate__(self, state):
        pass

    # --- overridable hooks ---

    def validateHandshake(self, conn, data):
        """Override to check a new client's handshake data; raise to deny, return data to send back."""
        return "hello"

    def clientDisconnect(self, conn):
        """Override to act when a client connection closes."""

    def housekeeping(self):
        """Override for periodic clean-up work (called every few seconds by the request loop)."""

    def annotations(self):
        """Override to add annotations (dict of 4-letter id -> bytes) to every response."""
        return {}

    @property
    def _pyroHmacKey(self):
        """(Pyro4's name) The key Pyro4 clients must sign their messages with (bytes; None: no signing)."""
        return self.__dict__.get("_hmac_key")

    @_pyroHmacKey.setter
    def _pyroHmacKey(self, value):
        self.__dict__["_hmac_key"] = value.encode("utf-8") if isinstance(value, str) else value
        if value and not self._accepts_protocol48():
            log.warning("an HMAC key only matters to Pyro4 clients, and this daemon does not accept them "
                        "(config.ACCEPT_PYRO4 is off)")

    _serves_pyro4 = None  # True or False: this daemon does (not) serve Pyro4 clients; None: config.ACCEPT_PYRO4 says
    _serializers_accepted = None  # names of the serializers clients may use (Pyro4's SERIALIZERS_ACCEPTED); None: all
    _unsafe_serializers = {}  # id -> the pickle-family serializers (see geopyro.pickles) this daemon accepts: none

    def _serializer_for(self, serializer_id):
        """The serializer of a client's message; SerializeError if there is none, or if this daemon does not
        accept it (one of the pickle family, or one a Pyro4 daemon's SERIALIZERS_ACCEPTED leaves out)."""
        serializer = serializers.serializers_by_id.get(serializer_id)  # (502's: the usual case, first)
        if serializer is None:
            serializer = self._unsafe_serializers.get(serializer_id)
            if serializer is None:
                if pickles.is_unsafe_id(serializer_id):
                    raise errors.SerializeError("message used serializer that is not accepted: %d"
                                                % protocol48.serializer_id_to_48(serializer_id))
                serializer = serializers.get_serializer_by_id(serializer_id)
        if self._serializers_accepted is not None and serializer.name not in self._serializers_accepted:
            wire_id = serializer_id
            if protocol48.is_pyro4_serializer(wire_id):
                wire_id = protocol48.serializer_id_to_48(wire_id)
            raise errors.SerializeError("message used serializer that is not accepted: %d" % wire_id)
        return serializer

    @staticmethod
    def _reply_serializer(serializer_id):
        """(id, serializer) an error goes back in: the client's if geopyro has it (writing a pickle is safe,
        as it is for Pyro4's daemon), else serpent."""
        serializer = pickles.by_id(serializer_id)
        if serializer is not None:
            return serializer_id, serializer
        serializer_id = _known_serializer_id(serializer_id)
        return serializer_id, serializers.get_serializer_by_id(serializer_id)

    def _accepts_protocol48(self):
        """Whether a new connection may speak Pyro4's protocol 48."""
        return self._settings.ACCEPT_PYRO4 if self._serves_pyro4 is None else self._serves_pyro4

    # --- registry ---

    def register(self, obj_or_class, objectId=None, force=False, weak=False):
        """Publish an object or class and return its URI.

        A class gets instances made on demand by its instance mode (default:
        one per session). ``weak=True`` unregisters the object when it is
        garbage collected.
        """
        if objectId:
            if not isinstance(objectId, str):
                raise TypeError("objectId must be a string or None")
        else:
            objectId = "obj_" + uuid.uuid4().hex
        is_class = inspect.isclass(obj_or_class)
        if is_class:
            if weak:
                raise TypeError("Classes cannot be registered with weak=True.")
            check_instancing(obj_or_class)
            if not hasattr(obj_or_class, "_pyroInstancing"):
                obj_or_class._pyroInstancing = ("session", None)
        if not force:
            existing = getattr(obj_or_class, "_pyroId", "")
            if existing and _unpack_weakref(self.objectsById.get(existing)) is obj_or_class:
                raise errors.DaemonError("object or class already has a Pyro id")
            if objectId in self.objectsById:
                raise errors.DaemonError("an object or class is already registered with that id")
        try:
            obj_or_class._pyroId = objectId
            obj_or_class._pyroDaemon = weakref.proxy(self)  # (as Pyro5) a registered class must not keep us alive
        except AttributeError:
            raise _CannotRegister("cannot register %r: it takes no attributes (a builtin type, or __slots__ "
                                     "without _pyroId and _pyroDaemon)" % (obj_or_class,)) from None
        autoproxy_type = obj_or_class if is_class else type(obj_or_class)
        for serializer in serializers.serializers.values():
            serializer.register_type_replacement(autoproxy_type, _autoproxy)
        pickles.register_type_replacement(autoproxy_type, _autoproxy)
        if weak:
            self.objectsById[objectId] = weakref.ref(obj_or_class)
            weakref.finalize(obj_or_class, self._unregister_id, objectId)
        else:
            self.objectsById[objectId] = obj_or_class
        return self.uriFor(objectId)

    def _unregister_id(self, objectId):
        if objectId != core.DAEMON_NAME:
            self.objectsById.pop(objectId, None)

    def unregister(self, objectOrId):
        """Stop publishing an object or class (given itself or its id)."""
        if objectOrId is None:
            raise ValueError("object or objectid argument expected")
        if isinstance(objectOrId, str):
            objectId, obj = objectOrId, None
        else:
            objectId, obj = getattr(objectOrId, "_pyroId", None), objectOrId
            if objectId is None:
                raise errors.DaemonError("object isn't registered")
        if objectId == core.DAEMON_NAME:
            return
        registered = self.objectsById.pop(objectId, None)
        if obj is None and registered is not None:
            try:
                target = _unpack_weakref(registered)
            except errors.DaemonError:
                target = None
            if inspect.isclass(target):
                self._pyroInstances.pop(target, None)
            return  # unregistered by id: as in Pyro5 the object keeps its _pyroId and _pyroDaemon
        if obj is not None and registered is not None:
            for name in ("_pyroId", "_pyroDaemon"):
                try:
                    delattr(obj, name)
                except AttributeError:
                    pass
        if inspect.isclass(obj):
            self._pyroInstances.pop(obj, None)

    def uriFor(self, objectOrId, nat=True):
        """The URI of a registered object (or of any id string); ``nat=False`` ignores the NAT address."""
        if not isinstance(objectOrId, str):
            objectOrId = getattr(objectOrId, "_pyroId", None)
            if objectOrId is None or objectOrId not in self.objectsById:
                raise errors.DaemonError("object isn't registered in this daemon")
        location = (self.natLocationStr or self.locationStr) if nat else self.locationStr
        return core.URI("PYRO:%s@%s" % (objectOrId, location))

    def proxyFor(self, objectOrId, nat=True):
        """A ready proxy (metadata filled in) for a registered object."""
        uri = self.uriFor(objectOrId, nat)
        try:
            registered = _unpack_weakref(self.objectsById[uri.object])
        except KeyError:
            raise errors.DaemonError("object isn't registered in this daemon") from None
        proxy = Proxy(uri)
        proxy._pyroGetMetadata(known_metadata=get_exposed_members(registered))
        return proxy

    def resetMetadataCache(self, objectOrId, nat=True):
        """Forget cached metadata of an object whose exposed members changed at run time."""
        uri = self.uriFor(objectOrId, nat)
        registered = self.objectsById.get(uri.object)
        if registered is not None:
            reset_exposed_members(_unpack_weakref(registered))

    # --- the conversation with a client ---
    #
    # A request goes through three steps. _prepare (where the bytes arrived: the connection's greenlet, or a
    # pool thread lingering on the connection) parses it. The CallRunner says where it runs. _execute runs it
    # there and returns an _Outcome: the encoded reply, and an error that must end the connection, if any.
    # Whoever holds the connection then sends the reply (_deliver).

    def _handshake(self, conn, denied_reason=None):
        """Answer a client's CONNECT with CONNECTOK (handshake response and metadata) or CONNECTFAIL."""
        settings = self._settings
        try:
            msg = _receive(conn, settings.MAX_MESSAGE_SIZE, (protocol.MSG_CONNECT,))
        except errors.ConnectionClosedError:
            log.debug("handshake failed, connection closed early")
            return False
        except errors.SecurityError as exc:
            self._refuse_unsigned_connect(conn, exc)
            return False
        return self._handshake_reply(conn, msg, denied_reason)

    def _refuse_unsigned_connect(self, conn, exc):
        """Answer a CONNECT whose HMAC was wrong or missing (only protocol 48 signs messages) as Pyro4 does: a
        CONNECTFAIL saying why, signed with our key."""
        log.warning("Pyro4 client refused: %s", exc)
        marshal = serializers.get_pyro4_serializer("marshal")
        self._send(conn, self._encode(protocol.MSG_CONNECTFAIL, 0, 0, marshal.serializer_id, marshal.dumps(str(exc))))

    def _handshake_reply(self, conn, msg, denied_reason=None):
        if self._calls.uses_threads and self._hooks_overridden("validateHandshake", "annotations"):
            accepted, reply = self._calls.call_in_thread(self._handshake_outcome, conn, msg, denied_reason)
        else:
            accepted, reply = self._handshake_outcome(conn, msg, denied_reason)
        self._send(conn, reply)
        return accepted

    def _handshake_outcome(self, conn, msg, denied_reason):
        serializer_id, flags = msg.serializer_id, 0
        current_context.correlation_id = msg.corr_id if msg.flags & protocol.FLAGS_CORR_ID \
            else _new_correlation_id()
        try:
            if denied_reason:
                raise errors.CommunicationError(denied_reason)
            data = self._decoded(msg)  # (a large Pyro4 message's signature first, then the serializer's checks)
            serializer = self._serializer_for(msg.serializer_id)
            pyro4 = protocol48.is_pyro4_serializer(serializer_id)  # (a Pyro4 client sends "object" only for metadata)
            if not pyro4 and self._pyroHmacKey:
                raise errors.SecurityError("this daemon requires Pyro4's HMAC signing (it has an HMAC key), which "
                                           "protocol 502 cannot do; use TLS with client certificates instead")
            if not isinstance(data, dict) or "handshake" not in data or "object" not in data and not pyro4:
                raise errors.ProtocolError("invalid handshake data")
            current_context.client = conn
            current_context.annotations = msg.annotations
            response = self.validateHandshake(conn, data["handshake"])
            if not pyro4 or msg.flags & protocol48.FLAGS_META_ON_CONNECT:  # (a 502 client always gets metadata)
                metadata = self.objectsById[core.DAEMON_NAME].get_metadata(data["object"], as_lists=pyro4)
                response = {"handshake": response, "meta": metadata}
                flags = protocol48.FLAGS_META_ON_CONNECT if pyro4 else 0
            payload = serializer.dumps(response)
            msgtype = protocol.MSG_CONNECTOK
        except Exception as exc:
            log.debug("handshake failed: %s", exc)
            if isinstance(exc, errors.SecurityError) and protocol48.is_pyro4_serializer(serializer_id):
                serializer_id = serializers.get_pyro4_serializer("marshal").serializer_id  # (as Pyro4's daemon)
            serializer_id, serializer = self._reply_serializer(serializer_id)
            payload = serializer.dumps(str(exc))
            msgtype, flags = protocol.MSG_CONNECTFAIL, 0
        finally:
            if _execution.in_pool_thread():
                current_context.reset()
        return msgtype == protocol.MSG_CONNECTOK, self._encode(msgtype, flags, msg.seq, serializer_id, payload)

    def _hooks_overridden(self, *names):
        """True if a subclass replaced one of these Daemon hooks (then they are user code, maybe blocking),
        unless the replacement is marked @cooperative."""
        cls = type(self)
        for name in names:
            hook = getattr(cls, name)
            if hook is not getattr(Daemon, name) and getattr(hook, "_pyroExecution", None) != INLINE:
                return True
        interface = type(self.objectsById[core.DAEMON_NAME])
        return "validateHandshake" in names and interface.get_metadata is not DaemonObject.get_metadata

    def _send(self, conn, data):
        """Send an encoded message (a large payload follows its header uncopied)."""
        if type(data) is tuple and not isinstance(conn, SocketConnection):
            data = b"".join(data)  # a connection object of the user's own may expect one bytes object
        conn.send(data)

    def _reply(self, conn, msgtype, flags, seq, serializer_id, payload, extra_annotations=None):
        """Encode a message for ``conn`` and send it."""
        self._send(conn, self._encode(msgtype, flags, seq, serializer_id, payload, extra_annotations))

    def _encode(self, msgtype, flags, seq, serializer_id, payload, extra_annotations=None):
        annotations = current_context.response_annotations
        custom = self.annotations()
        if custom or extra_annotations:
            annotations = dict(annotations)
            annotations.update(custom)
            if extra_annotations:
                annotations.update(extra_annotations)
        settings = self._settings
        if serializer_id >= protocol48.PYRO4_SERIALIZER_BASE:  # a Pyro4 client's
            return protocol48.encode(msgtype, flags, seq, serializer_id, payload, annotations,
                                     current_context.correlation_bytes(), self._pyroHmacKey,
                                     settings.MAX_MESSAGE_SIZE)
        return protocol.encode(msgtype, flags, seq, serializer_id, payload, annotations,
                               current_context.correlation_bytes(), settings.COMPRESSION, settings.MAX_MESSAGE_SIZE,
                               join=False)

    def handleRequest(self, conn):
        """Receive one request on ``conn`` and answer it; errors in the call go back to the client."""
        msg = _receive(conn, self._settings.MAX_MESSAGE_SIZE, _REQUEST_TYPES)
        self._dispatch(conn, msg)

    def _dispatch(self, conn, msg):
        """Run the request in ``msg`` where it belongs and send the reply; re-raises only what must end the
        connection. A pool thread may go on serving the connection's next requests before this returns."""
        self._busy.add(conn)
        self._executing.add(conn)
        try:
            item = self._prepare(conn, msg)
            while type(item) is _Call:
                box, item = [item], None  # _run takes the call out of the box: this frame must not keep it
                item = self._run(conn, box)
            if item is not None:
                self._deliver(conn, item)
        finally:
            self._executing.discard(conn)
            self._busy.discard(conn)

    def _prepare(self, conn, msg):
        """Parse a request: a _Call to run, or the _Outcome that answers it already (a ping, a bad request)."""
        flags = msg.flags
        # kept as bytes: a uuid.UUID is made only if the method reads current_context.correlation_id
        correlation = msg.corr_id if flags & protocol.FLAGS_CORR_ID else _new_correlation_id()
        current_context.__dict__.update(_correlation=correlation, response_annotations={})
        try:
            if msg.type == protocol.MSG_PING:
                if msg.hmac_pending is not None or msg.decoded is not None:  # a large signed ping (Pyro4's):
                    self._decoded(msg)  # its signature is checked off the loop (maybe by a multiplex loop already)
                return _Outcome(self._encode(protocol.MSG_PING, 0, msg.seq, msg.serializer_id, b"pong"))
            object_id, method_name, vargs, kwargs = self._decoded(msg)  # (checks the signature, then the serializer)
            serializer = self._serializer_for(msg.serializer_id)
            target = _unpack_weakref(self.objectsById.get(object_id))
            if target is None:
                log.debug("unknown object requested: %s", object_id)
                raise errors.DaemonError("unknown object")
        except Exception as exc:
            return self._error_outcome(msg, exc, False)
        return _Call(msg, serializer, method_name, vargs, kwargs, target, correlation)

    def _decoded(self, msg):
        """The deserialized payload of a CONNECT or INVOKE message (raises what deserializing raised).

        A large or compressed payload is inflated and deserialized on a thread
        (that work cannot yield), unless a multiplex loop did so already.
        """
        if msg.decoded is None:
            if not decodes_off_loop(msg):
                return _decode(msg, self._settings.MAX_MESSAGE_SIZE, self._serializer_for)  # usual: small, here
            _execution.run_off_loop(decode_payload, msg, self._settings.MAX_MESSAGE_SIZE, self._serializer_for)
        return _execution.take_outcome(msg, "decoded")  # (msg must not keep it: a SerializedBlob refers to msg)

    def _run(self, conn, box):
        """Run the prepared call in ``box`` where the CallRunner says; returns an _Outcome, a _Call or None
        (see _dispatch)."""
        call = box.pop()
        if call.msg.flags & protocol.FLAGS_ONEWAY and self._settings.ONEWAY_THREADED:
            self._start_oneway(conn, call)
            return None
        if self._where(call) == INLINE:
            return self._execute_inline(conn, call)
        if self._calls.pool_size_error is not None:  # (a multiplex daemon, as Pyro5's, takes any THREADPOOL_SIZE)
            return self._error_outcome(call.msg, self._calls.pool_size_exception(), False)
        linger = getattr(conn, "lingers", False) and conn.serves_from_thread
        box.append(call)
        del call  # the pool thread may linger on the connection long after the call: it alone holds it
        return self._calls.call_in_thread(self._serve_on_thread, conn, box, linger)

    def _execute_inline(self, conn, call):
        if not blockwatch.active or self._calls.loop_holds_calls:
            return self._execute(conn, call)
        token = blockwatch.enter(call.label)
        try:
            return self._execute(conn, call)
        finally:
            blockwatch.leave(token)

    def _execute(self, conn, call):
        """Run a call here (in a greenlet or a pool thread); return its _Outcome, or None for a oneway call."""
        msg = call.msg
        flags = msg.flags
        context = _set_context(conn, call)
        is_callback = False
        try:
            obj = call.target
            if isinstance(obj, type):
                obj = self._get_instance(obj, conn)
            method_name, vargs = call.method_name, call.vargs
            if flags & protocol.FLAGS_BATCH:
                result = self._run_batch(obj, vargs, context)
                reply_flags = protocol.FLAGS_BATCH
            elif method_name == "__getattr__":
                result = get_exposed_property_value(obj, vargs[0])
                reply_flags = 0
            elif method_name == "__setattr__":
                result = set_exposed_property_value(obj, vargs[0], vargs[1])
                reply_flags = 0
            else:
                method = get_exposed_method(obj, method_name)
                is_callback = is_callback_method(method)
                kwargs = call.kwargs
                try:
                    result = method(*vargs, **kwargs)
                except Exception as exc:
                    self.methodcall_error_handler(self, context.client_sock_addr, method, vargs, kwargs, exc)
                    raise
                reply_flags = 0
            if flags & protocol.FLAGS_ONEWAY:
                return None
            serializer = call.serializer
            if reply_flags == 0 and _is_stream(result):
                return _Outcome(self._stream_reply(conn, msg, result, call.where))
            return _Outcome(self._encode(protocol.MSG_RESULT, reply_flags, msg.seq, msg.serializer_id,
                                         serializer.dumps(result)))
        except Exception as exc:
            return self._error_outcome(msg, exc, is_callback)

    def _deliver(self, conn, outcome):
        """Send an outcome's reply; raise its error (which ends the connection)."""
        if outcome.reply is not None:
            self._send(conn, outcome.reply)
        if outcome.error is not None:
            # raised with no reference from the frames it passes through: a cycle (error -> traceback -> the
            # caller's frame -> outcome -> error) would keep the request's message alive until a gc pass
            error, outcome.error = outcome.error, None
            try:
                raise error
            finally:
                del error

    def _error_outcome(self, msg, exc, is_callback):
        """The reply to a request that failed with ``exc`` (none for oneway calls or a lost connection)."""
        reply = None
        if not (isinstance(exc, errors.ConnectionClosedError) or msg.flags & protocol.FLAGS_ONEWAY) and (
                isinstance(exc, errors.SerializeError) or not isinstance(exc, errors.CommunicationError)):
            traceback_lines = errors.format_traceback(detailed=self._settings.DETAILED_TRACEBACK)
            reply = self._exception_reply(msg.seq, msg.serializer_id, exc, traceback_lines)
        fatal = is_callback or isinstance(exc, (errors.CommunicationError, errors.SecurityError)) \
            and not isinstance(exc, errors.SerializeError)
        return _Outcome(reply, exc if fatal else None)

    # --- a pool thread serving the connection ---

    def _serve_on_thread(self, conn, box, linger):
        """(on a pool thread) Run the call in ``box``; with ``linger``, also answer the requests that follow on
        the connection while they come quickly and no other call needs the thread. Returns what the
        connection's greenlet must still do: an _Outcome to deliver, a _Call to run itself, or None.

        The call comes in a list this thread empties, so that a lingering thread holds no finished call (nor
        its target: a weakly registered object must be free to go)."""
        call = box.pop()
        try:
            while True:
                outcome = self._execute(conn, call)
                call = None
                if not linger:
                    return outcome
                item, outcome = outcome, None
                while True:
                    if item is not None:
                        stop = self._deliver_from_thread(conn, item)
                        item = None  # sent: a lingering thread keeps no reply (it may be large)
                        if stop is not None:
                            return stop
                    self._executing.discard(conn)  # replied: lingering is not a call in progress
                    item = self._next_request_on_thread(conn)
                    if item is not None:
                        self._executing.add(conn)
                    if item is None or type(item) is _Call and not self._runs_here(item):
                        return item
                    if type(item) is _Call:
                        call = item
                        break
        finally:
            current_context.reset()  # drop references to the client and its session
            if conn in self._cut:
                # cut at shutdown while this call ran: its greenlet may never run again, so finish here
                self._cut.discard(conn)
                self._client_gone(conn)
                conn.close_from_thread()

    def _runs_here(self, call):
        """True if a call read by a pool thread also runs on a pool thread (not inline, not in the background)."""
        if call.msg.flags & protocol.FLAGS_ONEWAY and self._settings.ONEWAY_THREADED:
            return False
        return self._where(call) != INLINE

    def _where(self, call):
        """Where ``call`` runs (and remember it on the call): INLINE or THREAD.

        The items of a streamed result run where the method that made the generator ran.
        """
        where = None
        if call.method_name in _STREAM_METHODS and call.vargs and isinstance(call.target, DaemonObject):
            where = self._streams.where(call.vargs[0])
        if where is None:
            background = call.msg.flags & protocol.FLAGS_ONEWAY and self._settings.ONEWAY_THREADED
            where = self._calls.where(call.target_class, call.member_name, background)
        call.where = where
        return where

    def _deliver_from_thread(self, conn, outcome):
        """Send an outcome's reply from the pool thread; an _Outcome for the greenlet when the connection must end."""
        try:
            if outcome.reply is not None:
                conn.send_from_thread(outcome.reply)
        except errors.CommunicationError as exc:
            return _Outcome(None, exc)
        if outcome.error is not None:
            return _Outcome(None, outcome.error)
        return None

    def _next_request_on_thread(self, conn):
        """Wait (briefly, and only while nobody needs the thread) for the connection's next request.

        Returns its _Call or _Outcome, an _Outcome carrying the error that ends the connection, or None
        when the greenlet should take the connection back (nothing came, only part of a message came,
        another call needs a thread, or the daemon is shutting down).
        """
        runner = self._calls
        reader = conn.reader
        try:
            msg = reader.next_message()
            if msg is None:
                lingerer = runner.start_lingering()
                if lingerer is None:
                    return None  # a call waits for a thread: give this one back
                try:
                    idle_timeout = runner.idle_timeout
                    deadline = None if idle_timeout is None else time.monotonic() + idle_timeout
                    while msg is None:
                        if self._mustshutdown or conn.closed:
                            return None
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            raise errors.TimeoutError("receiving: timeout")  # idle past COMMTIMEOUT, as in the loop
                        if not runner.wait_readable(conn.fileno(), lingerer, remaining):
                            if lingerer.woken:
                                return None
                            continue  # the time is up: the loop above says so
                        if conn.read_from_thread():
                            msg = reader.next_message()
                            if msg is None and reader.in_message:
                                return None  # part of a message: the greenlet waits for the rest cooperatively
                finally:
                    runner.stop_lingering(lingerer, serving=msg is not None)
            protocol.check_type(msg, _REQUEST_TYPES)
        except (errors.PyroError, OSError) as exc:
            return _Outcome(None, exc)
        return self._prepare(conn, msg)

    # --- the parts of a call ---

    def _run_batch(self, obj, calls, context):
        results = []
        for method_name, vargs, kwargs in calls:
            method = get_exposed_method(obj, method_name)
            try:
                results.append(method(*vargs, **kwargs))
            except Exception as exc:
                self.methodcall_error_handler(self, context.client_sock_addr, method, vargs, kwargs, exc)
                exc._pyroTraceback = errors.format_traceback(detailed=self._settings.DETAILED_TRACEBACK)
                results.append(core._ExceptionWrapper(exc))
                break  # the rest of the batch is not run
        return results

    def _start_oneway(self, conn, call):
        """Start a oneway call in the background (greenlet or thread); the connection goes on at once."""
        where = self._where(call)
        target = call.target
        if isinstance(target, type) and check_instancing(target)[0] != "percall" \
                and self._existing_instance(target, conn) is None:
            # made here, before the next request of this client can ask for it too, where that request would
            # run (on a multiplex daemon, the loop's thread, as with Pyro5: a session's sqlite3 connection, say)
            try:
                if self._calls.where(call.target_class, call.member_name) == INLINE:
                    self._instance_for(conn, call)
                else:
                    self._calls.call_in_thread(self._instance_for, conn, call)
            except Exception as exc:
                log.warning("oneway call %s dropped: no instance of %s could be made: %r", call.label,
                            target.__name__, exc)
                return
        self._calls.start_oneway(where, self._run_oneway, (conn, call, where), call.label, conn,
                                 getattr(conn, "lingers", False))

    def _instance_for(self, conn, call):
        """Make the instance a call needs, with the call's context (its __init__ is user code)."""
        _set_context(conn, call)
        try:
            return self._get_instance(call.target, conn)
        finally:
            if _execution.in_pool_thread():
                current_context.reset()

    def _run_oneway(self, conn, call, where):
        self._oneway_clients.append(conn)
        try:
            if where == INLINE:
                self._execute_inline(conn, call)
            else:
                self._execute(conn, call)
        finally:
            self._oneway_clients.remove(conn)
            current_context.reset()

    def _stream_reply(self, conn, msg, iterator, where):
        if not self._settings.ITER_STREAMING:
            stream_id = None
        else:
            if isinstance(iterator, _DICT_VIEW_ITERATORS):
                raise errors.PyroError("won't serialize or stream lazy dict iterators, convert to list yourself")
            stream_id = self._streams.add(iterator, conn, where)
        exc = errors.ProtocolError("result of call is an iterator")
        extra = {"STRM": stream_id.encode()} if stream_id else None
        return self._exception_reply(msg.seq, msg.serializer_id, exc, None, protocol.FLAGS_ITEMSTREAMRESULT, extra)

    def _exception_reply(self, seq, serializer_id, exc, traceback_lines, flags=0, extra_annotations=None):
        exc._pyroTraceback = traceback_lines
        serializer_id, serializer = self._reply_serializer(serializer_id)
        try:
            payload = serializer.dumps(exc)
        except Exception as dump_error:
            substitute = errors.PyroError("Error serializing exception: %s. Original exception: %s: %s"
                                          % (dump_error, type(exc), exc))
            substitute._pyroTraceback = traceback_lines
            payload = serializer.dumps(substitute)
        return self._encode(protocol.MSG_RESULT, flags | protocol.FLAGS_EXCEPTION, seq, serializer_id, payload,
                            extra_annotations)

    def _existing_instance(self, clazz, conn):
        mode = check_instancing(clazz)[0]
        if mode == "session":
            return conn.pyroInstances.get(clazz)
        if mode == "single":
            return self._pyroInstances.get(clazz)
        return None

    def _getInstance(self, clazz, conn):
        """Pyro5's name for ``_get_instance``."""
        return self._get_instance(clazz, conn)

    def _get_instance(self, clazz, conn):
        """The instance of a registered class that serves this call, made as its instance mode says."""
        mode, creator = check_instancing(clazz)
        if mode == "session":
            instance = conn.pyroInstances.get(clazz)
            if instance is None:
                instance = conn.pyroInstances[clazz] = _create_instance(clazz, creator)
            return instance
        if mode == "single":
            with self._single_instance_lock:
                instance = self._pyroInstances.get(clazz)
                if instance is None:
                    instance = self._pyroInstances[clazz] = _create_instance(clazz, creator)
            return instance
        return _create_instance(clazz, creator)

    def _clientDisconnect(self, conn):
        if self._calls.uses_threads and (self._hooks_overridden("clientDisconnect") or self._streams.items
                                         or getattr(conn, "pyroInstances", None)
                                         or getattr(conn, "tracked_resources", None)):
            self._calls.call_in_thread(self._client_gone, conn)
        else:
            self._client_gone(conn)

    def _client_gone(self, conn):
        try:
            if conn in self._gone:
                return
            self._gone.add(conn)
        except TypeError:
            pass  # a connection object of the user's own that takes no weak references
        self._streams.client_gone(conn)
        self.clientDisconnect(conn)
        conn.release_session()

    def _loop_started(self):
        """A request loop starts serving this daemon in the calling thread."""
        blockwatch.watch_this_hub(self._settings.BLOCKING_WARNING)

    def _loop_ended(self):
        """That request loop ends (same thread): release what it held on this thread's hub."""
        self._calls.release_this_hub()
        blockwatch.unwatch_this_hub()

    def _in_own_call(self):
        """True when the caller is a call this daemon is serving, oneway ones too (so waiting for its loop
        would deadlock)."""
        client = current_context.client
        return client is not None and (client in self._executing or client in self._oneway_clients)

    def _housekeeping(self):
        if self._mustshutdown:
            return
        if self._calls.uses_threads and (self._streams.items or self._hooks_overridden("housekeeping")):
            self._calls.call_in_thread(self._housekeep)
        else:
            self._housekeep()

    def _housekeep(self):
        self._streams.expire()
        self.housekeeping()


def _known_serializer_id(serializer_id):
    """``serializer_id`` if geopyro has that serializer, else serpent's (of the client's protocol)."""
    try:
        serializers.get_serializer_by_id(serializer_id)
        return serializer_id
    except errors.SerializeError:
        if protocol48.is_pyro4_serializer(serializer_id):
            return serializers.get_pyro4_serializer("serpent").serializer_id
        return serializers.SerpentSerializer.serializer_id


def _set_context(conn, call):
    """Fill current_context for ``call`` (in the greenlet or pool thread about to run user code for it)."""
    msg = call.msg
    context = current_context
    # one update of this greenlet's dict: each attribute set on a gevent local looks the greenlet up again
    context.__dict__.update(_correlation=call.correlation, response_annotations={}, client=conn,
                            client_sock_addr=_peer_address(conn), seq=msg.seq, annotations=msg.annotations,
                            msg_flags=msg.flags, serializer_id=msg.serializer_id)
    return context


class _Call:
    """A parsed request, ready to run wherever the CallRunner puts it."""

    __slots__ = ("msg", "serializer", "method_name", "vargs", "kwargs", "target", "correlation", "where")

    def __init__(self, msg, serializer, method_name, vargs, kwargs, target, correlation):
        self.where = None  # INLINE or THREAD once decided
        self.msg = msg
        self.serializer = serializer
        self.method_name = method_name
        self.vargs = vargs
        self.kwargs = kwargs
        self.target = target
        self.correlation = correlation

    @property
    def target_class(self):
        target = self.target
        return target if isinstance(target, type) else type(target)

    @property
    def member_name(self):
        """The method, or for remote attribute access the attribute, whose execution mark counts."""
        if self.method_name in ("__getattr__", "__setattr__") and self.vargs:
            return self.vargs[0]
        return self.method_name

    @property
    def label(self):
        return "%s.%s" % (self.target_class.__name__, self.member_name)


class _Outcome:
    """What is left to do for a request: send ``reply`` (encoded, or None), then raise ``error`` (or None)."""

    __slots__ = ("reply", "error")

    def __init__(self, reply, error=None):
        self.reply = reply
        self.error = error


_REQUEST_TYPES = (protocol.MSG_INVOKE, protocol.MSG_PING)
OFF_LOOP_BYTES = 64 * 1024  # payloads from this size are deserialized on a thread (see Daemon._decoded)
_STREAM_METHODS = frozenset(("get_next_stream_item", "close_stream"))


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def _new_correlation_id():
    """The 16 bytes of a random version-4 UUID, for a request that came without a correlation id.

    It labels a call in logs, it guards nothing, so Python's PRNG will do: no syscall per request,
    unlike uuid.uuid4(), and no UUID object unless someone reads it.
    """
    return ((random.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET).to_bytes(16, "big")


_running_daemons = weakref.WeakSet()


@atexit.register
def _stop_running_daemons():
    """End request loops still running in other threads before the interpreter tears gevent down.

    A gevent hub left running in a daemon thread at exit can crash the interpreter.
    """
    for daemon in list(_running_daemons):
        try:
            daemon.shutdown()
        except Exception:
            log.debug("error stopping a daemon at exit", exc_info=True)


_NEVER_STREAMS = frozenset((int, float, str, bytes, bool, type(None), tuple, list, dict, set))


def _is_stream(result):
    return result.__class__ not in _NEVER_STREAMS and isinstance(result, collections.abc.Iterator)


def _create_instance(clazz, creator):
    log.debug("creating an instance of %s", clazz.__name__)
    try:
        if creator:
            instance = creator(clazz)
            if not isinstance(instance, clazz):
                raise TypeError("instance creator returned object of different type")
            return instance
        return clazz()
    except Exception as exc:
        log.warning("could not create an instance of %s: %r", clazz.__name__, exc)
        raise


def decodes_off_loop(msg):
    """True when deserializing ``msg`` is work to do on a thread: a large or still compressed payload, or a
    signature still to check (see protocol48.MessageReader48)."""
    return msg.decoded is None and (msg.type != protocol.MSG_PING or msg.hmac_pending is not None) and (
        len(msg.data) >= OFF_LOOP_BYTES or msg.flags & protocol.FLAGS_COMPRESSED or msg.hmac_pending is not None)


def _decode(msg, max_size, serializer_for):
    """Check, inflate and deserialize a CONNECT or INVOKE payload; return it (or raise what deserializing
    raised). A PING is only checked."""
    if msg.hmac_pending is not None:
        protocol48.verify(msg)
    if msg.type == protocol.MSG_PING:
        return None
    serializer = serializer_for(msg.serializer_id)  # (refuses what the daemon does not accept, before anything)
    protocol.inflate(msg, max_size)
    if msg.type == protocol.MSG_CONNECT:
        return serializer.loads(msg.data)
    if msg.flags & protocol.FLAGS_KEEPSERIALIZED:
        return _blob_call(msg)
    return serializer.loadsCall(msg.data)


def decode_payload(msg, max_size, serializer_for):
    """``_decode`` where the outcome must travel (from a thread, or from a multiplex loop to the call):
    it goes to ``msg.decoded`` as (ok, value). ``serializer_for``: the daemon's lookup (Daemon._serializer_for)."""
    try:
        msg.decoded = (True, _decode(msg, max_size, serializer_for))
    except Exception as exc:
        exc.__context__ = None  # (its frames, and its context's, refer to msg and to what was inflated)
        msg.decoded = (False, exc.with_traceback(None))


def _blob_call(msg):
    import marshal
    try:
        info = bytes(msg.annotations["BLBI"])
        serializers.check_marshal_sizes(info)  # a size that lies would make marshal allocate it first
        info, object_id, method = marshal.loads(info)
    except Exception as exc:
        raise errors.SerializeError("invalid SerializedBlob info annotation: %s" % exc) from None
    return object_id, method, (SerializedBlob(info, msg, is_blob=True),), {}


def _autoproxy(obj):
    daemon = getattr(obj, "_pyroDaemon", None)
    if daemon is not None and not inspect.isclass(obj):
        try:
            return daemon.proxyFor(obj)
        except (errors.DaemonError, ReferenceError):  # not registered (any more), or its daemon is gone
            return obj
    return obj


serializers.register_wire_class(Daemon, "Pyro5.server.Daemon")


# --- Pyro5's private helpers, under its names, for code (and Pyro5's tests) that use them -----------------------

_pyro_obj_to_auto_proxy = _autoproxy


def _get_attribute(obj, attr):
    """An exposed member of ``obj`` by name; AttributeError for private, dotted or unexposed names."""
    if not isinstance(attr, str) or is_private_attribute(attr):
        raise AttributeError("attempt to access private attribute '%s'" % (attr,))
    member = getattr(obj, attr)
    if getattr(member, "_pyroExposed", False):
        return member
    raise AttributeError("attempt to access unexposed attribute '%s'" % attr)


def _get_exposed_members(obj, only_exposed=True):
    """{"methods", "oneway", "attrs"} of an object or class; ``only_exposed=False``: every public member."""
    if only_exposed:
        return get_exposed_members(obj)
    clazz = obj if inspect.isclass(obj) else type(obj)
    methods, oneways, attrs = set(), set(), set()
    for name in dir(clazz):
        if is_private_attribute(name):
            continue
        member = getattr(clazz, name, None)
        if inspect.ismethod(member) or inspect.isfunction(member) or inspect.ismethoddescriptor(member):
            methods.add(name)
            if getattr(member, "_pyroOneway", False):
                oneways.add(name)
        elif inspect.isdatadescriptor(member):
            attrs.add(name)
    return {"methods": methods, "oneway": oneways, "attrs": attrs}


def _public_property(obj, propname):
    if not isinstance(propname, str) or is_private_attribute(propname):
        raise AttributeError("attempt to access private attribute '%s'" % (propname,))
    prop = getattr(type(obj), propname, None)
    if not isinstance(prop, property):
        raise AttributeError("attempt to access unexposed or unknown remote attribute '%s'" % propname)
    return prop


def _get_exposed_property_value(obj, propname, only_exposed=True):
    """The value of an exposed property (of any public property with ``only_exposed=False``)."""
    if only_exposed:
        return get_exposed_property_value(obj, propname)
    return _public_property(obj, propname).__get__(obj)


def _set_exposed_property_value(obj, propname, value, only_exposed=True):
    """Set an exposed property (any public property with ``only_exposed=False``) that has a setter."""
    if only_exposed:
        return set_exposed_property_value(obj, propname, value)
    return _public_property(obj, propname).__set__(obj, value)


def serve(objects, host=None, port=0, daemon=None, use_ns=True, verbose=True, workers=None):
    """Publish a dict of {object or class: name or None} and run the request loop.

    With ``use_ns`` the names are registered in the name server (None names
    stay out of it); without, the names become the object ids in the daemon.
    ``workers`` (geopyro only): serve in that many processes forked from this
    one, sharing the port (0: one per core); see geopyro.workers.
    """
    if workers is not None:
        if daemon is not None:
            raise errors.PyroError("serve(): give workers or a daemon, not both (each worker makes its own)")
        from . import workers as _workers
        return _workers.serve_forked(objects, host, port, use_ns, verbose, workers)
    if daemon is None:
        daemon = Daemon(host, port)
    with daemon:
        ns = core.locate_ns() if use_ns else None
        for obj, name in objects.items():
            uri = daemon.register(obj, None if ns else name)
            if verbose:
                print("Object {0}:\n    uri = {1}".format(repr(obj), uri))
            if name and ns:
                ns.register(name, uri)
                if verbose:
                    print("    name = {0}".format(name))
        if verbose:
            print("Pyro daemon running.")
        daemon.requestLoop()
