import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from cgmvae.pl import cluster_composition, image_grid, latent_umap, training_history


def test_image_grid_has_one_row_per_group(tmp_path):
    images = AnnData(np.random.default_rng(0).random((30, 16)).astype(np.float32))
    images.obs["cluster"] = np.repeat(["a", "b", "c"], 10)
    fig = image_grid(images, rows="cluster", n_per_row=4, path=tmp_path / "grid.png")
    assert len(fig.axes) == 3 * 4
    assert [fig.axes[i].get_title(loc="left") for i in (0, 4, 8)] == ["a", "b", "c"]
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_image_grid_rejects_non_square_without_shape():
    with pytest.raises(ValueError, match="image_shape"):
        image_grid(np.zeros((4, 10)))


def test_training_history_plots_each_logged_term(tmp_path):
    epochs = pd.RangeIndex(5, name="epoch")
    history = {
        "elbo_train": pd.DataFrame({"elbo_train": np.arange(5.0)}, index=epochs),
        "elbo_validation": pd.DataFrame({"elbo_validation": np.arange(5.0)}, index=epochs),
        "kl_z_train": pd.DataFrame({"kl_z_train": np.ones(5)}, index=epochs),
    }
    fig = training_history(history, tmp_path / "history.png")
    assert [ax.get_title() for ax in fig.axes] == ["elbo", "kl_z"]
    assert len(fig.axes[0].lines) == 2


def test_cluster_composition_rows_are_fractions_of_each_group(tmp_path):
    adata = AnnData(np.zeros((6, 2), dtype=np.float32))
    adata.obs["cluster"] = ["0", "0", "1", "1", "1", "1"]
    adata.obs["label"] = ["a", "a", "a", "b", "b", "b"]
    fig = cluster_composition(adata, "cluster", "label", path=tmp_path / "composition.png")
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, [[2 / 3, 1 / 3], [0.0, 1.0]])
    assert (tmp_path / "composition.png").stat().st_size > 0
    with pytest.raises(KeyError, match="'digit'"):
        cluster_composition(adata, "cluster", "digit")


def test_latent_umap_works_beyond_scanpys_exact_neighbour_limit():
    # above 4096 cells scanpy finds neighbours with pynndescent, whose 0.7 release broke it
    rng = np.random.default_rng(0)
    adata = AnnData(np.zeros((4200, 1), dtype=np.float32))
    adata.obsm["X_latent"] = rng.normal(size=(4200, 3)).astype(np.float32)
    adata.obs["group"] = pd.Categorical(rng.integers(0, 3, 4200).astype(str))
    fig = latent_umap(adata, "X_latent", ["group"])
    assert len(fig.axes) >= 1
    assert "neighbors" not in adata.uns
