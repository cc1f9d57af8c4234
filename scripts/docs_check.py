"""Open the built documentation in headless Chromium and check what a reader would see.

For the home page, the model page (its formulas), the benchmarks page and every tutorial
page: a screenshot into ``docs/_build/screenshots/``, and the page as the browser rendered
it (after scripts ran, so after MathJax) is checked for images that do not load (a missing
local file), math that was not typeset (a ``math`` element MathJax did not replace) and
internal links to missing pages or anchors. Exits non-zero on any problem, naming each.

Usage: ``python scripts/docs_check.py [docs/_build]`` (``make docs-check`` builds first).
Needs Debian's ``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",
]


class PageParser(HTMLParser):
    """Collect image sources, link targets, element ids and math elements of a page."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.ids = [], [], set()
        self.math, self.typeset = 0, 0

    def handle_starttag(self, tag, attrs):  # noqa: D102
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "img" and attributes.get("src"):
            self.images.append(attributes["src"])
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if tag in ("span", "div") and "math" in (attributes.get("class") or "").split():
            self.math += 1
        if tag == "mjx-container":
            self.typeset += 1


def chromium() -> str:
    """Path of the Chromium binary, or exit with how to install it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    sys.exit("docs-check needs Chromium: apt-get install chromium")


def render(browser: str, page: Path, screenshot: Path) -> str:
    """Screenshot ``page`` and return its DOM after the browser ran its scripts."""
    with tempfile.TemporaryDirectory() as profile:
        common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        subprocess.run(
            [*common, "--window-size=1280,1600", f"--screenshot={screenshot}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        dom = subprocess.run(
            [*common, "--dump-dom", page.as_uri()],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    return dom.stdout


def page_problems(build: Path, page: Path, dom: str) -> list[str]:
    """List what is broken on ``page``: missing images, untypeset math, dead links."""
    parser = PageParser()
    parser.feed(dom)
    problems = []
    for source in parser.images:
        parts = urlsplit(source)
        if parts.scheme in ("", "file") and not (page.parent / unquote(parts.path)).is_file():
            problems.append(f"image does not load: {source}")
    if parser.typeset < parser.math:
        problems.append(f"{parser.math - parser.typeset} of {parser.math} formulas not typeset")
    for link in parser.links:
        parts = urlsplit(link)
        if parts.scheme or link.startswith("mailto:"):
            continue
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not target.is_file():
            problems.append(f"dead link: {link}")
        elif parts.fragment and target == page and parts.fragment not in parser.ids:
            problems.append(f"dead anchor: {link}")
    return problems


def main() -> None:
    """Check the home page, the benchmarks page and every tutorial page."""
    build = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build").resolve()
    pages = [build / "index.html", build / "model.html", build / "benchmarks.html"]
    pages += sorted((build / "tutorials").glob("*.html"))
    missing = [str(page) for page in pages if not page.is_file()]
    if missing or len(pages) < 3:
        sys.exit(f"Build the docs first (make docs); missing: {', '.join(missing) or 'tutorials'}")
    shots = build / "screenshots"
    shots.mkdir(exist_ok=True)
    browser, failures = chromium(), 0
    for page in pages:
        screenshot = (
            shots / f"{page.relative_to(build).with_suffix('').as_posix().replace('/', '_')}.png"
        )
        problems = page_problems(build, page, render(browser, page, screenshot))
        failures += len(problems)
        print(f"{page.relative_to(build)}: {'ok' if not problems else 'PROBLEMS'} ({screenshot})")
        for problem in problems:
            print(f"  - {problem}")
    if failures:
        sys.exit(f"docs-check: {failures} problem(s)")


if __name__ == "__main__":
    main()
