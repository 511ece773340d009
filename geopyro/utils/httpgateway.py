"""HTTP gateway: call the Pyro objects listed in the name server with plain HTTP, get JSON back.

``python -m geopyro.utils.httpgateway`` (or ``geopyro-httpgateway``) serves it
with gevent's WSGI server; ``pyro_app`` is the WSGI application, to mount in
any WSGI server. URLs, headers, options, status codes and JSON answers are
those of ``Pyro5.utils.httpgateway``, so its clients keep working:

- ``GET|POST /pyro/<name>/<method>?arg=value`` calls a method,
  ``/pyro/<name>/<attribute>`` reads a property, ``/pyro/<name>/$meta``
  lists methods and attributes, ``/pyro/`` is a page to try calls from.
- Headers: ``X-Pyro-Gateway-Key`` (or a ``$key`` parameter),
  ``X-Pyro-Options: oneway``, ``X-Pyro-Correlation-Id`` (echoed back).
- A remote exception is answered with status 500 and the exception as the
  json serializer puts it on the wire; a failure in the gateway itself the same way.

The process needs no monkey-patching: each request runs in its own greenlet
and waits only on geopyro's cooperative sockets, so a slow object holds up
its own request and nothing else. Mounted in a threaded WSGI server, each
request blocks its own thread instead, as under Pyro5.
"""

import argparse
import collections
import contextlib
import hmac
import html
import json
import logging
import re
import sys
import urllib.parse
import uuid

from gevent import pywsgi

from .. import __version__, client, config, core, errors, protocol, serializers
from ..callcontext import current_context

__all__ = ["pyro_app", "main"]

log = logging.getLogger("geopyro.httpgateway")

JSON_TYPE = "application/json; charset=utf-8"
MAX_BODY = 1024 * 1024  # bytes of a POST body we parse (on the loop: keep it small)
INDEX_LIMIT = 10  # objects described on the index page (each costs a connection)


class _Refused(Exception):
    """A request answered with a plain-text status before any Pyro call."""

    def __init__(self, status, text):
        super().__init__(text)
        self.status = status


# --- the name server: a few proxies, each lent to one request at a time ------------------------------------------

class _NameServerPool:
    """Name-server proxies kept between requests, so a request costs no extra connection.

    A geopyro proxy serves one greenlet or thread at a time: a request takes a
    proxy out of the pool (claiming it), and puts it back when done.
    """

    def __init__(self, keep=4):
        self.keep = keep
        self.idle = collections.deque()
        self.uri = None  # where the name server was found (located once, again when it stops answering)

    def call(self, func):
        """``func(ns)`` on a pooled proxy; if the connection failed (the name server restarted, say), once more
        on a name server located anew. A timeout is not retried: it would only double the wait.

        A program that replaced ``get_nameserver`` (Pyro5's hook) gets its own name server used instead."""
        if get_nameserver is not _located_nameserver:
            ns = get_nameserver()
            ns._pyroClaimOwnership()  # (as Pyro5's gateway does) a hook may hand out one cached proxy
            return func(ns)
        try:
            return self._call(func)
        except errors.TimeoutError:
            raise
        except errors.CommunicationError:
            return self._call(func)

    def _call(self, func):
        try:
            proxy = self.idle.pop()
            proxy._pyroClaimOwnership()
        except IndexError:
            proxy = self._new()
        proxy._pyroTimeout = pyro_app.comm_timeout or None
        try:
            return func(proxy)
        except errors.CommunicationError:
            # the connection is in doubt, and so are its siblings and where the name server is: start afresh
            proxy._pyroRelease()
            proxy = None
            self.uri = None
            self.idle.clear()
            raise
        finally:
            if proxy is not None and len(self.idle) < self.keep:
                self.idle.append(proxy)
            elif proxy is not None:
                proxy._pyroRelease()

    def _new(self):
        if self.uri is not None:
            return _json_proxy(self.uri)
        proxy = _located_nameserver()
        self.uri = proxy._pyroUri
        return proxy


