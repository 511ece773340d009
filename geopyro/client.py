"""The client side: Proxy, BatchProxy, streamed results, SerializedBlob and async futures.

A Proxy connects lazily on first use, does the CONNECT handshake (which also
brings the object's metadata: methods, oneway methods, attributes) and then
sends INVOKE messages. It is owned by the greenlet that made it; another
greenlet or thread must call ``_pyroClaimOwnership()`` first, as in Pyro5.
A proxy that arrived deserialized (or was copied) belongs to whoever uses it first.

A proxy follows the program it is used in (``geopyro.program``): from plain
code in an unpatched program it uses a plain blocking socket, as Pyro5's
client does; from a greenlet, a patched program, or a thread whose hub serves
a daemon, it waits cooperatively through the gevent hub. The choice is made
per call, so a proxy can move between the two.
"""

import concurrent.futures
import contextlib
import logging
import marshal
import sys
import threading

import gevent
import gevent.event
import gevent.lock
import gevent.monkey
from greenlet import getcurrent

from . import config, core, errors, program, protocol, protocol48, serializers, socketutil
from .callcontext import current_context

__all__ = ["Proxy", "BatchProxy", "SerializedBlob", "Future"]

log = logging.getLogger("geopyro.client")


_PICKLE_FAMILY = ("pickle", "dill", "cloudpickle")  # (geopyro.pickles: only for Pyro4 servers, only if chosen here)


