"""Benchmarks: geopyro against Pyro5 (and a raw gevent socket ceiling), same run, same machine.

Run ``python -m benchmarks`` (or ``python benchmarks/run.py``) from the repository root;
``--quick`` for a sub-minute smoke run. See benchmarks/RESULTS.md for the last full run.
"""
