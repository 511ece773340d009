"""What @expose makes reachable, and that nothing else can be reached, not even by hand-crafted calls."""

import pytest

import geopyro.api as api
from geopyro import errors
from geopyro.client import Proxy
from geopyro.exposure import (get_exposed_members, get_exposed_method, is_callback_method, is_private_attribute,
                              reset_exposed_members)
from geopyro.server import behavior, expose, oneway


class Service:
    """Partly exposed: only the decorated members are reachable."""

    value = 42  # a plain class attribute: never reachable

    def __init__(self):
        self.secret = "s3cr3t"
        self._value = 1

    @expose
    def get_value(self):
        return self.value

    def not_exposed(self):
        return "nope"

    def _private(self):
        return "private"

    def __private(self):
        return "mangled"

    @expose
    def __len__(self):
        return 3

    @expose
    def __getitem__(self, index):
        if index >= 3:
            raise IndexError(index)
        return "item%d" % index

    @classmethod
    @expose
    def cmethod(cls, x):
        return "class:%s:%s" % (cls.__name__, x)

    @staticmethod
    @expose
    def smethod(x):
        return x * 2

    @expose
    @property
    def attr(self):
        return self._value

    @expose
    @attr.setter
    def attr(self, value):
        self._value = value

    @property
    def hidden_attr(self):
        return "hidden"

    @expose
    @property
    def readonly(self):
        return "ro"

    @expose
    @oneway
    def fire(self):
        pass


@expose
class WholeClass:
    """Exposed as a whole: every public method and property, none of the private ones."""

    def __init__(self):
        self._x = 5

    def method(self):
        return "method"

    @classmethod
    def cm(cls):
        return cls.__name__

    @staticmethod
    def sm(a, b):
        return a + b

    @property
    def prop(self):
        return self._x

    @prop.setter
    def prop(self, value):
        self._x = value

    def _hidden(self):
        return "hidden"

    def __len__(self):
        return 7

    def __repr__(self):
        return "<WholeClass>"


# --- the decorator itself ---

def test_metadata_of_partly_exposed_class():
    meta = get_exposed_members(Service)
    assert meta["methods"] == {"get_value", "__len__", "__getitem__", "cmethod", "smethod", "fire"}
    assert meta["attrs"] == {"attr", "readonly"}
    assert meta["oneway"] == {"fire"}


def test_metadata_of_exposed_class():
    meta = get_exposed_members(WholeClass)
    assert meta["methods"] == {"method", "cm", "sm", "__len__"}
    assert meta["attrs"] == {"prop"}
    assert meta["oneway"] == set()


def test_private_names():
    for name in ("_x", "__x", "_x__", "__init__", "__class__", "__dict__", "__getattr__", "__setattr__",
                 "__reduce__", "__reduce_ex__", "__getstate__", "__call__", "__repr__", "__eq__", "__del__"):
        assert is_private_attribute(name), name
    for name in ("x", "get_value", "__len__", "__getitem__", "__contains__", "__iter__", "__dunder__"):
        assert not is_private_attribute(name), name


def test_expose_private_method_refused():
    with pytest.raises(AttributeError):
        def _private(self):
            pass
        expose(_private)
    with pytest.raises(AttributeError):
        def __private(self):
            pass
        expose(__private)


@pytest.mark.parametrize("name", ["__init__", "__getattr__", "__reduce__", "__call__", "__eq__"])
def test_expose_never_remoted_dunder_refused(name):
    def func(self):
        pass
    func.__name__ = name
    with pytest.raises(AttributeError):
        expose(func)


def test_expose_private_property_refused():
    def _getter(self):
        return 1
    with pytest.raises(AttributeError):
        expose(property(_getter))


def test_expose_classmethod_wrong_order_raises():
    with pytest.raises(AttributeError, match="classmethod"):
        class Wrong:
            @expose
            @classmethod
            def method(cls):
                pass


def test_expose_classmethod_right_order():
    class Right:
        @classmethod
        @expose
        def method(cls):
            pass
    assert get_exposed_members(Right)["methods"] == {"method"}


def test_expose_staticmethod_wrong_order_raises():
    with pytest.raises(AttributeError, match="staticmethod"):
        expose(staticmethod(lambda: None))


def test_behavior_validation():
    """Checked as Pyro5 checks, when the decorator is applied: first that it decorates a class."""
    class Plain:
        pass
    with pytest.raises(ValueError):
        behavior(instance_mode="everywhere")(Plain)
    with pytest.raises(TypeError):
        behavior(instance_mode="single")(lambda: None)  # not a class
    with pytest.raises(TypeError):
        behavior(instance_mode="single", instance_creator="not callable")(Plain)
    with pytest.raises(SyntaxError):
        @behavior
        class Missing:
            pass


def test_behavior_marks_class():
    @behavior(instance_mode="percall")
    class Thing:
        pass
    assert Thing._pyroInstancing == ("percall", None)