class Proxy:
    """A stand-in for a remote object: attribute access and calls go over the wire.

    ``Proxy(uri)`` with a PYRO, PYRONAME or PYROMETA uri (str or URI), or
    ``Proxy(object_id, connected_socket=sock)`` over an already-connected socket.
    """

    _pyro_attribute_names = frozenset([
        "__getnewargs__", "__getnewargs_ex__", "__getinitargs__", "_pyroConnection", "_pyroUri",
        "_pyroOneway", "_pyroMethods", "_pyroAttrs", "_pyroTimeout", "_pyroSeq", "_pyroLocalSocket",
        "_pyroRawWireResponse", "_pyroHandshake", "_pyroMaxRetries", "_pyroSerializer", "_pyroAsyncMode",
        "_Proxy__timeout", "_Proxy__owner", "_Proxy__lock", "_Proxy__borrower", "_pyroProtocol", "_pyroHmacKey",
        "_Proxy__hmac_key",
    ])

    def __init__(self, uri, connected_socket=None):
        if connected_socket is not None:
            uri = core.URI("PYRO:%s@<<connected-socket>>:0" % uri)
        if isinstance(uri, str):
            uri = core.URI(uri)
        elif not isinstance(uri, core.URI):
            if type(uri).__name__ != "URI" or not hasattr(uri, "protocol"):
                raise TypeError("expected a Pyro URI (str or URI), not %s" % type(uri).__name__)
            uri = core.URI(str(uri))  # another Pyro's URI object (Pyro5's, in a program that uses both)
        self._pyroUri = uri
        self._pyroConnection = None
        self._pyroSerializer = None
        self._pyroMethods = set()
        self._pyroAttrs = set()
        self._pyroOneway = set()
        self._pyroSeq = 0
        self._pyroRawWireResponse = False
        self._pyroHandshake = "hello"
        self._pyroMaxRetries = config.MAX_RETRIES
        self._pyroLocalSocket = None
        self._pyroAsyncMode = False
        self._pyroProtocol = None  # 48 to talk to a Pyro4 server; None: config.CLIENT_PROTOCOL
        self._pyroHmacKey = None  # (protocol 48) the key to sign messages with, as the Pyro4 server requires
        self.__timeout = config.COMMTIMEOUT or None
        self.__owner = getcurrent()
        self.__borrower = None  # a greenlet or thread running a call on the owner's behalf (see _pyroLease)
        self.__lock = gevent.lock.Semaphore()  # one call at a time (not reentrant: see _pyroInvoke)
        current_context.response_annotations = {}
        if config.SERIALIZER not in serializers.serializers and not (
                config.SERIALIZER in _PICKLE_FAMILY and "geopyro.compatibility.Pyro4" in sys.modules):
            # (pickle's family are names only where Pyro4's API is in use: its config may name them, and the
            # proxies the daemon or the name server lookups make must work then; a Pyro5 program gets Pyro5's error)
            raise ValueError("unknown serializer configured: %r (config.SERIALIZER; known: %s)"
                             % (config.SERIALIZER, ", ".join(sorted(serializers.serializers))))
        if connected_socket is not None:
            self.__connect(False, socketutil.to_gevent_socket(connected_socket))

    # --- attribute access becomes remote access ---

    def __getattr__(self, name):
        if name in Proxy._pyro_attribute_names:
            raise AttributeError(name)
        if not self._pyroMethods and not self._pyroAttrs:
            self._pyroGetMetadata()
        if name in self._pyroAttrs:
            return self._pyroInvoke("__getattr__", (name,), None)
        if name not in self._pyroMethods:
            raise AttributeError("remote object '%s' has no exposed attribute or method '%s'" % (self._pyroUri, name))
        if self._pyroAsyncMode:
            return _AsyncRemoteMethod(self, name, self._pyroMaxRetries)
        return _RemoteMethod(self._pyroInvoke, name, self._pyroMaxRetries)

    def __setattr__(self, name, value):
        if name in Proxy._pyro_attribute_names:
            return object.__setattr__(self, name, value)
        if not self._pyroMethods and not self._pyroAttrs:
            self._pyroGetMetadata()
        if name in self._pyroAttrs:
            return self._pyroInvoke("__setattr__", (name, value), None)
        raise AttributeError("remote object '%s' has no exposed attribute '%s'" % (self._pyroUri, name))

    def __repr__(self):
        state = ("connected " + self._pyroConnection.family()) if self._pyroConnection else "not connected"
        return "<%s.%s at 0x%x; %s; for %s>" % (type(self).__module__, type(self).__name__, id(self), state,
                                                self._pyroUri)

    def __dir__(self):
        names = set(dir(type(self))) | set(self.__dict__)
        return sorted(names | self._pyroMethods | self._pyroAttrs)

    # special methods are looked up on the type, so forward the common ones explicitly
    def __bool__(self):
        return True

    def __len__(self):
        return self.__getattr__("__len__")()

    def __getitem__(self, index):
        return self.__getattr__("__getitem__")(index)

    def __setitem__(self, index, value):
        return self.__getattr__("__setitem__")(index, value)

    def __delitem__(self, index):
        return self.__getattr__("__delitem__")(index)

    def __contains__(self, item):
        return self.__getattr__("__contains__")(item)

    def __iter__(self):
        try:
            iterator = self.__getattr__("__iter__")()
        except AttributeError:
            return _indexed_iteration(self)
        return iter(iterator)

    # --- copying, pickling-free serialization, context manager ---

    def __getstate__(self):
        return (str(self._pyroUri), tuple(self._pyroOneway), tuple(self._pyroMethods), tuple(self._pyroAttrs),
                self._pyroHandshake, self._pyroSerializer)

    def __setstate__(self, state):
        uri, oneway, methods, attrs, handshake, serializer = state
        self._pyroUri = core.URI(uri)
        self._pyroOneway = set(oneway)
        self._pyroMethods = set(methods)
        self._pyroAttrs = set(attrs)
        self._pyroHandshake = handshake
        # a proxy that came from a peer never pickles for it: only this side may choose pickle (or dill, ...)
        self._pyroSerializer = None if serializer in _PICKLE_FAMILY else serializer
        self.__timeout = config.COMMTIMEOUT or None
        self._pyroMaxRetries = config.MAX_RETRIES
        self._pyroConnection = None
        self._pyroLocalSocket = None
        self._pyroSeq = 0
        self._pyroRawWireResponse = False
        self._pyroAsyncMode = False
        self._pyroProtocol = None
        self._pyroHmacKey = None
        self.__owner = None  # a deserialized or copied proxy belongs to whoever uses it first
        self.__borrower = None
        self.__lock = gevent.lock.Semaphore()

    def __copy__(self):
        other = object.__new__(type(self))
        other.__setstate__(self.__getstate__())
        other._pyroSerializer = self._pyroSerializer
        other._pyroTimeout = self._pyroTimeout
        other._pyroRawWireResponse = self._pyroRawWireResponse
        other._pyroMaxRetries = self._pyroMaxRetries
        other._pyroAsyncMode = self._pyroAsyncMode
        other._pyroProtocol = self._pyroProtocol
        other._pyroHmacKey = self._pyroHmacKey
        return other

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self._pyroRelease()

    def __eq__(self, other):
        return other is self or (isinstance(other, Proxy) and other._pyroUri == self._pyroUri)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._pyroUri)

    def __del__(self):
        connection = self.__dict__.get("_pyroConnection")
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    # --- the Pyro API of a proxy ---

    def _pyroRelease(self):
        """Close the connection to the daemon; the next call reconnects."""
        self.__check_owner()
        if self._pyroConnection is not None:
            self._pyroConnection.close()
            self._pyroConnection = None
            self._pyroLocalSocket = None
            log.debug("connection released: %s", self._pyroUri)

    def _pyroBind(self):
        """Connect now, and replace a PYRONAME/PYROMETA uri by the PYRO uri it resolved to."""
        return self.__connect(True)

    def _pyroReconnect(self, tries=100000000):
        """Release the connection and try to connect again, up to ``tries`` times (2 s apart)."""
        self._pyroRelease()
        while tries:
            try:
                self.__connect(False)
                return
            except errors.CommunicationError:
                tries -= 1
                if tries:
                    program.sleep(2)
        log.error("failed to reconnect to %s", self._pyroUri)
        raise errors.ConnectionClosedError("failed to reconnect to %s" % self._pyroUri)

    def _pyroValidateHandshake(self, response):
        """Override to check the daemon's handshake response; raise to refuse the connection."""

    def _pyroClaimOwnership(self):
        """Let the current greenlet or thread use this proxy (the connection stays open)."""
        self.__owner = getcurrent()

    def _pyroLease(self):
        """(called by the owner) A context manager that lends this proxy to another greenlet or thread for a
        call on the owner's behalf: async futures and batches run their call in a greenlet or thread of their
        own. The call lock is held meanwhile; the owner stays the owner."""
        self.__check_owner()
        return _Lease(self)

    def _pyroLend(self):
        """(used by _Lease) Take the call lock and let the current greenlet use the proxy beside its owner."""
        self.__lock.acquire()
        previous, self.__borrower = self.__borrower, getcurrent()
        return previous

    def _pyroGiveBack(self, previous):
        self.__borrower = previous
        self.__lock.release()

    def _pyroGetMetadata(self, objectId=None, known_metadata=None):
        """Fetch (or set) the object's metadata: exposed methods, oneway methods and attributes."""
        objectId = objectId or self._pyroUri.object
        if known_metadata is not None:
            self.__process_metadata(known_metadata)
            return
        if self._pyroConnection is None:
            self.__connect(False)
            if self._pyroMethods or self._pyroAttrs:
                return  # the handshake brought the metadata
        self.__process_metadata(self._pyroInvoke("get_metadata", [objectId], {}, objectId=core.DAEMON_NAME))

    def _pyroBatch(self):
        """A BatchProxy that queues calls and sends them in one message."""
        return BatchProxy(self)

    def _pyroAsync(self, asynchronous=True):
        """Switch this proxy to asynchronous calls that return a Future (or back to normal calls)."""
        self._pyroAsyncMode = bool(asynchronous)

    def _pyroAnnotations(self):
        """Override to add annotations to every request (or set current_context.annotations)."""
        return {}

    def _pyroResponseAnnotations(self, annotations, msgtype):
        """Override to inspect the annotations of every response."""

    def _pyroInvokeBatch(self, calls, oneway=False):
        flags = protocol.FLAGS_BATCH | (protocol.FLAGS_ONEWAY if oneway else 0)
        return self._pyroInvoke("<batch>", calls, None, flags)

    @property
    def _pyroHmacKey(self):
        """(Pyro4's name; protocol 48 only) The key this proxy signs its messages with (bytes, or None)."""
        return self.__hmac_key

    @_pyroHmacKey.setter
    def _pyroHmacKey(self, value):
        self.__hmac_key = value.encode("utf-8") if isinstance(value, str) else value

    @property
    def _pyroTimeout(self):
        """Seconds a call may take before TimeoutError (None: no limit)."""
        return self.__timeout

    @_pyroTimeout.setter
    def _pyroTimeout(self, timeout):
        self.__timeout = timeout
        if self._pyroConnection is not None:
            self._pyroConnection.timeout = timeout

    # --- the conversation ---

    def _pyroInvoke(self, methodname, vargs, kwargs, flags=0, objectId=None):
        """Send one INVOKE and (unless oneway) wait for and return its result."""
        if getcurrent() is self.__borrower:
            return self.__invoke(methodname, vargs, kwargs, flags, objectId)  # its lease holds the lock
        self.__check_owner()
        with self.__lock:  # a lease's call, or a misused proxy, must not interleave with this one
            return self.__invoke(methodname, vargs, kwargs, flags, objectId)

    def __invoke(self, methodname, vargs, kwargs, flags, objectId):
        current_context.response_annotations = {}
        pyro4 = self.__speaks_pyro4()
        serializer = self.__serializer(pyro4)
        if self._pyroConnection is None:
            self.__connect(False)
        else:
            self._pyroConnection.follow(program.client_cooperates())
        objectId = objectId or self._pyroConnection.objectId
        annotations = self.__request_annotations()
        if vargs and isinstance(vargs[0], SerializedBlob):
            annotations = dict(annotations)
            data, flags = _serialize_blob_call(vargs, kwargs, annotations, flags, objectId, methodname, serializer)
        else:
            data = serializer.dumpsCall(objectId, methodname, vargs, kwargs or {})
        if methodname in self._pyroOneway:
            flags |= protocol.FLAGS_ONEWAY
        self._pyroSeq = (self._pyroSeq + 1) & 0xFFFF
        message = self.__encode(pyro4, protocol.MSG_INVOKE, flags, serializer.serializer_id, data, annotations)
        connection = self._pyroConnection
        try:
            connection.send(message)
            del message, data
            if flags & protocol.FLAGS_ONEWAY:
                return None
            msg = connection.recv_message(config.MAX_MESSAGE_SIZE, (protocol.MSG_RESULT,))
        except BaseException:
            # whatever interrupted us (a lost connection, a timeout, Ctrl-C, a killed greenlet), the reply of
            # this request may still come: the stream is out of step, and a fresh connection is the only way on
            self._pyroRelease()
            raise
        if msg.seq != self._pyroSeq:
            self._pyroRelease()
            raise errors.ProtocolError("invoke: reply sequence out of sync, got %d expected %d"
                                       % (msg.seq, self._pyroSeq))
        if msg.serializer_id != serializer.serializer_id:
            self._pyroRelease()
            raise errors.SerializeError("invalid serializer in response: %d" % msg.serializer_id)
        if msg.annotations:
            current_context.response_annotations = msg.annotations
            self._pyroResponseAnnotations(msg.annotations, msg.type)
        if self._pyroRawWireResponse:
            return msg
        result = serializer.loads(msg.data)
        if msg.flags & protocol.FLAGS_ITEMSTREAMRESULT:
            stream_id = bytes(msg.annotations.get("STRM", b"")).decode()
            if not stream_id:
                raise errors.ProtocolError("result of call is an iterator, but the server is not configured "
                                           "to allow streaming")
            return _StreamResultIterator(stream_id, self)
        if msg.flags & protocol.FLAGS_EXCEPTION:
            if not isinstance(result, BaseException):
                raise errors.ProtocolError("server sent an exception response that is not an exception: %r"
                                           % (result,))
            try:
                raise result  # the remote traceback is in result._pyroTraceback
            finally:
                del result
        return result

    def __speaks_pyro4(self):
        """True when this proxy talks to a Pyro4 server (protocol 48)."""
        version = self._pyroProtocol or config.CLIENT_PROTOCOL
        if version not in (protocol.PROTOCOL_VERSION, protocol48.PROTOCOL_VERSION):
            raise errors.PyroError("unknown protocol version %r (502 for Pyro5 servers, 48 for Pyro4's)" % (version,))
        return version == protocol48.PROTOCOL_VERSION

    def __serializer(self, pyro4):
        name = self._pyroSerializer or config.SERIALIZER
        return serializers.get_pyro4_serializer(name) if pyro4 else serializers.get_serializer(name)

    def __encode(self, pyro4, msgtype, flags, serializer_id, data, annotations):
        if pyro4:
            return protocol48.encode(msgtype, flags, self._pyroSeq, serializer_id, data, annotations,
                                     current_context.correlation_bytes(), self._pyroHmacKey, config.MAX_MESSAGE_SIZE)
        return protocol.encode(msgtype, flags, self._pyroSeq, serializer_id, data, annotations,
                               current_context.correlation_bytes(), config.COMPRESSION, config.MAX_MESSAGE_SIZE,
                               join=False)

    def __request_annotations(self):
        annotations = current_context.annotations
        extra = self._pyroAnnotations()
        if extra:
            annotations = dict(annotations, **extra)
        return annotations

    def __connect(self, replace_uri, connected_socket=None):
        """Connect and handshake unless connected; return True if a new connection was made."""
        self.__check_owner()
        if self._pyroConnection is not None:
            return False
        if connected_socket is not None:
            uri = self._pyroUri
            self._pyroConnection = socketutil.SocketConnection(connected_socket, uri.object, keep_open=True)
            self._pyroLocalSocket = connected_socket.getsockname()
        else:
            uri = core.resolve(self._pyroUri, protocol=self._pyroProtocol, hmac_key=self._pyroHmacKey)
            self.__handshake(uri, replace_uri)
        if not self._pyroMethods and not self._pyroAttrs:
            # (not through _pyroGetMetadata: this may run inside a call that holds the lock)
            self.__process_metadata(self.__invoke("get_metadata", [uri.object], {}, 0, core.DAEMON_NAME))
        return True

    def __handshake(self, uri, replace_uri):
        location = uri.sockname or (uri.host, uri.port)
        cooperative = program.client_cooperates()
        context = None
        if config.SSL:
            context = socketutil.get_ssl_context(clientcert=config.SSL_CLIENTCERT, clientkey=config.SSL_CLIENTKEY,
                                                 keypassword=config.SSL_CLIENTKEYPASSWD,
                                                 cacerts=config.SSL_CACERTS, cooperative=cooperative)
        connection = None
        try:
            sock = socketutil.create_socket(connect=location, reuseaddr=config.SOCK_REUSE, timeout=self.__timeout,
                                            nodelay=config.SOCK_NODELAY, sslContext=context, cooperative=cooperative)
            connection = socketutil.SocketConnection(sock, uri.object)
            pyro4 = self.__speaks_pyro4()
            if pyro4:
                connection.talk_to_pyro4(config.MAX_MESSAGE_SIZE, self._pyroHmacKey)
            serializer = self.__serializer(pyro4)
            payload = serializer.dumps({"handshake": self._pyroHandshake, "object": uri.object})
            flags = protocol48.FLAGS_META_ON_CONNECT if pyro4 else 0  # (502 servers always send the metadata)
            connection.send(self.__encode(pyro4, protocol.MSG_CONNECT, flags, serializer.serializer_id, payload,
                                          self.__request_annotations()))
            msg = connection.recv_message(config.MAX_MESSAGE_SIZE, (protocol.MSG_CONNECTOK, protocol.MSG_CONNECTFAIL))
        except Exception as exc:
            if connection is not None:
                connection.close()
            log.debug("cannot connect to %s: %s", location, exc)
            if context is not None and isinstance(exc, errors.ConnectionClosedError):
                # with TLS 1.3 a refused client certificate shows up only as the server hanging up
                raise errors.ConnectionClosedError(
                    "cannot connect to %s: the server closed the TLS connection during the handshake; it may not "
                    "accept this client's certificate (check SSL_CLIENTCERT, SSL_CLIENTKEY, SSL_CACERTS): %s"
                    % (_location_str(location), exc)) from exc
            if isinstance(exc, errors.CommunicationError):
                raise
            raise errors.CommunicationError("cannot connect to %s: %s" % (location, exc)) from exc
        response = "?"
        if msg.data:
            try:
                reader = serializer if msg.serializer_id == serializer.serializer_id else \
                    serializers.get_serializer_by_id(msg.serializer_id)  # (never a pickle it did not ask for)
                response = reader.loads(msg.data)
            except errors.PyroError:
                connection.close()
                raise
        if msg.type == protocol.MSG_CONNECTFAIL:
            connection.close()
            raise errors.CommunicationError("connection to %s rejected: %s" % (_location_str(location), response))
        try:
            if pyro4 and not msg.flags & protocol48.FLAGS_META_ON_CONNECT:
                handshake_response = response  # a Pyro4 server that sends no metadata: it is asked for below
            else:
                self.__process_metadata(response["meta"])
                handshake_response = response["handshake"]
        except (TypeError, KeyError, errors.PyroError):
            connection.close()
            raise
        self._pyroConnection = connection
        self._pyroLocalSocket = connection.sock.getsockname()
        if replace_uri:
            self._pyroUri = uri
        if msg.annotations:
            current_context.response_annotations = msg.annotations
            self._pyroResponseAnnotations(msg.annotations, msg.type)
        try:
            self._pyroValidateHandshake(handshake_response)
        except Exception:
            self._pyroRelease()
            raise
        log.debug("connected to %s (%s)", self._pyroUri, "TLS" if context else "plain")

    def __process_metadata(self, metadata):
        if not metadata:
            return
        self._pyroOneway = set(metadata["oneway"])
        self._pyroMethods = set(metadata["methods"])
        self._pyroAttrs = set(metadata["attrs"])
        if not self._pyroMethods and not self._pyroAttrs:
            raise errors.PyroError("remote object '%s' doesn't expose any methods or attributes. "
                                   "Did you forget setting @expose on them?" % self._pyroUri)

    def __check_owner(self):
        current = getcurrent()
        if current is self.__owner or current is self.__borrower:
            return
        if self.__owner is None:
            self.__owner = current
            return
        raise errors.PyroError("the calling thread is not the owner of this proxy, create a new proxy in this "
                               "thread or transfer ownership.")


