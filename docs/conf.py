"""Sphinx configuration for the cgmvae documentation."""

from importlib.metadata import version as _version

project = "cgmvae"
author = "cgmvae developers"
release = _version("cgmvae")

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
autosummary_generate = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
myst_enable_extensions = ["dollarmath"]
html_theme = "furo"
exclude_patterns = ["_build"]


def _citation_as_text(name, rawtext, text, lineno, inliner, options=None, content=None):
    """Render scvi-tools' ``:cite:p:`key``` roles (in inherited docstrings) as plain text."""
    from docutils import nodes

    return [nodes.Text(f"[{text}]")], []


def setup(app):
    """Register the roles inherited docstrings use."""
    app.add_role("cite:p", _citation_as_text)
