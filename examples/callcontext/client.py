"""callcontext client: python client.py <uri of echo>."""

import itertools
import sys
import uuid

import geopyro.api as api

_request_ids = itertools.count(1)


class AnnotatedProxy(api.Proxy):
    def _pyroAnnotations(self):
        return {"REQI": b"request-%d" % next(_request_ids)}  # added to every request of this proxy

    def _pyroResponseAnnotations(self, annotations, msgtype):
        if "SRVR" in annotations:
            print("client:   (response hook) server name annotation: %s" % bytes(annotations["SRVR"]).decode())


def main(uri):
    api.current_context.correlation_id = uuid.uuid4()
    api.current_context.annotations = {"USER": b"carol"}
    print("client: my correlation id", api.current_context.correlation_id)
    with AnnotatedProxy(uri) as echo:
        for text in ("hello", "again"):
            print("client:", echo.echo(text))
            took = bytes(api.current_context.response_annotations["TOOK"]).decode()
            print("client:   server says the call took %s s (TOOK annotation)" % took)


if __name__ == "__main__":
    main(sys.argv[1])