_nameservers = _NameServerPool()


def _located_nameserver():
    """A proxy for the name server (located anew); the caller owns it."""
    proxy = core.locate_ns()
    proxy._pyroSerializer = "json"
    return proxy


# Pyro5's hook: the name server the gateway asks. Replace it (``httpgateway.get_nameserver = ...``) to use
# another; left alone, the gateway keeps a few name-server proxies of its own between requests.
get_nameserver = _located_nameserver


def _json_proxy(uri):
    """A proxy that talks json (so results can be passed to the browser as they come) with the gateway's timeout."""
    proxy = client.Proxy(uri)
    proxy._pyroSerializer = "json"
    proxy._pyroTimeout = pyro_app.comm_timeout or None
    return proxy


# --- the WSGI application -----------------------------------------------------------------------------------------

def pyro_app(environ, start_response):
    """The WSGI application; its attributes ``ns_regex``, ``cors``, ``gateway_key``, ``comm_timeout`` configure it."""
    path = environ.get("PATH_INFO", "").lstrip("/")
    if not path:
        start_response("302 Found", [("Location", environ.get("SCRIPT_NAME", "").rstrip("/") + "/pyro/")])
        return []
    if not path.startswith("pyro/"):
        return _plain(start_response, "404 Not Found", "Error 404: Not Found")
    verb = environ.get("REQUEST_METHOD")
    if verb == "OPTIONS":
        return _plain(start_response, "200 OK", "200 OK")
    if verb not in ("GET", "POST"):
        return _plain(start_response, "405 Method Not Allowed", "Error 405: Method Not Allowed")
    path = path[len("pyro/"):]
    try:
        if not path:
            return _index_page(start_response)
        parameters = _parameters(environ)
        name, member = _target(path, environ, parameters)
    except _Refused as refused:
        return _plain(start_response, refused.status, str(refused))
    return _call(environ, start_response, name, member, parameters)


pyro_app.ns_regex = r"http\."  # only names matching this (re.match) are reachable; empty: all of them
pyro_app.cors = ""  # the Access-Control-Allow-Origin value; empty: no CORS headers
pyro_app.gateway_key = None  # when set (bytes or str), requests must carry it
pyro_app.comm_timeout = config.COMMTIMEOUT  # seconds for each Pyro call; 0: no limit


def _target(path, environ, parameters):
    """The (object name, member) a path asks for, once the key and the expose regex allow it."""
    name, _, member = path.rpartition("/")
    if not name or not member:
        raise _Refused("404 Not Found", "Error 404: Not Found")
    if pyro_app.gateway_key:
        given = environ.get("HTTP_X_PYRO_GATEWAY_KEY") or parameters.get("$key", "")
        if not _same_key(given, pyro_app.gateway_key):
            raise _Refused("403 Forbidden", "403 Forbidden - incorrect gateway api key")
        parameters.pop("$key", None)
    if pyro_app.ns_regex and not re.match(pyro_app.ns_regex, name):
        raise _Refused("403 Forbidden", "403 Forbidden - access to the requested object has been denied")
    return name, member


def _same_key(given, expected):
    if not isinstance(given, str):
        return False  # a $key given twice, or a JSON number
    if isinstance(expected, str):
        expected = expected.encode("utf-8")
    return hmac.compare_digest(given.encode("utf-8"), expected)


def _parameters(environ):
    """Keyword arguments of the call: the query string, and for POST also a JSON-object body."""
    parameters = singlyfy_parameters(urllib.parse.parse_qs(environ.get("QUERY_STRING", "")))
    if environ.get("REQUEST_METHOD") == "POST":
        parameters.update(_body_parameters(environ))
    return parameters


def singlyfy_parameters(parameters):
    """(Pyro5's name) parse_qs gives lists: a parameter given once becomes its value. Changes the dict given,
    and returns it."""
    for key, values in parameters.items():
        if isinstance(values, (list, tuple)) and len(values) == 1:
            parameters[key] = values[0]
    return parameters


