"""The documentation site: build it with `python tools/docs.py`, then open every page in headless Chromium.

A page that does not load, an image that does not show, a link inside the site to a page or anchor that does not
exist, a script error, or a request to another host (the site must work offline) fails the test; so does a
notebook without its page or an exported function without its documented signature.

Needs the `docs` extra (`pip install -e ".[dev,docs]"`) and Debian's Chromium (`apt-get install -y chromium`;
another binary: `CHROMIUM=/path/to/chrome`). Without them the test is skipped, except under CI (`CI` set),
where it fails.

Building the site executes every notebook (as long as the notebook tests take), so either check a site built
beforehand, `python tools/docs.py && DISTILL_L2S_SITE=_site python -m pytest tests/test_docs.py` (what CI does; the
check itself takes seconds), or let the test build one: `python -m pytest tests/test_docs.py --flags slow`.
"""
import ast
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # playwright adds --headless and a fresh --user-data-dir


def _missing() -> list[str]:
    miss = [m for m in ("sphinx", "myst_nb", "furo", "latex2mathml", "playwright") if importlib.util.find_spec(m) is None]
    if not Path(CHROMIUM).exists(): miss.append(f"chromium ({CHROMIUM})")
    return miss


if _missing():
    msg = f"the docs test needs {', '.join(_missing())}: pip install -e '.[dev,docs]'; apt-get install -y chromium"
    if os.environ.get("CI"): raise RuntimeError(msg)  # CI must run it, not skip it
    pytest.skip(msg, allow_module_level=True)

_spec = importlib.util.spec_from_file_location("docs_tool", ROOT / "tools" / "docs.py")
docs_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs_tool)

