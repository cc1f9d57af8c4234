"""Sphinx configuration for the cgmvae documentation."""

import importlib.util
import os
from importlib.metadata import version as _version
from pathlib import Path

project = "cgmvae"
author = "cgmvae developers"
release = _version("cgmvae")

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
autosummary_generate = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
myst_enable_extensions = ["dollarmath"]
html_theme = "furo"
exclude_patterns = ["_build", "jupyter_execute", "tutorials/README.md", "**.ipynb_checkpoints"]

# Tutorials are rendered from the outputs stored in the notebooks, never re-executed here
# (`python tutorials/run.py` executes them).
nb_execution_mode = "off"
nb_merge_streams = True

# Links into the documentation of the packages cgmvae builds on. An offline build
# (CGMVAE_DOCS_OFFLINE=1, as in CI) skips them: the inventories cannot be fetched there.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
    "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
    "scvi": ("https://docs.scvi-tools.org/en/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
}
if os.environ.get("CGMVAE_DOCS_OFFLINE") == "1":
    intersphinx_mapping = {}


def _local_mathjax() -> Path | None:
    """MathJax 3 from the ``django-static-mathjax`` wheel (docs extra), if installed."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(spec.submodule_search_locations[0]) / "static"
    return static if (static / "mathjax" / "es5" / "tex-mml-chtml.js").is_file() else None


# Math renders without a CDN when MathJax is installed locally (the offline builds here).
html_static_path = []
if (_mathjax_static := _local_mathjax()) is not None:
    html_static_path.append(str(_mathjax_static))
    mathjax_path = "mathjax/es5/tex-mml-chtml.js"


def _citation_as_text(name, rawtext, text, lineno, inliner, options=None, content=None):
    """Render scvi-tools' ``:cite:p:`key``` roles (in inherited docstrings) as plain text."""
    from docutils import nodes

    return [nodes.Text(f"[{text}]")], []


def setup(app):
    """Register the roles inherited docstrings use."""
    app.add_role("cite:p", _citation_as_text)
