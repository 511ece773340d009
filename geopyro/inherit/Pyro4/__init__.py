"""Pyro4 in a child process of a program run by geopyro.run: becomes geopyro (see geopyro.inherit)."""
import sys

from _geopyro_standin import become

sys.modules[__name__] = become(__name__)