class _Lease:
    """A proxy lent for one call (see Proxy._pyroLease); usable from any greenlet or thread."""

    __slots__ = ("proxy", "previous")

    def __init__(self, proxy):
        self.proxy = proxy
        self.previous = None

    def __enter__(self):
        self.previous = self.proxy._pyroLend()
        return self.proxy

    def __exit__(self, *exc_info):
        self.proxy._pyroGiveBack(self.previous)


def _location_str(location):
    return location if isinstance(location, str) else "%s:%s" % location[:2]


def _indexed_iteration(proxy):
    index = 0
    while True:
        try:
            yield proxy[index]
        except (StopIteration, IndexError):
            return
        index += 1


class _RemoteMethod:
    """A remote method, bound to a proxy; calling it retries on lost connections as MAX_RETRIES says."""

    __slots__ = ("_send", "_name", "_retries")

    def __init__(self, send, name, max_retries):
        self._send = send
        self._name = name
        self._retries = max_retries

    def __getattr__(self, name):
        return _RemoteMethod(self._send, "%s.%s" % (self._name, name), self._retries)

    def __call__(self, *args, **kwargs):
        for attempt in range(self._retries + 1):
            try:
                return self._send(self._name, args, kwargs)
            except (errors.ConnectionClosedError, errors.TimeoutError):
                if attempt >= self._retries:
                    raise