def _body_parameters(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise _Refused("400 Bad Request", "invalid Content-Length") from None
    kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if length <= 0 or kind != "application/json":
        return {}  # another kind of body (an HTML form's, say): ignored, as Pyro5 ignores every body
    if length > MAX_BODY:
        raise _Refused("413 Request Entity Too Large", "the request body is larger than %d bytes" % MAX_BODY)
    try:
        values = json.loads(environ["wsgi.input"].read(length))
    except ValueError:
        return {}  # (not JSON after all: ignored, as by Pyro5)
    return values if isinstance(values, dict) else {}


def _call(environ, start_response, name, member, parameters):
    """Look the name up, call the member on a fresh proxy, and answer with the reply as it came off the wire."""
    options = {option.strip() for option in environ.get("HTTP_X_PYRO_OPTIONS", "").split(",")}
    previous_id = current_context.correlation_id
    try:
        given_id = environ.get("HTTP_X_PYRO_CORRELATION_ID")
        current_context.correlation_id = uuid.UUID(given_id) if given_id else uuid.uuid4()
        correlation = ("X-Pyro-Correlation-Id", str(current_context.correlation_id))
        uri = _nameservers.call(lambda ns: ns.lookup(name))
        with _json_proxy(uri) as proxy:
            proxy._pyroGetMetadata()
            if member == "$meta":
                meta = {"methods": sorted(proxy._pyroMethods), "attributes": sorted(proxy._pyroAttrs)}
                return _json(start_response, "200 OK", json.dumps(meta).encode("utf-8"), correlation)
            if "oneway" in options:
                proxy._pyroOneway.add(member)
            proxy._pyroRawWireResponse = True
            # Proxy.__getattr__ explicitly: only the object's exposed names, never the proxy's own attributes
            if member in proxy._pyroAttrs:
                if parameters:
                    raise AssertionError("attribute lookup can't have query parameters")
                reply = client.Proxy.__getattr__(proxy, member)
            else:
                reply = client.Proxy.__getattr__(proxy, member)(**parameters)
        if reply is None or "oneway" in options:
            return _json(start_response, "200 OK", b"", correlation)
        if reply.flags & protocol.FLAGS_EXCEPTION:
            return _json(start_response, "500 Internal Server Error", bytes(reply.data))
        return _json(start_response, "200 OK", bytes(reply.data), correlation)
    except Exception as exc:
        log.warning("calling %s.%s%r failed: %r", name, member, parameters, exc,
                    exc_info=log.isEnabledFor(logging.DEBUG))
        answer = json.dumps(serializers.SerializerBase.class_to_dict(exc), default=repr)
        return _json(start_response, "500 Internal Server Error", answer.encode("utf-8"))
    finally:
        current_context.correlation_id = previous_id


def _cors_headers():
    if not pyro_app.cors:
        return []
    return [("Access-Control-Allow-Origin", pyro_app.cors),
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers",
             "Content-Type, X-Pyro-Correlation-Id, X-Pyro-Gateway-Key, X-Pyro-Options"),
            ("Access-Control-Expose-Headers", "X-Pyro-Correlation-Id")]


def _json(start_response, status, body, *headers):
    start_response(status, [("Content-Type", JSON_TYPE), *headers] + _cors_headers())
    return [body]


def _plain(start_response, status, text, content_type="text/plain"):
    start_response(status, [("Content-Type", content_type)] + _cors_headers())
    return [text.encode("utf-8")]


# --- the index page -----------------------------------------------------------------------------------------------

def _index_page(start_response):
    def ask(ns):
        return ns._pyroUri.location, ns.list(regex=pyro_app.ns_regex or None)

    try:
        location, names = _nameservers.call(ask)
    except errors.PyroError as exc:
        log.warning("index page: no name server: %s", exc)
        return _plain(start_response, "500 Internal Server Error",
                      "The name server cannot be reached (%s). Reload the page to try again." % exc)
    objects = {name: _describe(name, names[name]) for name in sorted(names)[:INDEX_LIMIT]}
    return _plain(start_response, "200 OK", _render(location, objects, len(names)), "text/html; charset=utf-8")


