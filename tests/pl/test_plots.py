import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from matplotlib.axes import Axes

from cgmvae.pl import (
    cluster_composition,
    image_grid,
    latent_umap,
    n_clusters_selection,
    training_history,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_image_grid_is_one_mosaic_with_a_row_per_group(tmp_path):
    images = AnnData(np.random.default_rng(0).random((30, 16)).astype(np.float32))
    images.obs["cluster"] = np.repeat(["a", "b", "c"], 10)
    ax = image_grid(images, rows="cluster", n_per_row=4, show=False, save=tmp_path / "grid.png")
    mosaic = ax.images[0].get_array()
    assert mosaic.shape == (3 * 5 - 1, 4 * 5 - 1)  # 4 × 4 images, one pixel between them
    np.testing.assert_allclose(mosaic[5:9, 0:4], images.X[10].reshape(4, 4))  # b's first
    assert [label.get_text() for label in ax.get_yticklabels()] == ["a", "b", "c"]
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_image_grid_rejects_non_square_without_shape():
    with pytest.raises(ValueError, match="image_shape"):
        image_grid(np.zeros((4, 10)), show=False)


def test_training_history_plots_each_logged_term_on_given_axes(tmp_path):
    epochs = pd.RangeIndex(5, name="epoch")
    history = {
        "elbo_train": pd.DataFrame({"elbo_train": np.arange(5.0)}, index=epochs),
        "elbo_validation": pd.DataFrame({"elbo_validation": np.arange(5.0)}, index=epochs),
        "kl_z_train": pd.DataFrame({"kl_z_train": np.ones(5)}, index=epochs),
    }
    axes = training_history(history, show=False, save=tmp_path / "history.png")
    assert [ax.get_title() for ax in axes] == ["elbo", "kl_z"]
    assert len(axes[0].lines) == 2
    assert (tmp_path / "history.png").stat().st_size > 0
    _, mine = plt.subplots(1, 2)
    assert training_history(history, ax=mine, show=False) == list(mine)
    with pytest.raises(ValueError, match=r"training_history draws 2 panel.*ax= gives 1"):
        training_history(history, ax=mine[0], show=False)


def test_cluster_composition_rows_are_fractions_of_each_group(tmp_path):
    adata = AnnData(np.zeros((6, 2), dtype=np.float32))
    adata.obs["cluster"] = ["0", "0", "1", "1", "1", "1"]
    adata.obs["label"] = ["a", "a", "a", "b", "b", "b"]
    _, mine = plt.subplots()
    ax = cluster_composition(
        adata, "cluster", "label", ax=mine, show=False, save=tmp_path / "composition.png"
    )
    assert ax is mine
    np.testing.assert_allclose(ax.images[0].get_array(), [[2 / 3, 1 / 3], [0.0, 1.0]])
    assert (tmp_path / "composition.png").stat().st_size > 0
    with pytest.raises(KeyError, match="'digit'"):
        cluster_composition(adata, "cluster", "digit", show=False)


def test_n_clusters_selection_marks_the_chosen_k():
    table = pd.DataFrame(
        {"heldout_elbo": [-10.0, -9.0, -9.1], "standard_error": [0.1, 0.1, 0.1],
         "clusters_used": [2, 4, 5], "chosen": [False, True, False]},
        index=pd.Index([2, 4, 6], name="n_clusters"),
    )  # fmt: skip
    elbo_ax, used_ax = n_clusters_selection(table, show=False)
    assert elbo_ax.get_legend().get_texts()[0].get_text() == "chosen K = 4"
    np.testing.assert_array_equal(used_ax.lines[0].get_ydata(), [2, 4, 5])


def test_show_true_shows_and_returns_nothing(monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))
    adata = AnnData(np.zeros((4, 2), dtype=np.float32))
    adata.obs["cluster"] = ["0", "0", "1", "1"]
    assert cluster_composition(adata, "cluster", "cluster", show=True) is None
    assert shown == [True]


def test_latent_umap_keeps_its_neighbours_and_umap_under_its_own_keys():
    # above 4096 cells scanpy finds neighbours with pynndescent, whose 0.7 release broke it
    rng = np.random.default_rng(0)
    adata = AnnData(np.zeros((4200, 1), dtype=np.float32))
    adata.obsm["X_latent"] = rng.normal(size=(4200, 3)).astype(np.float32)
    adata.obs["group"] = pd.Categorical(rng.integers(0, 3, 4200).astype(str))
    axes = latent_umap(adata, "X_latent", ["group", "group"], show=False)
    assert len(axes) == 2 and all(isinstance(ax, Axes) for ax in axes)
    assert adata.obsm["X_latent_umap"].shape == (4200, 2)
    assert adata.uns["latent_neighbors"]["params"]["use_rep"] == "X_latent"
    assert adata.obsp["latent_neighbors_connectivities"].shape == (4200, 4200)
    assert "neighbors" not in adata.uns and "X_umap" not in adata.obsm
    latent_umap(adata, "X_latent", ["group"], key_added="second", show=False)
    assert "X_second_umap" in adata.obsm and "second_neighbors" in adata.uns


def test_latent_umap_of_tens_of_thousands_of_cells_searches_neighbours_exactly(monkeypatch):
    """Above 8,192 cells scanpy would run pynndescent, which compiles in every process."""
    import pynndescent

    def refuse(*args, **kwargs):
        raise AssertionError("pynndescent was used")

    monkeypatch.setattr(pynndescent, "PyNNDescentTransformer", refuse)
    groups = np.repeat(np.arange(3), 2800)
    adata = AnnData(np.zeros((groups.size, 1), dtype=np.float32))
    adata.obsm["X_latent"] = (10.0 * np.eye(3)[groups]).astype(np.float32)
    adata.obsm["X_latent"] += np.random.default_rng(0).normal(size=(groups.size, 3))
    adata.obs["group"] = pd.Categorical(groups.astype(str))
    latent_umap(adata, "X_latent", ["group"], show=False)
    plt.close("all")
    neighbours = adata.obsp["latent_neighbors_distances"]
    same_group = groups[neighbours.nonzero()[0]] == groups[neighbours.nonzero()[1]]
    assert neighbours.shape == (8400, 8400) and same_group.all()
