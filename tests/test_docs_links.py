"""docs/check_links.py, the documentation's link check (tox -e docs runs it on the built site)."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "docs"))

import check_links  # noqa: E402


def write(root, path, body):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as f:
        f.write("<html><body>%s</body></html>" % body)


def sound_site(root):
    write(str(root), "index.html", '<a href="intro.html">intro</a> <a href="api/server.html#Daemon">Daemon</a>'
                                    ' <a href="https://example.org/nowhere">elsewhere</a>')
    write(str(root), "intro.html", '<h1 id="top">intro</h1><a href="#top">top</a> <a href="index.html">home</a>')
    write(str(root), "api/server.html", '<dt id="Daemon">Daemon</dt><a href="../intro.html#top">intro</a>'
                                         '<img src="../_static/plot.png">')
    write(str(root), "_static/plot.png", "")
    write(str(root), "genindex.html", "index of names")


def test_a_sound_site_has_no_problems(tmp_path):
    sound_site(tmp_path)
    assert check_links.check(str(tmp_path)) == []
    assert check_links.main([str(tmp_path)]) == 0


def test_a_link_to_a_missing_page_is_reported(tmp_path):
    sound_site(tmp_path)
    write(str(tmp_path), "intro.html", '<h1 id="top">x</h1><a href="gone.html">gone</a>')
    assert check_links.check(str(tmp_path)) == ["intro.html: link to gone.html: no such file"]
    assert check_links.main([str(tmp_path)]) == 1


def test_a_link_to_a_missing_anchor_is_reported(tmp_path):
    sound_site(tmp_path)
    write(str(tmp_path), "api/server.html", '<dt id="Proxy">Proxy</dt><img src="../_static/plot.png">')
    problems = check_links.check(str(tmp_path))
    assert problems == ["index.html: link to api/server.html#Daemon: no anchor #Daemon in api/server.html"]


def test_a_missing_image_is_reported(tmp_path):
    sound_site(tmp_path)
    os.remove(os.path.join(str(tmp_path), "_static", "plot.png"))
    assert check_links.check(str(tmp_path)) == ["api/server.html: link to ../_static/plot.png: no such file"]


def test_a_page_the_index_does_not_link_is_reported(tmp_path):
    sound_site(tmp_path)
    write(str(tmp_path), "orphan.html", '<a href="index.html">home</a>')
    assert check_links.check(str(tmp_path)) == ["index.html does not link orphan.html"]


def test_relative_links_of_the_repositorys_markdown_files_resolve():
    """README.md and the other Markdown files outside the site are read on their own (on a code host, in a
    clone): each relative link must name a file that exists."""
    import re
    import subprocess
    link = re.compile(r'\]\(<?([^)#\s>]+)>?(?:#[^)\s]*)?(?:\s+"[^"]*")?\)')  # [text](path#anchor "title")
    listed = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the repository's own Markdown files are not known")
    missing = []
    for relative in listed.stdout.split():
        path = os.path.join(ROOT, relative)
        with open(path, encoding="utf-8") as f:
            for target in link.findall(f.read()):
                if "://" in target or target.startswith("mailto:"):
                    continue
                if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(path), target))):
                    missing.append("%s -> %s" % (relative, target))
    assert missing == []
