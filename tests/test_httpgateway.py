"""The HTTP gateway (geopyro.utils.httpgateway) through a real HTTP client.

A child process runs a name server and the objects (tests/gateway_support.py);
the gateway runs as its command line (gevent's WSGI server) in other child
processes, or as ``pyro_app`` mounted in wsgiref in this process. Where Pyro5
is installed, the same requests go to Pyro5's own gateway against the same
name server, and the answers must agree.
"""

import concurrent.futures
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import wsgiref.simple_server

import pytest

import geopyro
from geopyro.utils import httpgateway
from support import ROOT, child_env, first_line, read_line, wait_until

CHROMIUM = "/usr/bin/chromium"


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Reply %d %r>" % (self.status, self.body[:300])


class Gateway:
    """Where a gateway listens, and a way to send it one request."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.url = "http://%s:%d" % (self.host, self.port)

    def request(self, path, method="GET", body=None, headers=None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


@pytest.fixture(scope="module")
def ns_port(tmp_path_factory):
    """The port of the name server of the backend child process (its objects: see gateway_support.py)."""
    log = tmp_path_factory.mktemp("backend") / "stderr.txt"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "gateway_support.py")], cwd=ROOT,
                                env=child_env(), stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = first_line(proc, time.monotonic() + 30, "the gateway test backend")
        yield int(line.split()[1])
    finally:
        stop(proc)


def start_cli_gateway(directory, ns_port, *options):
    """``python -m geopyro.utils.httpgateway`` on a free port; returns (process, Gateway)."""
    env = child_env(PYRO_NS_HOST="127.0.0.1", PYRO_NS_PORT=ns_port, PYTHONUNBUFFERED=1)  # a line as it is printed
    with open(directory / "stderr.txt", "w") as stderr:  # the access log goes there; a pipe could fill up
        proc = subprocess.Popen([sys.executable, "-m", "geopyro.utils.httpgateway", "-H", "127.0.0.1", "-p", "0"]
                                + list(options), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr,
                                text=True)
    deadline = time.monotonic() + 30
    lines = []
    while True:
        line = read_line(proc, deadline)
        if line is None:
            stop(proc)
            pytest.fail("the gateway did not start: %s\n%s" % ("".join(lines),
                                                                   (directory / "stderr.txt").read_text()))
        lines.append(line)
        match = re.search(r"running on (http://\S+)", line)
        if match:
            return proc, Gateway(match.group(1))


@pytest.fixture(scope="module")
def gateway(ns_port, tmp_path_factory):
    """The gateway as its command line starts it by default (CORS '*', expose 'http\\.', no key, no timeout)."""
    proc, gw = start_cli_gateway(tmp_path_factory.mktemp("gateway"), ns_port)
    yield gw
    stop(proc)


@pytest.fixture(scope="module")
def strict_gateway(ns_port, tmp_path_factory):
    """A gateway with every option set: key, CORS origin, expose regex, timeout."""
    proc, gw = start_cli_gateway(tmp_path_factory.mktemp("strict"), ns_port, "-g", "s3cret", "-c",
                                 "https://app.example", "-e", r"http\.calc$|Pyro\.NameServer$", "-t", "1.0")
    yield gw
    stop(proc)


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve_wsgi(app):
    """``app`` in wsgiref on a free port in a thread (the way Pyro5's gateway runs); returns (server, Gateway)."""
    server = wsgiref.simple_server.make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, Gateway("http://127.0.0.1:%d" % server.server_port)


@pytest.fixture(scope="module")
def pyro5_gateway(ns_port):
    """Pyro5's own gateway, set up as its command line sets it up, against the same name server."""
    pyro5_gateway = pytest.importorskip("Pyro5.utils.httpgateway")
    import Pyro5
    app = pyro5_gateway.pyro_app
    saved = {name: getattr(Pyro5.config, name) for name in ("NS_HOST", "NS_PORT", "SERIALIZER", "COMMTIMEOUT")}
    saved_app = {name: getattr(app, name) for name in ("ns_regex", "cors", "gateway_key", "comm_timeout")}
    Pyro5.config.NS_HOST, Pyro5.config.NS_PORT = "127.0.0.1", ns_port
    pyro5_gateway._nameserver = None
    app.ns_regex, app.cors, app.gateway_key, app.comm_timeout = r"http\.", "*", b"", 0.0  # as its main() sets them
    server, gw = serve_wsgi(app)
    yield gw
    server.shutdown()
    server.server_close()
    pyro5_gateway._nameserver = None
    for name, value in saved.items():
        setattr(Pyro5.config, name, value)
    for name, value in saved_app.items():
        setattr(app, name, value)


@pytest.fixture(scope="module")
def wsgiref_server():
    server, gw = serve_wsgi(httpgateway.pyro_app)
    yield gw
    server.shutdown()
    server.server_close()


@pytest.fixture
def embedded(wsgiref_server, ns_port, clean_config, monkeypatch):
    """geopyro's pyro_app mounted in wsgiref, as a program that embeds Pyro5's would; settings restored after."""
    clean_config.NS_HOST, clean_config.NS_PORT = "127.0.0.1", ns_port
    for name in ("ns_regex", "cors", "gateway_key", "comm_timeout"):
        monkeypatch.setattr(httpgateway.pyro_app, name, getattr(httpgateway.pyro_app, name))
    monkeypatch.setattr(httpgateway, "_nameservers", httpgateway._NameServerPool())
    return wsgiref_server


# --- the same answers as Pyro5's gateway ---------------------------------------------------------------------------

SAME_AS_PYRO5 = [
    ("GET", "/pyro/http.calc/add?a=1&b=2", {}),
    ("POST", "/pyro/http.calc/add?a=x&b=y", {}),
    ("GET", "/pyro/http.calc/echo?message=a&message=b", {}),
    ("GET", "/pyro/http.calc/echo?message=%C3%A9t%C3%A9%20%3C%26%3E", {}),
    ("GET", "/pyro/http.calc/shapes", {}),
    ("GET", "/pyro/http.greeter/greet?name=you", {}),
    ("GET", "/pyro/http.calc/$meta", {}),
    ("GET", "/pyro/http.calc/label", {}),
    ("GET", "/pyro/http.calc/label?value=new", {}),
    ("GET", "/pyro/http.calc/fail?why=bad%20input", {}),
    ("GET", "/pyro/http.calc/add?a=1", {}),
    ("GET", "/pyro/http.calc/nosuch", {}),
    ("GET", "/pyro/http.nothere/echo", {}),
    ("GET", "/pyro/http.gone/echo", {}),
    ("GET", "/pyro/other.secret/greet", {}),
    ("GET", "/pyro/http.calc/echo?message=x", {"X-Pyro-Options": "oneway"}),
    ("GET", "/pyro/http.calc/note?text=compared", {}),
    ("GET", "/pyro/http.calc/echo?message=x", {"X-Pyro-Correlation-Id": "not-a-uuid"}),
    ("GET", "/pyro/http.calc", {}),
    ("GET", "/pyro/http.calc/", {}),
    ("GET", "/pyro", {}),
    ("GET", "/elsewhere/http.calc/echo", {}),
    ("PUT", "/pyro/http.calc/echo", {}),
    ("DELETE", "/pyro/http.calc/echo", {}),
    ("HEAD", "/pyro/http.calc/echo", {}),
    ("OPTIONS", "/pyro/http.calc/echo", {}),
    ("GET", "/", {}),
    ("GET", "/pyro/", {}),
]


def comparable(reply):
    """What must agree between two gateways: status, the headers that matter, the JSON (exceptions by class and
    args; the remote traceback only by presence, $meta's lists in any order)."""
    headers = {name: reply.headers.get(name) for name in ("Location", "Access-Control-Allow-Origin",
                                                           "Access-Control-Allow-Methods")}
    headers["Content-Type"] = (reply.headers.get("Content-Type") or "").split(";")[0]
    headers["has correlation id"] = reply.headers.get("X-Pyro-Correlation-Id") is not None
    body = reply.body
    if headers["Content-Type"] == "text/html":
        body = "(a page)"
    elif headers["Content-Type"] == "application/json" and body:
        body = reply.json()
        if isinstance(body, dict) and body.get("__exception__"):
            body["attributes"] = sorted(body["attributes"])
        if isinstance(body, dict) and set(body) == {"methods", "attributes"}:
            body = {key: sorted(value) for key, value in body.items()}
    return reply.status, headers, body


@pytest.mark.parametrize("method,path,headers", SAME_AS_PYRO5, ids=["%s %s%s" % (m, p, " " + str(h) if h else "")
                                                                     for m, p, h in SAME_AS_PYRO5])
def test_same_answer_as_pyro5(gateway, pyro5_gateway, method, path, headers):
    ours, theirs = gateway.request(path, method, headers=headers), pyro5_gateway.request(path, method, headers=headers)
    if "/http.gone/" in path:  # each client words the refused connection its own way; the class must agree
        assert ours.json()["__class__"] == theirs.json()["__class__"] == "Pyro5.errors.CommunicationError"
        ours.body = theirs.body = b"{}"
    assert comparable(ours) == comparable(theirs)


STRICT_AS_PYRO5 = [
    ("GET", "/pyro/http.calc/echo?message=hi", {}),
    ("GET", "/pyro/http.calc/echo?message=hi", {"X-Pyro-Gateway-Key": "wrong"}),
    ("GET", "/pyro/http.calc/echo?message=hi", {"X-Pyro-Gateway-Key": "s3cret"}),
    ("GET", "/pyro/http.calc/echo?message=hi&$key=s3cret", {}),
    ("POST", "/pyro/http.calc/echo?message=hi&$key=wrong", {}),
    ("GET", "/pyro/http.greeter/greet", {"X-Pyro-Gateway-Key": "s3cret"}),
    ("GET", "/pyro/other.secret/greet", {}),
    ("GET", "/pyro/Pyro.NameServer/list?prefix=http.", {"X-Pyro-Gateway-Key": "s3cret"}),
    ("GET", "/pyro/Pyro.NameServer/$meta", {"X-Pyro-Gateway-Key": "s3cret"}),
    ("OPTIONS", "/pyro/http.calc/echo", {}),
    ("GET", "/pyro/", {}),
]


@pytest.fixture
def strict_pyro5_gateway(pyro5_gateway):
    """Pyro5's gateway with the options of ``strict_gateway`` (its settings are module globals: restored after)."""
    from Pyro5.utils.httpgateway import pyro_app as app
    saved = app.gateway_key, app.cors, app.ns_regex, app.comm_timeout
    app.gateway_key, app.cors, app.ns_regex, app.comm_timeout = b"s3cret", "https://app.example", \
        r"http\.calc$|Pyro\.NameServer$", 1.0
    yield pyro5_gateway
    app.gateway_key, app.cors, app.ns_regex, app.comm_timeout = saved


@pytest.mark.parametrize("method,path,headers", STRICT_AS_PYRO5, ids=["%s %s%s" % (m, p, " " + str(h) if h else "")
                                                                       for m, p, h in STRICT_AS_PYRO5])
def test_same_answer_as_pyro5_with_options(strict_gateway, strict_pyro5_gateway, method, path, headers):
    ours = strict_gateway.request(path, method, headers=headers)
    theirs = strict_pyro5_gateway.request(path, method, headers=headers)
    assert comparable(ours) == comparable(theirs)


def test_calls_and_properties(gateway):
    reply = gateway.request("/pyro/http.calc/add?a=1&b=2")
    assert (reply.status, reply.json()) == (200, "12")  # query parameters are strings
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert gateway.request("/pyro/http.calc/echo?message=hi", "POST").json() == "hi"
    assert gateway.request("/pyro/http.calc/shapes").json() == {
        "list": [1, 2], "tuple": [3, 4], "none": None, "float": 1.5, "text": "\u00e9t\u00e9", "flag": True}
    assert gateway.request("/pyro/http.calc/label").json() == "calculator"
    meta = gateway.request("/pyro/http.calc/$meta").json()
    assert set(meta) == {"methods", "attributes"} and meta["attributes"] == ["label"]
    assert {"add", "echo", "note", "fail"} <= set(meta["methods"])


def test_errors_are_500_with_the_exception_as_json(gateway):
    reply = gateway.request("/pyro/http.calc/fail?why=broken")
    assert reply.status == 500 and reply.headers["Content-Type"] == "application/json; charset=utf-8"
    error = reply.json()
    assert (error["__class__"], error["__exception__"], error["args"]) == ("builtins.ValueError", True, ["broken"])
    assert "raise ValueError(why)" in "".join(error["attributes"]["_pyroTraceback"])
    assert "X-Pyro-Correlation-Id" not in reply.headers
    unknown = gateway.request("/pyro/http.nothere/echo?message=x")
    assert unknown.status == 500
    assert (unknown.json()["__class__"], unknown.json()["args"]) == ("Pyro5.errors.NamingError",
                                                                     ["unknown name: http.nothere"])
    attribute = gateway.request("/pyro/http.calc/_pyroRelease")  # the proxy's own names are not the object's
    assert attribute.status == 500 and attribute.json()["__class__"] == "builtins.AttributeError"


def test_not_found_and_methods(gateway):
    for path in ("/pyro/http.calc", "/pyro/http.calc/", "/pyro", "/static/x"):
        reply = gateway.request(path)
        assert (reply.status, reply.body) == (404, b"Error 404: Not Found"), path
    for method in ("PUT", "DELETE", "PATCH"):
        assert gateway.request("/pyro/http.calc/echo", method).status == 405
    options = gateway.request("/pyro/http.calc/echo", "OPTIONS")
    assert options.status == 200 and options.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Pyro-Gateway-Key" in options.headers["Access-Control-Allow-Headers"]
    redirect = gateway.request("/")
    assert (redirect.status, redirect.headers["Location"]) == (302, "/pyro/")


def test_expose_regex(gateway):
    reply = gateway.request("/pyro/other.secret/greet")
    assert (reply.status, reply.body) == (403, b"403 Forbidden - access to the requested object has been denied")
    assert gateway.request("/pyro/Pyro.NameServer/list").status == 403


def test_correlation_id(gateway):
    given = str(uuid.uuid4())
    reply = gateway.request("/pyro/http.calc/correlation", headers={"X-Pyro-Correlation-Id": given})
    assert reply.headers["X-Pyro-Correlation-Id"] == given
    assert reply.json() == given  # the object saw it in its call context
    made = [gateway.request("/pyro/http.calc/correlation") for _ in range(2)]
    assert made[0].json() != made[1].json()
    for reply in made:
        assert str(uuid.UUID(reply.headers["X-Pyro-Correlation-Id"])) == reply.json()
    bad = gateway.request("/pyro/http.calc/fast", headers={"X-Pyro-Correlation-Id": "nope"})
    assert bad.status == 500 and bad.json()["__class__"] == "builtins.ValueError"


def test_oneway(gateway):
    token = uuid.uuid4().hex
    declared = gateway.request("/pyro/http.calc/note?text=" + token)  # note is @oneway on the object
    assert (declared.status, declared.body) == (200, b"")
    assert declared.headers["X-Pyro-Correlation-Id"]
    assert wait_until(lambda: token in gateway.request("/pyro/http.calc/notes_taken").json())
    forced = gateway.request("/pyro/http.calc/sleep?seconds=3", headers={"X-Pyro-Options": "oneway"})
    assert (forced.status, forced.body) == (200, b"")  # answered at once, not after the 3 seconds
    assert gateway.request("/pyro/http.calc/echo?message=x", headers={"X-Pyro-Options": "oneway"}).body == b""


def test_post_bodies(gateway):
    """Beyond Pyro5 (which reads only the query string): a JSON object in a POST body. Every other body is
    ignored, as by Pyro5: an HTML form that posts its fields along with a query string still works."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    as_json = {"Content-Type": "application/json"}
    assert gateway.request("/pyro/http.calc/add?a=1&b=2", "POST", "submit=Go", form).json() == "12"
    assert gateway.request("/pyro/http.calc/add", "POST", json.dumps({"a": 1, "b": 2}), as_json).json() == 3
    assert gateway.request("/pyro/http.calc/add?a=x", "POST", '{"b": "y"}', as_json).json() == "xy"
    assert gateway.request("/pyro/http.calc/add", "POST", '{"a": [1], "b": [2]}', as_json).json() == [1, 2]
    assert gateway.request("/pyro/http.calc/fast", "POST", "", as_json).json() == "fast"  # empty: no arguments
    assert gateway.request("/pyro/http.calc/fast", "POST", "ignored", {"Content-Type": "text/plain"}).json() == "fast"
    for body in ("[1, 2]", "{not json", '"text"'):
        assert gateway.request("/pyro/http.calc/add?a=1&b=2", "POST", body, as_json).json() == "12", body


def test_index_page(gateway):
    reply = gateway.request("/pyro/")
    assert reply.status == 200 and reply.headers["Content-Type"] == "text/html; charset=utf-8"
    page = reply.body.decode("utf-8")
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("<tbody>")[1])
    names = [re.search(r'data-member="\$meta" data-now>(.*?)</button>', row).group(1) for row in rows]
    assert names == ["http.&lt;b&gt;bold&lt;/b&gt;", "http.calc", "http.gone", "http.greeter"]  # escaped, sorted
    assert "<b>bold</b>" not in page and "other.secret" not in page
    calc = rows[1]
    for method in ("add", "echo", "note", "sleep"):
        assert 'data-member="%s">%s</button>' % (method, method) in calc
    assert 'data-member="label" data-now>label</button>' in calc  # the attribute
    assert calc.endswith("<td>note</td>")  # the oneway column
    assert 'class="error">CommunicationError' in rows[2]  # an object that is gone is named, not hidden
    assert "http\\." in page and "showing 4 of 4" in page


def test_hub_stays_free_while_a_backend_call_blocks(gateway):
    """A call that blocks its backend thread holds up its own HTTP request only: other requests are answered
    while it still blocks (it blocks until woken, or 30 s)."""
    token = uuid.uuid4().hex
    slow = concurrent.futures.ThreadPoolExecutor(1)
    pending = slow.submit(gateway.request, "/pyro/http.calc/sleep?seconds=30&token=" + token)
    try:
        assert wait_until(lambda: gateway.request("/pyro/http.calc/sleeping?token=" + token).json() is True, 5)
        assert gateway.request("/pyro/http.calc/fast").json() == "fast"
        assert not pending.done(), "the fast call was answered only after the blocking one ended"
    finally:
        gateway.request("/pyro/http.calc/wake?token=" + token)
        slow.shutdown()
    assert pending.result(10).json() == "slept"


def test_concurrent_requests_each_get_their_own_answer(gateway):
    def call(number):
        return gateway.request("/pyro/http.calc/echo?message=%d" % number).json()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert list(pool.map(call, range(80))) == [str(n) for n in range(80)]


# --- the options ---------------------------------------------------------------------------------------------------

def test_gateway_key(strict_gateway):
    path = "/pyro/http.calc/echo?message=hi"
    for headers in ({}, {"X-Pyro-Gateway-Key": "wrong"}):
        reply = strict_gateway.request(path, headers=headers)
        assert (reply.status, reply.body) == (403, b"403 Forbidden - incorrect gateway api key")
    assert strict_gateway.request(path, headers={"X-Pyro-Gateway-Key": "s3cret"}).json() == "hi"
    assert strict_gateway.request(path + "&$key=s3cret").json() == "hi"  # $key is not passed on to echo
    assert strict_gateway.request(path + "&$key=wrong").status == 403
    assert strict_gateway.request("/pyro/").status == 200  # the page needs no key (as in Pyro5)


def test_cors_expose_and_timeout_options(strict_gateway):
    key = {"X-Pyro-Gateway-Key": "s3cret"}
    reply = strict_gateway.request("/pyro/http.calc/fast", headers=key)
    assert reply.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert strict_gateway.request("/pyro/http.greeter/greet", headers=key).status == 403
    listing = strict_gateway.request("/pyro/Pyro.NameServer/list?prefix=http.", headers=key)
    assert listing.status == 200 and "http.calc" in listing.json()
    before = time.monotonic()
    timeout = strict_gateway.request("/pyro/http.calc/sleep?seconds=4", headers=key)
    assert timeout.status == 500 and timeout.json()["__class__"] == "Pyro5.errors.TimeoutError"
    assert time.monotonic() - before < 3.5


def test_command_line_options(capsys):
    with pytest.raises(SystemExit) as stopped:
        httpgateway.main(["--help"])
    assert stopped.value.code == 0
    usage = capsys.readouterr().out
    for option in ("-H HOST", "-c CORS", "-p PORT", "-e EXPOSE", "-g GATEWAYKEY", "-t TIMEOUT"):
        assert option in usage


# --- pyro_app mounted in another WSGI server -----------------------------------------------------------------------

def test_pyro_app_settings_default_as_in_pyro5():
    app = httpgateway.pyro_app
    assert (app.ns_regex, app.cors, app.gateway_key) == (r"http\.", "", None)
    assert isinstance(app.comm_timeout, float)  # config.COMMTIMEOUT when the module was imported
    assert httpgateway.__all__ == ["pyro_app", "main"]


def test_pyro_app_embedded(embedded, clean_config):
    app = httpgateway.pyro_app
    reply = embedded.request("/pyro/http.calc/add?a=1&b=2")
    assert reply.json() == "12" and "Access-Control-Allow-Origin" not in reply.headers  # cors "": none
    app.ns_regex, app.cors = r"http\.greeter", "https://site.example"
    assert embedded.request("/pyro/http.calc/fast").status == 403
    greeted = embedded.request("/pyro/http.greeter/greet?name=wsgi")
    assert greeted.json() == "hello wsgi" and greeted.headers["Access-Control-Allow-Origin"] == "https://site.example"
    for key in (b"k3y", "k3y"):  # bytes as Pyro5's main sets it, or a str
        app.gateway_key = key
        assert embedded.request("/pyro/http.greeter/greet").status == 403
        assert embedded.request("/pyro/http.greeter/greet", headers={"X-Pyro-Gateway-Key": "k3y"}).status == 200
    app.gateway_key, app.ns_regex, app.comm_timeout = None, r"http\.", 0.5
    timeout = embedded.request("/pyro/http.calc/sleep?seconds=2")
    assert timeout.status == 500 and timeout.json()["__class__"] == "Pyro5.errors.TimeoutError"
    assert clean_config.SERIALIZER == "serpent" and clean_config.COMMTIMEOUT == 0.0  # global config untouched


def test_pyro_app_name_server_connection_lost(embedded):
    """A pooled name-server connection that was closed under it is replaced, and the request still succeeds."""
    assert embedded.request("/pyro/http.calc/fast").status == 200
    pooled = list(httpgateway._nameservers.idle)
    assert pooled
    for proxy in pooled:
        proxy._pyroConnection.sock.shutdown(socket.SHUT_RDWR)
    assert embedded.request("/pyro/http.calc/fast").json() == "fast"
    assert not {id(proxy) for proxy in pooled} & {id(proxy) for proxy in httpgateway._nameservers.idle}


def test_pyro_app_without_a_name_server(embedded, clean_config):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        clean_config.NS_PORT = sock.getsockname()[1]  # bound, not listening: refused
        clean_config.BROADCAST_ADDRS = []  # and no broadcast that another test's name server could answer
        page = embedded.request("/pyro/")
        assert page.status == 500 and page.headers["Content-Type"] == "text/plain"
        assert b"name server cannot be reached" in page.body
        call = embedded.request("/pyro/http.calc/fast")
        assert call.status == 500 and call.json()["__class__"] == "Pyro5.errors.NamingError"


# --- the page in a browser -----------------------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Chromium at %s (apt-get install chromium)" % CHROMIUM)
def test_index_page_in_headless_chromium(gateway, tmp_path):
    """The page's script runs: it fills the object list and makes the call named in the address."""
    url = gateway.url + "/pyro/#http.calc/echo?message=hello%20from%20chromium"
    done = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--user-data-dir=%s" % tmp_path, "--virtual-time-budget=10000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert "</html>" in dom, "chromium printed no page (exit %s): %s" % (done.returncode, done.stderr[-2000:])
    assert '<option value="http.calc">' in dom  # filled in by the script from the page's metadata
    assert re.search(r'<pre id="status" class="ok">200 OK\s+\(correlation id [0-9a-f-]{36}\)</pre>', dom), dom
    assert '<pre id="response">"hello from chromium"</pre>' in dom
    assert geopyro.__version__ in dom


def test_get_nameserver_hook_with_one_cached_proxy(monkeypatch):
    """Pyro5's hook may hand every request the same name-server object: each request claims it first."""
    from geopyro.nameserver import NameServer

    claims = []

    class CachedNameServer(NameServer):
        def _pyroClaimOwnership(self):
            claims.append(threading.get_ident())

    cached = CachedNameServer()
    cached.register("http.nowhere", "PYRO:x@127.0.0.1:1")
    monkeypatch.setattr(httpgateway, "get_nameserver", lambda: cached)
    answers = []

    def request():
        status = []
        body = b"".join(httpgateway.pyro_app({"PATH_INFO": "/pyro/http.nowhere/method", "REQUEST_METHOD": "GET",
                                               "QUERY_STRING": ""}, lambda s, h: status.append(s)))
        answers.append((status[0], json.loads(body)["__class__"]))

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [("500 Internal Server Error", "Pyro5.errors.CommunicationError")] * 2
    assert len(claims) == 2
