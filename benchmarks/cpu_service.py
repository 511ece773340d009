"""The benchmark service as ``geopyro-serve`` loads it (``benchmarks.cpu_service:Service``): benchmarks.server's
service class on geopyro, for the CPU-bound scenario's worker processes."""

import gevent

import geopyro.api as api
from benchmarks.server import make_service

Service = make_service(api, gevent.sleep)
