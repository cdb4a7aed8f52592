"""Sphinx math renderer that writes MathML at build time (latex2mathml), so formulas need no script from a CDN.

Browsers render MathML natively (Chromium since 109, Firefox, Safari); the page stays readable offline.
"""
from docutils import nodes
from latex2mathml.converter import convert
from sphinx.util.math import get_node_equation_number


def _mathml(latex: str, display: str) -> str:
    try: return convert(latex.strip(), display=display)
    except Exception: return f'<code class="math-source">{nodes.Text(latex).astext()}</code>'  # unsupported TeX: show it as code


def visit_math(self, node):
    self.body.append(self.starttag(node, "span", "", CLASS="math notranslate") + _mathml(node.astext(), "inline") + "</span>")
    raise nodes.SkipNode


def visit_displaymath(self, node):
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    if node.get("number"): self.body.append(f'<span class="eqno">({get_node_equation_number(self, node)})</span>')
    self.body.append(_mathml(node.astext(), "block") + "</div>\n")
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_displaymath, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
