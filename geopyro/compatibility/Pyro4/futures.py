"""Pyro4's futures: run a callable in the background and chain work onto its result.

``Future(callable)`` is called like the callable and returns a ``FutureResult``
at once; ``then()`` and ``iferror()`` registered beforehand apply to it, and
``delay()`` postpones the start. The results of asynchronous proxy calls are
FutureResults too (geopyro's client Future).
"""

import time

from geopyro.client import Future as FutureResult

__all__ = ["Future", "FutureResult", "_ExceptionWrapper"]

from geopyro.core import _ExceptionWrapper  # noqa: E402, F401


class Future:
    """A callable that runs in the background when called, and returns a FutureResult."""

    def __init__(self, somecallable):
        self.callable = somecallable
        self.chain = []
        self.exceptionhandler = None
        self.call_delay = 0
        self.cancelled = False
        self.completed = False

    def __call__(self, *args, **kwargs):
        if self.completed:
            raise RuntimeError("Future can only be called once")
        if self.cancelled:
            raise RuntimeError("Future has been cancelled")
        self.completed = True
        result = FutureResult(self.__run, args, kwargs)
        for call, call_args, call_kwargs in self.chain:
            result = result.then(call, *call_args, **call_kwargs)
        if self.exceptionhandler is not None:
            result.iferror(self.exceptionhandler)
        return result

    def __run(self, args, kwargs):
        if self.call_delay:
            time.sleep(self.call_delay)
        return self.callable(*args, **kwargs)

    def delay(self, seconds):
        """Start the call ``seconds`` after the Future is called; False if that is too late to say."""
        if self.completed:
            return False
        self.call_delay = seconds
        return True

    def cancel(self):
        """Cancel the call if it has not started; False if it has."""
        if self.completed:
            return False
        self.cancelled = True
        return True

    def then(self, call, *args, **kwargs):
        """Chain ``call(result, *args, **kwargs)`` onto the result."""
        self.chain.append((call, args, kwargs))
        return self

    def iferror(self, exceptionhandler):
        """Call ``exceptionhandler(exception)`` if the call (or a chained one) fails."""
        self.exceptionhandler = exceptionhandler
        return self
