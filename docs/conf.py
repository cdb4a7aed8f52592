"""Sphinx configuration for the offline documentation site; `python tools/docs.py` stages the notebooks and runs it.

The Quarto configuration `nbdev-docs` uses lives in `nbs/_quarto.yml` and `nbs/nbdev.yml`; this file is only for the
build without Quarto.
"""
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # docs/mathml.py

_pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
_nbdev = _pyproject["tool"]["nbdev"]

project = _nbdev.get("title", _pyproject["project"]["name"])
author = _pyproject["project"]["authors"][0]["name"]
copyright = f"{author}"
html_title = project
root_doc = "index"

extensions = ["myst_nb", "mathml"]
html_math_renderer = "mathml"  # MathML written at build time: no MathJax from a CDN
exclude_patterns = ["**/.ipynb_checkpoints"]

# notebooks arrive executed and processed by nbdev (tools/docs.py): render, never execute
nb_execution_mode = "off"
nb_render_markdown_format = "myst"   # show_doc and other markdown outputs, with tables and attributes
nb_merge_streams = True
myst_enable_extensions = ["attrs_inline", "attrs_block", "colon_fence", "dollarmath", "amsmath", "strikethrough"]
myst_heading_anchors = 3  # GitHub-style heading ids: show_doc headings get the anchors nbdev links to (`#distill_loss`)
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

html_theme = "furo"  # self-contained: no web fonts or scripts from other hosts
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_show_sourcelink = False
html_copy_source = False
