"""Everything most programs need, under the same names as ``Pyro5.api``.

Porting from Pyro5 is a rename: ``import Pyro5.api`` becomes ``import geopyro.api``.
"""

from . import __version__
from .callcontext import current_context
from .client import BatchProxy, Future, Proxy, SerializedBlob
from .configure import global_config as config
from .core import URI, locate_ns, resolve, type_meta
from .nameserver import start_ns, start_ns_loop  # (as in Pyro5, this also makes the package's .nameserver)
from .serializers import SerializerBase
from .server import Daemon, DaemonObject, behavior, blocking, callback, cooperative, expose, oneway, serve

register_dict_to_class = SerializerBase.register_dict_to_class
register_class_to_dict = SerializerBase.register_class_to_dict
unregister_dict_to_class = SerializerBase.unregister_dict_to_class
unregister_class_to_dict = SerializerBase.unregister_class_to_dict


__all__ = ["config", "URI", "locate_ns", "resolve", "type_meta", "current_context",
           "Proxy", "BatchProxy", "SerializedBlob", "SerializerBase", "Future",
           "Daemon", "DaemonObject", "callback", "expose", "behavior", "oneway", "blocking", "cooperative",
           "start_ns", "start_ns_loop", "serve", "register_dict_to_class",
           "register_class_to_dict", "unregister_dict_to_class", "unregister_class_to_dict", "__version__"]