class _StreamResultIterator:
    """The client end of a remote iterator or generator: items are fetched one call at a time."""

    def __init__(self, stream_id, proxy):
        self.streamId = stream_id
        self.proxy = proxy
        self.pyroseq = proxy._pyroSeq

    def __iter__(self):
        return self

    def __next__(self):
        if self.proxy is None:
            raise StopIteration
        if self.proxy._pyroConnection is None:
            raise errors.ConnectionClosedError("the proxy for this stream result has been closed")
        self.pyroseq += 1
        try:
            return self.proxy._pyroInvoke("get_next_stream_item", [self.streamId], {}, objectId=core.DAEMON_NAME)
        except (StopIteration, GeneratorExit):
            self.proxy = None  # the server already dropped its end
            raise

    def close(self):
        """Tell the server to drop the stream (done automatically when this iterator is collected)."""
        proxy, self.proxy = self.proxy, None
        if proxy is None or proxy._pyroConnection is None:
            return
        if self.pyroseq == proxy._pyroSeq:
            proxy._pyroInvoke("close_stream", [self.streamId], {}, flags=protocol.FLAGS_ONEWAY,
                              objectId=core.DAEMON_NAME)
        else:
            with contextlib.suppress(errors.CommunicationError), proxy.__copy__() as closer:
                closer._pyroInvoke("close_stream", [self.streamId], {}, flags=protocol.FLAGS_ONEWAY,
                                   objectId=core.DAEMON_NAME)

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()


