"""The shortest path through the whole stack: publish, call, error, shut down."""

import pytest

import geopyro.api as api


@api.expose
class Calculator:
    def add(self, a, b):
        return a + b

    def fail(self):
        raise ValueError("boom")


@pytest.mark.parametrize("serializer", ["serpent", "json", "marshal", "msgpack"])
def test_call_and_remote_error(daemons, clean_config, serializer):
    clean_config.SERIALIZER = serializer
    uri = daemons.serve(Calculator)
    with api.Proxy(uri) as proxy:
        assert proxy.add(2, 3) == 5
        with pytest.raises(ValueError, match="boom") as info:
            proxy.fail()
        assert "raise ValueError" in "".join(info.value._pyroTraceback)