# --- over the wire ---

def test_exposed_members_reachable(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        assert p.get_value() == 42
        assert p.cmethod("x") == "class:Service:x"
        assert p.smethod(21) == 42
        assert p.attr == 1
        p.attr = 99
        assert p.attr == 99
        assert p.readonly == "ro"
        assert p.fire() is None  # oneway


def test_exposed_dunders_used_by_len_and_index(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        assert len(p) == 3
        assert p[0] == "item0"
        assert p[2] == "item2"
        with pytest.raises(IndexError):
            p[5]
        assert list(p) == ["item0", "item1", "item2"]  # iteration falls back to __getitem__


def test_readonly_property_not_writable(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        with pytest.raises(AttributeError):
            p.readonly = "x"
        assert p._pyroInvoke("__getattr__", ("readonly",), {}) == "ro"
        with pytest.raises(AttributeError, match="not writable"):
            p._pyroInvoke("__setattr__", ("readonly", "x"), {})
        assert p.readonly == "ro"


def test_unexposed_members_unreachable(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        with pytest.raises(AttributeError):
            p.not_exposed()
        with pytest.raises(AttributeError):
            p.hidden_attr
        with pytest.raises(AttributeError):
            p.value
        # crafted by hand, bypassing the proxy's own metadata check
        with pytest.raises(AttributeError, match="unexposed"):
            p._pyroInvoke("not_exposed", (), {})
        for name in ("hidden_attr", "value", "secret", "not_exposed", "get_value"):
            with pytest.raises(AttributeError):
                p._pyroInvoke("__getattr__", (name,), {})
            with pytest.raises(AttributeError):
                p._pyroInvoke("__setattr__", (name, "changed"), {})
        assert p.get_value() == 42  # nothing was changed, the connection still works


PRIVATE_METHOD_NAMES = ["_private", "__private", "_Service__private", "__init__", "__class__", "__dict__",
                        "__reduce__", "__reduce_ex__", "__getattribute__", "__repr__", "__eq__", "__call__",
                        "__getattr__x", "__setattr__x"]


@pytest.mark.parametrize("name", PRIVATE_METHOD_NAMES)
def test_private_methods_unreachable_by_hand(daemons, servertype, name):
    uri = daemons.serve(Service())
    with Proxy(uri) as p:
        with pytest.raises(AttributeError):
            p._pyroInvoke(name, (), {})
        assert p.get_value() == 42


PRIVATE_ATTR_NAMES = ["_value", "_private", "__private", "_Service__private", "__class__", "__dict__",
                      "__init__", "__reduce__", "__module__", "__weakref__", "_pyroId", "_pyroDaemon", "secret"]


@pytest.mark.parametrize("name", PRIVATE_ATTR_NAMES)
def test_private_attributes_unreachable_by_hand(daemons, servertype, name):
    service = Service()
    uri = daemons.serve(service)
    with Proxy(uri) as p:
        with pytest.raises(AttributeError):
            p._pyroInvoke("__getattr__", (name,), {})
        with pytest.raises(AttributeError):
            p._pyroInvoke("__setattr__", (name, "hacked"), {})
    assert service._value == 1
    assert service.secret == "s3cr3t"
    assert type(service) is Service
    assert "hacked" not in vars(service).values()


def test_private_names_in_batch_unreachable(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        # as in Pyro5, a name that cannot be resolved fails the whole batch (not just its own slot)
        batch = p._pyroBatch()
        batch.get_value()
        batch._private()
        batch.get_value()
        with pytest.raises(AttributeError, match="private"):
            list(batch())
        batch = p._pyroBatch()
        batch.not_exposed()
        with pytest.raises(AttributeError, match="unexposed"):
            list(batch())
        # names a BatchProxy cannot queue itself, crafted by hand
        for name in ("__init__", "__class__", "__reduce__", "__getattr__", "__setattr__", "_Service__private"):
            with pytest.raises(AttributeError):
                list(p._pyroInvokeBatch([("get_value", (), {}), (name, ("_value",), {})]))
        assert p.get_value() == 42


def test_private_names_not_in_proxy(daemons, servertype):
    uri = daemons.serve(Service)
    with Proxy(uri) as p:
        p._pyroBind()
        with pytest.raises(AttributeError):
            p._private
        assert "_private" not in p._pyroMethods
        assert "__init__" not in p._pyroMethods


def test_whole_class_exposed(daemons, servertype):
    uri = daemons.serve(WholeClass)
    with Proxy(uri) as p:
        assert p.method() == "method"
        assert p.cm() == "WholeClass"
        assert p.sm(2, 3) == 5
        assert p.prop == 5
        p.prop = 6
        assert p.prop == 6
        assert len(p) == 7
        for name in ("_hidden", "__repr__", "__init__"):
            with pytest.raises(AttributeError):
                p._pyroInvoke(name, (), {})
        with pytest.raises(AttributeError):
            p._pyroInvoke("__getattr__", ("_x",), {})


def test_expose_as_function_on_third_party_class(daemons, servertype):
    class ThirdParty:
        """A class we 'cannot edit': no Pyro decorators at all."""

        def greet(self, name):
            return "hello " + name

        def _internal(self):
            return "internal"

    assert get_exposed_members(ThirdParty)["methods"] == set()
    exposed_class = expose(ThirdParty)
    assert exposed_class is ThirdParty
    assert get_exposed_members(exposed_class)["methods"] == {"greet"}
    uri = daemons.serve(exposed_class)
    with Proxy(uri) as p:
        assert p.greet("world") == "hello world"
        with pytest.raises(AttributeError):
            p._pyroInvoke("_internal", (), {})


@pytest.mark.filterwarnings("ignore")
def test_class_without_exposed_members_refused_by_proxy(daemons, servertype):
    class Nothing:
        def method(self):
            pass
    uri = daemons.serve(Nothing)
    with Proxy(uri) as p:
        with pytest.raises(errors.PyroError, match="expose"):
            p.method()


def test_exposed_method_lookup():
    service = Service()
    assert get_exposed_method(service, "get_value")() == 42
    assert get_exposed_method(service, "get_value")() == 42  # the second lookup is the cached one
    for name in ("not_exposed", "_private", "__init__", "_Service__private", "missing"):
        with pytest.raises(AttributeError):
            get_exposed_method(service, name)
    for name in (None, 42, ["get_value"], b"get_value"):
        with pytest.raises(AttributeError):
            get_exposed_method(service, name)


def test_exposed_method_lookup_follows_a_metadata_reset():
    class Growing:
        @expose
        def first(self):
            return 1

    def second(self):
        return 2

    obj = Growing()
    assert get_exposed_method(obj, "first")() == 1
    Growing.second = expose(second)
    with pytest.raises(AttributeError):
        get_exposed_method(obj, "second")  # the class's metadata is cached until reset
    reset_exposed_members(obj)
    assert get_exposed_method(obj, "second")() == 2


def test_withdrawn_exposure_is_refused_after_a_reset():
    class Shrinking:
        @expose
        def kept(self):
            return "kept"

        @expose
        def withdrawn(self):
            return "withdrawn"

    obj = Shrinking()
    assert get_exposed_method(obj, "withdrawn")() == "withdrawn"
    del Shrinking.withdrawn._pyroExposed
    reset_exposed_members(obj)
    with pytest.raises(AttributeError):
        get_exposed_method(obj, "withdrawn")
    assert get_exposed_method(obj, "kept")() == "kept"


def test_exposed_method_lookup_goes_by_the_real_type_not_a_faked_class():
    service = Service()
    assert get_exposed_method(service, "get_value")() == 42  # Service's names are now cached

    class Impostor:
        @property
        def __class__(self):
            return Service

        def get_value(self):
            return "unexposed internals"

    impostor = Impostor()
    assert isinstance(impostor, Service)  # what __class__ makes isinstance believe
    with pytest.raises(AttributeError):
        get_exposed_method(impostor, "get_value")


def test_a_private_name_added_to_handed_out_metadata_stays_private():
    service = Service()
    get_exposed_method(service, "get_value")
    get_exposed_members(service)["methods"].add("_private")
    try:
        with pytest.raises(AttributeError):
            get_exposed_method(service, "_private")
    finally:
        reset_exposed_members(service)


class PlainSetter:
    """A property exposed on its getter, with a plain setter: Pyro5 lets clients write it."""

    def __init__(self):
        self._x = 1

    @expose
    @property
    def x(self):
        return self._x

    @x.setter
    def x(self, value):
        self._x = value


def test_a_plain_setter_of_an_exposed_property_is_writable_as_in_pyro5(daemons, servertype):
    import Pyro5.server
    pyro5_obj = PlainSetter()
    Pyro5.server._set_exposed_property_value(pyro5_obj, "x", 5)
    assert pyro5_obj.x == 5
    daemon = api.Daemon(host="127.0.0.1")
    uri = daemon.register(PlainSetter(), "plain")
    daemons.start(daemon)
    with api.Proxy(uri) as proxy:
        assert proxy.x == 1
        proxy.x = 5
        assert proxy.x == 5


def test_callback_mark_is_read_from_every_kind_of_method():
    class Handler:
        @api.callback
        def marked(self):
            pass

        def plain(self):
            pass

        @staticmethod
        @api.callback
        def marked_static():
            pass

    class CallableObject:
        _pyroCallback = True

        def __call__(self):
            pass

    handler = Handler()
    assert is_callback_method(handler.marked) is True
    assert is_callback_method(handler.plain) is False
    assert is_callback_method(handler.marked_static) is True
    assert is_callback_method(CallableObject()) is True
    assert is_callback_method(len) is False