class _BatchedRemoteMethod:
    __slots__ = ("_calls", "_name")

    def __init__(self, calls, name):
        self._calls = calls
        self._name = name

    def __getattr__(self, name):
        return _BatchedRemoteMethod(self._calls, "%s.%s" % (self._name, name))

    def __call__(self, *args, **kwargs):
        self._calls.append((self._name, args, kwargs))


class BatchProxy:
    """Queues calls on a proxy and sends them all in one message when called.

    Calling it returns a generator over the results in order (a remote
    exception is raised when its turn comes); ``oneway=True`` returns nothing;
    ``asynchronous=True`` returns a Future of that generator.
    """

    def __init__(self, proxy):
        self.__proxy = proxy
        self.__calls = []

    def __getattr__(self, name):
        return _BatchedRemoteMethod(self.__calls, name)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def __copy__(self):
        other = type(self)(self.__proxy)
        other.__calls = list(self.__calls)
        return other

    @staticmethod
    def __results(results):
        for result in results:
            if isinstance(result, core._ExceptionWrapper):
                result.raiseIt()
            else:
                yield result

    def __call__(self, oneway=False, asynchronous=False):
        calls, self.__calls = self.__calls, []
        proxy = self.__proxy
        if asynchronous:
            return Future(self.__leased_batch, proxy._pyroLease(), calls, oneway)
        proxy._pyroClaimOwnership()
        results = proxy._pyroInvokeBatch(calls, oneway)
        if not oneway:
            return self.__results(results)

    def __leased_batch(self, lease, calls, oneway):
        with lease as proxy:
            results = proxy._pyroInvokeBatch(calls, oneway)
        if not oneway:
            return self.__results(results)

    def _pyroInvoke(self, name, args, kwargs):
        calls, self.__calls = self.__calls, []
        return self.__results(self.__proxy._pyroInvokeBatch(calls))


