"""How a Daemon listens: one module per server type, all behind the same small interface.

A server type is made with ``(daemon, host, port, unixsocket)`` (or a
connected socket) and offers ``loop(condition)``, ``events(sockets)``,
``sockets``, ``selector``, ``sock``, ``locationStr``, ``combine_loop(other)``,
``shutdown()`` and ``close()``. The Daemon itself never branches on the type.
"""

from .. import errors


def make_server(daemon, settings, host=None, port=0, unixsocket=None, connected_socket=None):
    """Create the transport server the settings ask for."""
    if connected_socket is not None:
        from .existing import ExistingConnectionServer
        return ExistingConnectionServer(daemon, settings, connected_socket)
    servertype = settings.SERVERTYPE
    if servertype == "greenlet":
        from .greenlet import GreenletServer
        return GreenletServer(daemon, settings, host, port, unixsocket)
    if servertype == "thread":
        from .greenlet import SocketServer_Threadpool  # the greenlet server, every call on a thread
        return SocketServer_Threadpool(daemon, settings, host, port, unixsocket)
    if servertype == "multiplex":
        from .multiplex import MultiplexServer
        return MultiplexServer(daemon, settings, host, port, unixsocket)
    raise errors.PyroError("invalid server type %r (choose greenlet, thread or multiplex)" % servertype)