def _describe(name, uri):
    """What the page shows of one object: its methods, attributes and oneway methods, or why they are unknown."""
    try:
        with _json_proxy(uri) as proxy:
            proxy._pyroGetMetadata()
            return {"methods": sorted(proxy._pyroMethods), "attributes": sorted(proxy._pyroAttrs),
                    "oneway": sorted(proxy._pyroOneway)}
    except Exception as exc:
        log.warning("index page: no metadata for %s (%s): %s", name, uri, exc)
        return {"error": "%s: %s" % (type(exc).__name__, exc)}


def _button(name, member, label=None, now=False):
    """A button the page's script turns into a call (``now``) or into a filled-in form."""
    return '<button data-object="%s" data-member="%s"%s>%s</button>' % (
        html.escape(name), html.escape(member), " data-now" if now else "", html.escape(label or member))


def _row(name, meta):
    cells = ['<td class="name">%s</td>' % _button(name, "$meta", name, now=True)]
    if "error" in meta:
        cells.append('<td colspan="3" class="error">%s</td>' % html.escape(meta["error"]))
    else:
        oneway = ' <span class="tag">oneway</span>'
        cells += ["<td>%s</td>" % (" ".join(_button(name, m) + (oneway if m in meta["oneway"] else "")
                                            for m in meta["methods"]) or "&ndash;"),
                  "<td>%s</td>" % (" ".join(_button(name, a, now=True) for a in meta["attributes"]) or "&ndash;"),
                  "<td>%s</td>" % (html.escape(" ".join(meta["oneway"])) or "&ndash;")]
    return "<tr>%s</tr>" % "".join(cells)


def _render(location, objects, total):
    rows = "".join(_row(name, meta) for name, meta in objects.items()) or \
        '<tr><td colspan="4">No object in the name server matches the expose pattern.</td></tr>'
    # the metadata again, for the script; escaped so that no name can end the script element
    metadata = json.dumps(objects).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _PAGE.format(
        style=_STYLE, form=_FORM, script=_SCRIPT, rows=rows, metadata=metadata, shown=len(objects), total=total,
        location=html.escape(str(location)), version=html.escape(__version__),
        pattern=html.escape(pyro_app.ns_regex) if pyro_app.ns_regex else "(none: every name is exposed)",
        key=" &middot; calls need the gateway key" if pyro_app.gateway_key else "")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>geopyro HTTP gateway</title>
{style}
</head><body>
<header><h1>geopyro HTTP gateway</h1>
<p>Pyro objects over HTTP, answered in JSON: <code>/pyro/&lt;name&gt;/&lt;method&gt;?arg=value</code>,
<code>/pyro/&lt;name&gt;/$meta</code>.</p></header>
<section><h2>Objects</h2>
<p class="info">Name server at <code>{location}</code> &middot; expose pattern <code>{pattern}</code>
&middot; showing {shown} of {total}{key}</p>
<table id="objects"><thead><tr><th>Name</th><th>Methods</th><th>Attributes</th><th>Oneway</th></tr></thead>
<tbody>{rows}</tbody></table>
<p class="hint">A name shows its metadata, an attribute its value; a method fills in the form below.</p>
</section>
{form}
<script type="application/json" id="pyro-objects">{metadata}</script>
{script}
<footer>geopyro {version}</footer>
</body></html>
"""

_STYLE = """<style>
body { font: 15px/1.45 system-ui, sans-serif; color: #1d2430; background: #f6f7f9; margin: 0 auto;
       max-width: 1100px; padding: 1.5em; }