class Future:
    """The result of an asynchronous call, computed in the background.

    ``value`` waits for and returns the result (or raises the remote error),
    ``ready`` says whether it is there, ``wait(timeout)`` waits and says,
    ``then(fn)`` returns a new Future of ``fn(value)``. Like a proxy, it follows
    the program: made where the caller cooperates with gevent, it runs in a
    greenlet; made from plain code, it runs on a thread of its own (a daemon
    thread: it never keeps the program from exiting), so the call goes on
    while the caller keeps working, as Pyro4's async calls did.
    """

    def __init__(self, func, *args, **kwargs):
        if program.client_cooperates():
            self._result = gevent.event.AsyncResult()
            self._thread_result = None
            gevent.spawn(self._run, func, args, kwargs)
        else:
            self._result = None
            self._thread_result = concurrent.futures.Future()
            threading.Thread(target=self._run_on_thread, args=(func, args, kwargs), daemon=True,
                             name="geopyro-future").start()

    def _run_on_thread(self, func, args, kwargs):
        result = self._thread_result
        if not result.set_running_or_notify_cancel():
            return
        try:
            result.set_result(func(*args, **kwargs))
        except BaseException as exc:  # delivered to whoever reads .value
            result.set_exception(exc)

    def _run(self, func, args, kwargs):
        try:
            self._result.set(func(*args, **kwargs))
        except BaseException as exc:  # delivered to whoever reads .value
            self._result.set_exception(exc, sys.exc_info())

    @property
    def ready(self):
        """True once the call has finished (with a result or an exception); never waits."""
        if self._thread_result is not None:
            return self._thread_result.done()
        return self._result.ready()

    def wait(self, timeout=None):
        """Wait up to ``timeout`` seconds; True if the result is there."""
        if self._thread_result is not None:
            concurrent.futures.wait([self._thread_result], timeout)
            return self._thread_result.done()
        self._result.wait(timeout)
        return self._result.ready()

    @property
    def value(self):
        """The call's result, waiting for it if need be; raises the call's exception if it failed."""
        if self._thread_result is not None:
            return self._thread_result.result()
        return self._result.get()

    def then(self, func, *args, **kwargs):
        """A new Future of ``func(value, *args, **kwargs)``, run once this one is done."""
        return Future(lambda: func(self.value, *args, **kwargs))

    def iferror(self, handler):
        """A new Future whose failure is passed to ``handler(exception)`` (its return becomes the value)."""
        def guarded():
            try:
                return self.value
            except Exception as exc:
                return handler(exc)
        return Future(guarded)

    def __repr__(self):
        return "<geopyro.client.Future %s>" % ("ready" if self.ready else "pending")


