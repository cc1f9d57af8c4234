"""Importing cgmvae changes no other library's warnings or logging; training hides Lightning's
product tips and per-step deprecation warning only while it runs."""

import logging
import subprocess
import sys
import warnings

from cgmvae.train.quiet import LIGHTNING_LOGGER, quiet_lightning

IMPORT_CHANGES_NOTHING = """
import logging, warnings
# the dependencies first: their own filters are theirs
import anndata, igraph, lightning.pytorch, matplotlib.pyplot, scanpy, scvi, sklearn, torch, umap
filters = list(warnings.filters)
lightning_filters = list(logging.getLogger("{logger}").filters)
import cgmvae, cgmvae.data, cgmvae.metrics, cgmvae.models, cgmvae.pl, cgmvae.train
assert warnings.filters == filters, [f for f in warnings.filters if f not in filters]
assert logging.getLogger("{logger}").filters == lightning_filters
"""


def test_importing_cgmvae_leaves_warnings_and_other_loggers_alone():
    code = IMPORT_CHANGES_NOTHING.format(logger=LIGHTNING_LOGGER)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_quiet_lightning_hides_tips_banner_and_the_treespec_warning_only_inside(caplog):
    logger = logging.getLogger(LIGHTNING_LOGGER)
    tip, news = "💡 Tip: try another product", "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]"
    with caplog.at_level(logging.INFO, logger=LIGHTNING_LOGGER):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with quiet_lightning():
                logger.info(tip)
                logger.info("GPU available: False, used: False")
                logger.info(news)
                treespec = "`isinstance(treespec, LeafSpec)` is deprecated"
                warnings.warn(treespec, DeprecationWarning, stacklevel=1)
                warnings.warn("another warning", UserWarning, stacklevel=1)
        logger.info(tip)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [news, tip]
    assert [str(w.message) for w in seen] == ["another warning"]
    assert logger.filters == []


def test_training_a_small_model_says_what_it_starts_and_warns_nothing(
    sim_adata, quiet, logged, caplog
):
    from cgmvae import CGMVAE

    adata = sim_adata[:120].copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=2, n_hidden=16)
    with caplog.at_level(logging.INFO, logger=LIGHTNING_LOGGER):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            model.train(max_epochs=2, **quiet)
    lightning = [record.getMessage() for record in caplog.records]
    assert not [message for message in lightning if "available:" in message], lightning
    # Python hides ImportWarnings (umap's about TensorFlow) unless asked, as here
    shown = [str(w.message) for w in seen if not issubclass(w.category, ImportWarning)]
    assert not shown  # e.g. Lightning's logging interval or overridden hooks
    starts = [i for i, m in enumerate(logged) if m.startswith("Placing the mixture's 2")]
    ends = [i for i, m in enumerate(logged) if m.startswith("Placed the mixture's 2")]
    assert starts and ends and starts[0] < ends[0], logged
    assert any(m.startswith("Estimating the condition's effect") for m in logged), logged