h1 { margin: 0; font-size: 1.6em; } h2 { font-size: 1.15em; margin: 1.4em 0 .5em; }
header p, .info, .hint, footer { color: #5a6472; }
code { background: #e9ecf1; padding: 0 .3em; border-radius: 3px; }
table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 3px #0002; }
th, td { text-align: left; padding: .45em .7em; border-bottom: 1px solid #e3e6eb; vertical-align: middle; }
th { background: #2d3e55; color: #fff; font-weight: 600; }
button { font: inherit; font-size: .92em; border: 1px solid #b9c4d4; background: #eef2f8; border-radius: 4px;
         padding: .05em .45em; margin: .1em 0; cursor: pointer; }
button:hover { background: #dbe5f3; } td.name button { font-weight: 600; }
.tag { font-size: .75em; color: #8a5a00; background: #fff1d6; border-radius: 3px; padding: 0 .3em; }
td.error { color: #a4161a; }
form { display: flex; flex-wrap: wrap; gap: .6em 1em; align-items: end; background: #fff; padding: 1em;
       box-shadow: 0 1px 3px #0002; }
label { display: flex; flex-direction: column; font-size: .85em; color: #5a6472; }
label.check { flex-direction: row; align-items: center; gap: .3em; }
input { font: inherit; padding: .25em .4em; border: 1px solid #b9c4d4; border-radius: 4px; }
#args { width: 18em; } form button { padding: .3em 1.2em; background: #2d3e55; color: #fff; border: 0; }
pre { background: #fff; box-shadow: 0 1px 3px #0002; padding: .8em; white-space: pre-wrap; min-height: 1.2em;
      margin: .4em 0; }
#status.ok { color: #1b6b2f; } #status.failed { color: #a4161a; }
footer { margin-top: 2em; font-size: .85em; }
</style>"""

_FORM = """<section><h2>Call</h2>
<form id="call-form">
<label>Object <input id="object" list="object-names" required size="24"></label>
<datalist id="object-names"></datalist>
<label>Method or attribute <input id="member" list="member-names" required size="16"></label>
<datalist id="member-names"></datalist>
<label>Arguments (JSON object) <input id="args" value="{}"></label>
<label class="check"><input type="checkbox" id="oneway"> oneway</label>
<label>Gateway key <input id="key" type="password" size="12"></label>
<button type="submit">Call</button>
</form>
<h2>Result</h2>
<pre id="request">&nbsp;</pre>
<pre id="status">&nbsp;</pre>
<pre id="response">&nbsp;</pre>
</section>"""

_SCRIPT = """<script>
"use strict";
const objects = JSON.parse(document.getElementById("pyro-objects").textContent);
const $ = id => document.getElementById(id);

function show(id, text, className) {
    $(id).textContent = text;
    if (className !== undefined) $(id).className = className;
}

// GET with a query string when there are no JSON arguments, else POST them as a JSON body
async function pyroCall(object, member, args, query) {
    let url = encodeURIComponent(object) + "/" + encodeURIComponent(member);
    if (query) url += "?" + query;
    const headers = {"Accept": "application/json"};
    if ($("key").value) headers["X-Pyro-Gateway-Key"] = $("key").value;
    if ($("oneway").checked) headers["X-Pyro-Options"] = "oneway";
    const request = {method: "GET", headers: headers};
    if (args && Object.keys(args).length) {
        request.method = "POST";
        headers["Content-Type"] = "application/json";
        request.body = JSON.stringify(args);
    }
    show("request", request.method + " " + decodeURIComponent(url) + (request.body ? "  " + request.body : ""));
    show("status", "waiting...", "");
    show("response", "");
    try {
        const reply = await fetch(url, request);
        const text = await reply.text();
        const id = reply.headers.get("X-Pyro-Correlation-Id");
        show("status", reply.status + " " + reply.statusText + (id ? "  (correlation id " + id + ")" : ""),
             reply.ok ? "ok" : "failed");
        let body = text || "(empty: no result)";
        try { body = JSON.stringify(JSON.parse(text), null, 2); } catch (notJson) { /* shown as it came */ }
        show("response", body);
    } catch (failure) {
        show("status", "request failed: " + failure, "failed");
    }
}

function fillMembers() {
    const meta = objects[$("object").value] || {};
    $("member-names").replaceChildren(...["$meta"].concat(meta.methods || [], meta.attributes || [])
        .map(name => new Option(name, name)));
}

$("object-names").replaceChildren(...Object.keys(objects).map(name => new Option(name, name)));
$("object").addEventListener("input", fillMembers);

document.getElementById("objects").addEventListener("click", event => {
    const button = event.target.closest("button[data-member]");
    if (!button) return;
    $("object").value = button.dataset.object;
    $("member").value = button.dataset.member;
    fillMembers();
    if (button.hasAttribute("data-now")) pyroCall(button.dataset.object, button.dataset.member);
    else $("args").focus();
});

$("call-form").addEventListener("submit", event => {
    event.preventDefault();
    let args;
    try { args = JSON.parse($("args").value.trim() || "{}"); }
    catch (error) { show("status", "the arguments are not valid JSON: " + error, "failed"); return; }
    pyroCall($("object").value, $("member").value, args);
});

// #name/member?query in the address calls it on load (a link to a call)
if (location.hash.length > 1) {
    const target = location.hash.slice(1);
    const mark = target.indexOf("?");
    const path = decodeURIComponent(mark < 0 ? target : target.slice(0, mark));
    const slash = path.lastIndexOf("/");
    if (slash > 0) {
        $("object").value = path.slice(0, slash);
        $("member").value = path.slice(slash + 1);
        fillMembers();
        pyroCall(path.slice(0, slash), path.slice(slash + 1), null, mark < 0 ? "" : target.slice(mark + 1));
    }
}
</script>"""


# --- command line -------------------------------------------------------------------------------------------------

def main(args=None):
    """Run the gateway with gevent's WSGI server until interrupted (the options are Pyro5's)."""
    parser = argparse.ArgumentParser(prog="geopyro-httpgateway",
                                     description="Serve the Pyro objects of the name server over HTTP and JSON.")
    parser.add_argument("-H", "--host", default="localhost",
                        help="host name or address to listen on (default: %(default)s)")
    parser.add_argument("-c", "--cors", default="*",
                        help="the Access-Control-Allow-Origin value (default: %(default)s)")
    parser.add_argument("-p", "--port", type=int, default=8080,
                        help="port to listen on, 0 for a free one (default: %(default)d)")
    parser.add_argument("-e", "--expose", default=pyro_app.ns_regex,
                        help="regular expression a name must match to be reachable (default: %(default)s)")
    parser.add_argument("-g", "--gatewaykey", help="a key every call must present (X-Pyro-Gateway-Key or $key)")
    parser.add_argument("-t", "--timeout", type=float, default=pyro_app.comm_timeout,
                        help="seconds a Pyro call may take, 0 for no limit (sets COMMTIMEOUT; default: %(default)s)")
    options = parser.parse_args(args)
    pyro_app.gateway_key = (options.gatewaykey or "").encode("utf-8")
    pyro_app.ns_regex = options.expose
    pyro_app.cors = options.cors
    pyro_app.comm_timeout = config.COMMTIMEOUT = options.timeout

    if pyro_app.ns_regex:
        print("Reachable names match:", pyro_app.ns_regex, flush=True)
    else:
        print("Warning: every name in the name server is reachable (empty expose pattern)", flush=True)
    try:
        print("Name server found at:", _nameservers.call(lambda ns: ns._pyroUri), flush=True)
    except errors.PyroError as exc:
        print("No name server yet (%s); each request looks for it again." % exc, flush=True)
    server = pywsgi.WSGIServer((options.host, options.port), pyro_app)
    server.start()
    host, port = server.socket.getsockname()[:2]
    print("geopyro HTTP gateway running on http://%s:%d/pyro/" % (core.host_for_uri(host), port), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
