import numpy as np
import pandas as pd
import pytest

from cgmvae import CGMVAE, VAE, select_n_clusters
from cgmvae.pl import n_clusters_selection


@pytest.fixture(scope="module")
def selection(quiet, sim_adata):
    adata = sim_adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    before = adata.copy()
    table = select_n_clusters(adata, [2, 4, 8], train_kwargs={"max_epochs": 60, **quiet})
    return table, adata, before


@pytest.mark.quality
def test_the_held_out_elbo_chooses_the_simulated_number_of_clusters(selection):
    table, _, _ = selection
    assert table.attrs["n_clusters"] == 4, table
    assert table.index.tolist() == [2, 4, 8]
    assert table["chosen"].sum() == 1 and table.loc[4, "chosen"]
    assert (
        table.loc[2, "heldout_elbo"]
        < table.loc[4, "heldout_elbo"] - table.loc[2, "standard_error"]
    )
    assert table.loc[4, "clusters_used"] == 4


def test_selection_leaves_the_anndata_as_it_was(selection):
    _, adata, before = selection
    assert list(adata.obs.columns) == list(before.obs.columns)
    assert set(adata.obsm) == set(before.obsm) and set(adata.layers) == set(before.layers)
    assert (adata.layers["counts"] != before.layers["counts"]).nnz == 0


def test_selection_plot_marks_the_chosen_k(selection, tmp_path):
    table, _, _ = selection
    elbo_ax, _ = n_clusters_selection(table, show=False, save=tmp_path / "k.png")
    assert (tmp_path / "k.png").stat().st_size > 0
    assert "chosen K = 4" in [t.get_text() for t in elbo_ax.get_legend().get_texts()]


def test_selection_plot_names_the_table_it_needs():
    with pytest.raises(ValueError, match="select_n_clusters"):
        n_clusters_selection(pd.DataFrame({"heldout_elbo": [1.0]}), show=False)


@pytest.mark.parametrize("candidates", [[4], [4, 4], [1, 4], []])
def test_too_few_candidates_are_refused(sim_adata, candidates):
    with pytest.raises(ValueError, match="at least two distinct values"):
        select_n_clusters(sim_adata, candidates)


def test_a_model_without_a_mixture_is_refused(sim_adata):
    with pytest.raises(TypeError, match="GMVAE or CGMVAE"):
        select_n_clusters(sim_adata, [2, 4], model_cls=VAE)


OWNED = [("model_kwargs", {"n_clusters": 3}), ("train_kwargs", {"train_size": 0.5})]


@pytest.mark.parametrize(("keyword", "value"), OWNED)
def test_selection_owns_k_and_the_split(sim_adata, keyword, value):
    with pytest.raises(ValueError, match="to select_n_clusters itself"):
        select_n_clusters(sim_adata, [2, 4], **{keyword: value})


def test_selection_needs_held_out_cells(sim_adata):
    with pytest.raises(ValueError, match="no held-out cells"):
        select_n_clusters(sim_adata, [2, 4], train_size=1.0)


def test_one_standard_error_rule_prefers_the_smaller_of_two_close_ks():
    from cgmvae.models.selection import _one_standard_error_table

    rng = np.random.default_rng(0)
    base = rng.normal(-100.0, 5.0, size=500)
    noise = rng.normal(0.0, 1.0, size=500)
    per_cell = {2: base - 3.0, 4: base, 8: base + 0.02 + noise - noise.mean()}
    table = _one_standard_error_table(per_cell, {2: 2, 4: 4, 8: 8})
    assert table["heldout_elbo"].idxmax() == 8
    assert table.attrs["n_clusters"] == 4
