"""Check the built HTML site: every internal link and anchor resolves, and the index reaches every page.

Run after ``sphinx-build -b html``: ``python docs/check_links.py docs/_build/html``. Links to other
sites are not fetched (the build machine may have no network); everything inside the site is.
"""

import argparse
import os
import sys
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

# Pages Sphinx makes by itself, which the index need not link.
GENERATED = {"genindex.html", "search.html", "py-modindex.html"}


class PageParser(HTMLParser):
    """Collects a page's link targets and the ids it defines."""

    def __init__(self):
        super().__init__()
        self.links = []
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for name in ("href", "src"):
            if attrs.get(name) and tag in ("a", "img", "link", "script"):
                self.links.append(attrs[name])


def parse(path):
    parser = PageParser()
    with open(path, encoding="utf-8") as f:
        parser.feed(f.read())
    return parser


def html_pages(root):
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".html"):
                yield os.path.relpath(os.path.join(folder, name), root)


def check(root):
    """Return a list of problems (empty when the site is sound)."""
    pages = {page: parse(os.path.join(root, page)) for page in html_pages(root)}
    problems = []
    linked_from_index = set()
    for page, parsed in sorted(pages.items()):
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue  # another site, or mailto:
            target = page if not parts.path else os.path.normpath(
                os.path.join(os.path.dirname(page), unquote(parts.path)))
            if os.path.isdir(os.path.join(root, target)):
                target = os.path.join(target, "index.html")
            if not os.path.exists(os.path.join(root, target)):
                problems.append(f"{page}: link to {link}: no such file")
                continue
            if page == "index.html":
                linked_from_index.add(target)
            fragment = unquote(parts.fragment)
            if fragment and target in pages and fragment not in pages[target].ids:
                problems.append(f"{page}: link to {link}: no anchor #{fragment} in {target}")
    for page in sorted(pages):
        top = os.path.basename(page)
        if page == "index.html" or page.startswith("_") or top in GENERATED:
            continue
        if page not in linked_from_index:
            problems.append(f"index.html does not link {page}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="the folder sphinx-build -b html wrote")
    args = parser.parse_args(argv)
    problems = check(args.root)
    for problem in problems:
        print(problem)
    count = sum(1 for _ in html_pages(args.root))
    if problems:
        print(f"{len(problems)} problems in {count} pages")
        return 1
    print(f"{count} pages: every internal link resolves and the index links every page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
