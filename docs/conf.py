"""Sphinx configuration of geopyro's documentation (``tox -e docs`` builds it)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import geopyro  # noqa: E402  (after the path is set, so a source checkout documents itself)

project = "geopyro"
author = "the geopyro authors"
copyright = "2026, the geopyro authors"
version = release = geopyro.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "requirements.txt", "check_links.py"]

# MyST: header anchors let pages link to each other's sections; ':::' fences for notes.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# ignore-module-all: a module documents what it defines; names it re-exports are documented where they live.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True,
                           "ignore-module-all": True}
autodoc_typehints = "description"
autoclass_content = "both"

# The doctests run in one process with nothing monkey-patched, as an ordinary Pyro5 program runs.
doctest_global_setup = "import geopyro.api as api"

html_theme = "sphinx_rtd_theme"
html_title = "geopyro " + release
html_static_path = []
html_extra_path = ["conformance-report.html"]
html_theme_options = {"navigation_depth": 3, "collapse_navigation": False}

# Every cross-reference must resolve (sphinx-build -n -W), except to private base classes that
# show-inheritance names and to the standard library's and gevent's classes (the build fetches no
# inventories from other sites).
nitpicky = True
nitpick_ignore_regex = [("py:class", r"geopyro\..*\._\w+"),
                        ("py:class", r"(threading|socket|ssl|selectors|logging|concurrent\.futures|gevent)\..*")]

# Exception messages are compared too (Sphinx's default ignores their detail).
import doctest  # noqa: E402
doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1