_PAGE_INFO = """async () => {
  const imgs = [...document.images];
  const ok = await Promise.all(imgs.map(i => { i.loading = 'eager'; return i.decode().then(() => i.naturalWidth > 0, () => false); }));
  return {
    ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat([...document.querySelectorAll('a[name]')].map(a => a.name)),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    images: imgs.map((i, k) => ({src: i.getAttribute('src'), ok: ok[k]})),
    text: document.body.innerText,
  };
}"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def site(request, tmp_path_factory) -> Path:
    "The built site: `DISTILL_L2S_SITE` if given, else a fresh build in a temporary folder (slow: runs every notebook)."
    if os.environ.get("DISTILL_L2S_SITE"):
        site = Path(os.environ["DISTILL_L2S_SITE"]).resolve()
        if not (site / "index.html").is_file(): pytest.fail(f"DISTILL_L2S_SITE={site} holds no built site (index.html)", pytrace=False)
        return site
    if "slow" not in request.config.getoption("--flags").replace(",", " ").split():
        pytest.skip("building the site runs every notebook: `pytest --flags slow`, or check a built one with DISTILL_L2S_SITE=_site")
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    if r.returncode: pytest.fail(f"python tools/docs.py failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}", pytrace=False)
    return out


@pytest.fixture(scope="module")
def crawl(site):
    "Every page of `site` opened in Chromium over a loopback server: {page path: info}, problems found, other hosts asked."
    from playwright.sync_api import sync_playwright
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    pages, problems, external = {}, [], set()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ctx = browser.new_context()
            def route(r):  # nothing leaves the machine: other hosts are refused and recorded
                if r.request.url.startswith(base) or r.request.url.startswith("data:"): return r.continue_()
                external.add(r.request.url)
                r.abort()
            ctx.route("**/*", route)
            page = ctx.new_page()
            current = [""]
            page.on("pageerror", lambda e: problems.append(f"{current[0]}: script error: {e}"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"{current[0]}: {r.url} answered {r.status}"))
            page.on("requestfailed", lambda r: r.url.startswith(base) and problems.append(f"{current[0]}: {r.url} failed: {r.failure}"))
            for f in sorted(site.rglob("*.html")):
                rel = current[0] = f.relative_to(site).as_posix()
                resp = page.goto(base + rel, wait_until="load")
                if resp is None or not resp.ok:
                    problems.append(f"{rel}: did not load ({resp and resp.status})")
                    continue
                pages[rel] = page.evaluate(_PAGE_INFO)
            browser.close()
    finally:
        server.shutdown()
    return base, pages, problems, external


def test_pages_load_without_errors_or_other_hosts(crawl):
    base, pages, problems, external = crawl
    assert "index.html" in pages, "no home page"
    if external: problems.append("pages ask other hosts (the site must work offline):\n" + "\n".join(sorted(external)))
    assert not problems, "\n".join(problems)


def test_images_show(crawl):
    base, pages, _, _ = crawl
    broken = [f"{rel}: {img['src']}" for rel, info in pages.items() for img in info["images"] if not img["ok"]]
    assert not broken, "images that do not show:\n" + "\n".join(broken)


def test_internal_links_resolve(site, crawl):
    base, pages, _, _ = crawl
    broken = []
    for rel, info in pages.items():
        for href in info["links"]:
            if not href.startswith(base): continue  # other hosts: not reachable offline, not checked
            parts = urlsplit(href)
            target = unquote(parts.path[len(urlsplit(base).path):]) or "index.html"
            if target.endswith("/"): target += "index.html"
            if not (site / target).is_file(): broken.append(f"{rel}: {href} (no such file)")
            elif parts.fragment and target in pages and unquote(parts.fragment) not in pages[target]["ids"]:
                broken.append(f"{rel}: {href} (no anchor #{parts.fragment})")
    assert not broken, "broken links inside the site:\n" + "\n".join(broken)


def test_every_notebook_has_a_page_and_folders_their_section(site, crawl):
    _, pages, _, _ = crawl
    nbs = ROOT / "nbs"
    rels = docs_tool.find_notebooks(nbs)
    missing = [str(r) for r in rels if docs_tool.page_name(r).with_suffix(".html").as_posix() not in pages]
    assert not missing, f"notebooks without a page: {missing}"
    home = (site / "index.html").read_text(encoding="utf-8")
    for folder in {r.parent.as_posix() for r in rels if len(r.parts) > 1}:
        assert f'<span class="caption-text">{docs_tool._section_name(folder)}</span>' in home, f"no section for nbs/{folder}"


def _public(py: Path) -> set[str]:
    "Names in the `__all__` nbdev writes into the generated module `py` (what `#| export` cells define)."
    for node in ast.parse(py.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def test_exported_functions_documented(crawl):
    "Every exported function and class has an anchor where nbdev's doc links point, followed by its signature."
    from distill_l2s._modidx import d
    _, pages, _, _ = crawl
    missing = []
    for mod, syms in d["syms"].items():
        public = _public(ROOT / (mod.replace(".", "/") + ".py"))
        for sym, (url, _py) in syms.items():
            name = sym[len(mod) + 1:]
            if name not in public: continue  # private helpers and methods: nbdev shows no docs for them by itself
            page, anchor = url.split("#")
            info = pages.get(page)
            if info is None or anchor not in info["ids"] or f"{name}(" not in info["text"]: missing.append(f"{sym} ({url})")
    assert not missing, "exported names without their documentation:\n" + "\n".join(missing)


_TYPOGRAPHY = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u2013": "--",
                             "\u2014": "---"})


def _plain(md: str) -> str:
    "The text a Markdown line shows: code marks, emphasis and link targets removed, spaces collapsed."
    md = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md)
    md = md.translate(_TYPOGRAPHY)  # Pandoc's smart typography: 's → ’s, ... → …
    return " ".join(re.sub(r"[`*_]", "", md).split())


def test_summaries_shown_whole(crawl):
    "Every page shows its notebook's whole `>` summary (nbdev reads one line: a summary over several lines lost the rest)."
    _, pages, _, _ = crawl
    nbs, cut = ROOT / "nbs", []
    for rel in docs_tool.find_notebooks(nbs):
        summary, rest = docs_tool.summary(nbs / rel)
        page = pages.get(docs_tool.page_name(rel).with_suffix(".html").as_posix())
        if summary is None or page is None: continue
        if rest or _plain(summary) not in _plain(page["text"]): cut.append(f"{rel}: {summary!r} + {rest}")
    assert not cut, "summaries not shown whole:\n" + "\n".join(cut)