class _AsyncRemoteMethod:
    """A remote method of a proxy in async mode: calling it returns a Future."""

    __slots__ = ("_proxy", "_name", "_retries")

    def __init__(self, proxy, name, max_retries):
        self._proxy = proxy
        self._name = name
        self._retries = max_retries

    def __call__(self, *args, **kwargs):
        return Future(self._leased_call, self._proxy._pyroLease(), args, kwargs)

    def _leased_call(self, lease, args, kwargs):
        with lease as proxy:
            return _RemoteMethod(proxy._pyroInvoke, self._name, self._retries)(*args, **kwargs)


class SerializedBlob:
    """Data that passes through a gateway still serialized, deserialized only where it is used.

    Pass it as the only argument of a remote call. ``info`` is a small
    marshallable description; ``data`` is what you would otherwise have passed.
    """

    def __init__(self, info, data, is_blob=False):
        if is_blob and not isinstance(data, _MESSAGE_TYPES):
            raise TypeError("data should be a protocol message object if is_blob is true")
        self.info = info
        self._data = data
        self._contains_blob = is_blob

    def deserialized(self):
        """The original data, deserialized now if it arrived as a blob."""
        if not self._contains_blob:
            return self._data
        message = self._data
        payload = message.data
        if isinstance(message, protocol.SendingMessage):  # (Pyro5's kind) all of the message's bytes
            payload = protocol.decode(payload, len(payload)).data
        from . import pickles  # (a daemon's blob in a pickle: the daemon accepted it, so it is read here)
        serializer = pickles.by_id(message.serializer_id) or serializers.get_serializer_by_id(message.serializer_id)
        call = serializer.loads(payload)
        if isinstance(call, dict):  # json encodes the call as an object
            return call.get("params")
        return call[2]


_MESSAGE_TYPES = (protocol.Message, protocol.SendingMessage, protocol.ReceivingMessage)


def _serialize_blob_call(vargs, kwargs, annotations, flags, object_id, methodname, serializer):
    if len(vargs) > 1 or kwargs:
        raise errors.SerializeError("if SerializedBlob is used, it must be the only argument")
    blob = vargs[0]
    annotations["BLBI"] = marshal.dumps((blob.info, object_id, methodname))
    flags |= protocol.FLAGS_KEEPSERIALIZED
    if blob._contains_blob:
        return bytes(blob._data.data), flags
    return serializer.dumpsCall(object_id, methodname, blob._data, kwargs or {}), flags


serializers.register_wire_class(Proxy, "Pyro5.client.Proxy")
