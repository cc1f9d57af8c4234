import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi

from cgmvae import CGMVAE
from cgmvae.data import pbmc68k_reduced
from cgmvae.metrics import cluster_scores
from cgmvae.models.base import default_max_epochs


@pytest.fixture(scope="module")
def trained(quiet, sim_adata, seed):
    scvi.settings.seed = seed
    adata = sim_adata.copy()
    before = adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=4)
    model.train(max_epochs=60, **quiet)
    model.write_results(adata)
    return model, adata, before


def test_training_lowers_the_loss(trained):
    model, _, _ = trained
    elbo = model.history["elbo_train"].iloc[:, 0].to_numpy()
    assert elbo[-1] < 0.85 * elbo[0]
    assert elbo[-5:].mean() < elbo[10:15].mean()


@pytest.mark.quality
def test_clusters_recover_the_simulated_truth(trained):
    _, adata, _ = trained
    scores = cluster_scores(adata.obs["cluster"], adata.obs["cgmvae_cluster"])
    assert scores["ari"] >= 0.9, scores


def test_results_written_with_scverse_keys_and_dtypes(trained, tmp_path):
    _, adata, _ = trained
    latent = adata.obsm["X_cgmvae"]
    assert latent.shape == (adata.n_obs, 10) and latent.dtype == np.float32
    clusters = adata.obs["cgmvae_cluster"]
    assert isinstance(clusters.dtype, pd.CategoricalDtype)
    assert all(isinstance(c, str) for c in clusters.cat.categories)
    probs = adata.obsm["cgmvae_cluster_probs"]
    assert probs.shape == (adata.n_obs, 4)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1).astype(str), clusters.to_numpy())
    assert adata.uns["cgmvae"]["params"]["n_clusters"] == 4
    assert adata.uns["cgmvae"]["setup"]["condition_key"] == "condition"
    adata.write_h5ad(tmp_path / "out.h5ad")  # everything written must be h5ad-serialisable
    assert "X_cgmvae" in anndata.read_h5ad(tmp_path / "out.h5ad").obsm


def test_user_data_left_unchanged(trained):
    _, adata, before = trained
    assert (adata.X != before.X).nnz == 0
    assert (adata.layers["counts"] != before.layers["counts"]).nnz == 0
    for column in before.obs.columns:
        pd.testing.assert_series_equal(adata.obs[column], before.obs[column])


def test_cluster_methods_agree(trained):
    model, adata, _ = trained
    probs = model.get_cluster_probabilities()
    assert probs.shape == (adata.n_obs, 4)
    np.testing.assert_array_equal(model.get_cluster_assignments(), probs.argmax(1))


def test_kl_warmup_completes_within_training(trained):
    model, _, _ = trained
    kl_weight = model.history["kl_weight"].iloc[:, 0].dropna().to_numpy()
    assert kl_weight[0] < 0.5
    assert np.all(np.diff(kl_weight) >= 0)
    assert kl_weight[-1] == pytest.approx(1.0)


def test_save_load_round_trip_gives_identical_latent(trained, tmp_path):
    model, adata, _ = trained
    model.save(tmp_path / "model", overwrite=True, save_anndata=True)
    loaded = CGMVAE.load(tmp_path / "model", adata=adata)
    np.testing.assert_array_equal(
        loaded.get_latent_representation(), model.get_latent_representation()
    )
    np.testing.assert_array_equal(
        loaded.get_cluster_assignments(), model.get_cluster_assignments()
    )
    with_saved_adata = CGMVAE.load(tmp_path / "model")
    np.testing.assert_array_equal(
        with_saved_adata.get_latent_representation(), model.get_latent_representation()
    )


def test_save_leaves_out_the_anndata_by_default_and_load_uses_given_data(trained, tmp_path):
    model, adata, _ = trained
    model.save(tmp_path / "light")
    assert sorted(p.name for p in (tmp_path / "light").iterdir()) == ["model.pt"]
    loaded = CGMVAE.load(tmp_path / "light")
    fresh = adata.copy()
    np.testing.assert_array_equal(
        loaded.get_latent_representation(fresh), model.get_latent_representation(adata)
    )


def test_model_without_condition_key(quiet, sim_adata, seeded):
    adata = sim_adata[:200].copy()
    CGMVAE.setup_anndata(adata, layer="counts")
    model = CGMVAE(adata, n_clusters=3, n_hidden=32)
    model.train(max_epochs=3, **quiet)
    assert model.summary_stats.n_batch == 1
    assert model.get_latent_representation().shape == (200, 10)


def test_dense_input_and_other_likelihoods(quiet, sim_adata, seeded):
    adata = sim_adata[:200].copy()
    adata.X = adata.layers["counts"].toarray()
    for likelihood in ("zinb", "poisson"):
        CGMVAE.setup_anndata(adata, condition_key="condition")
        model = CGMVAE(adata, n_clusters=3, n_hidden=32, likelihood=likelihood)
        model.train(max_epochs=2, **quiet)
        assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()


def test_default_max_epochs_shrinks_with_data_size():
    assert default_max_epochs(700) == 400
    assert default_max_epochs(70_000) < 400
    assert default_max_epochs(10**7) == 20


def test_bad_arguments_raise_before_training(sim_adata):
    adata = sim_adata[:50].copy()
    with pytest.raises(KeyError, match="conditon"):
        CGMVAE.setup_anndata(adata, condition_key="conditon")
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    with pytest.raises(ValueError, match="likelihood"):
        CGMVAE(adata, likelihood="gamma")
    with pytest.raises(ValueError, match="n_clusters"):
        CGMVAE(adata, n_clusters=0)


def test_negative_values_rejected_for_counts():
    adata = anndata.AnnData(sp.csr_matrix(-np.ones((10, 5), dtype=np.float32)))
    CGMVAE.setup_anndata(adata)
    with pytest.raises(ValueError, match="non-negative"):
        CGMVAE(adata)


def test_lightning_options_pass_through_train(quiet, sim_adata, seeded):
    from lightning.pytorch.callbacks import Callback

    class CountEpochs(Callback):
        epochs = 0

        def on_train_epoch_end(self, trainer, pl_module):
            CountEpochs.epochs += 1
            assert trainer.precision == "bf16-mixed"
            assert trainer.gradient_clip_val == 0.5

    adata = sim_adata[:200].copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=3, n_hidden=16)
    model.train(
        max_epochs=2, precision="bf16-mixed", gradient_clip_val=0.5,
        callbacks=[CountEpochs()], accelerator="cpu", **quiet,
    )  # fmt: skip
    assert CountEpochs.epochs == 2
    assert np.isfinite(model.get_latent_representation()).all()


def test_training_again_after_inference_runs_in_training_mode(quiet, sim_adata, seeded):
    from lightning.pytorch.callbacks import Callback

    modes = []

    class RecordMode(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            modes.append(pl_module.module.training)

    adata = sim_adata[:200].copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=3, n_hidden=16)
    model.train(max_epochs=1, **quiet)
    model.get_latent_representation()
    model.train(max_epochs=1, callbacks=[RecordMode()], **quiet)
    assert modes and all(modes)


@pytest.mark.quality
@pytest.mark.parametrize("likelihood", ["nb", "zinb"])
def test_bf16_mixed_precision_keeps_finite_count_losses_and_the_clusters(
    quiet, sim_adata, seeded, likelihood
):
    adata = sim_adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=4, likelihood=likelihood)
    model.train(max_epochs=60, precision="bf16-mixed", accelerator="cpu", **quiet)
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()
    scores = cluster_scores(adata.obs["cluster"], model.get_cluster_assignments())
    assert scores["ari"] >= 0.9, scores


@pytest.mark.parametrize("cluster_refine", [0.5, 0.2, 1.5, "late"])
def test_a_second_placement_must_come_after_the_first(sim_adata, cluster_refine):
    adata = sim_adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=4)
    with pytest.raises(ValueError, match=r"cluster_refine must be a fraction in \(cluster_init"):
        model.train(max_epochs=2, cluster_init=0.5, cluster_refine=cluster_refine)
    assert not model.is_trained


@pytest.mark.parametrize(
    ("scale", "scale_at", "epochs_at_full_step"),
    [(0.1, 0.4, 2), (0.5, 0.4, 2), (1.0, 0.4, 5), (0.1, None, 3), (0.1, 0.8, 4), (0.1, 0.0, 1)],
)
def test_the_learning_rate_is_scaled_once_after_the_given_fraction_of_the_epochs(
    quiet, sim_adata, seeded, scale, scale_at, epochs_at_full_step, learning_rates
):
    adata = sim_adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=4, n_hidden=16, n_latent=4)
    model.train(
        max_epochs=5,
        cluster_init=0.6,  # placed after 3 epochs; lr_scale_at=None scales then
        lr_scale=scale,
        lr_scale_at=scale_at,
        plan_kwargs={"lr": 2e-3},
        callbacks=[learning_rates],
        **quiet,
    )
    full, scaled = [2e-3] * epochs_at_full_step, [2e-3 * scale] * (5 - epochs_at_full_step)
    assert learning_rates.rates == pytest.approx(full + scaled)


@pytest.mark.parametrize(("labels_key", "scale"), [(None, 0.1), ("cluster", 1.0)])
def test_by_default_only_a_model_without_known_labels_takes_the_smaller_step(
    quiet, sim_adata, seeded, labels_key, scale, learning_rates
):
    adata = sim_adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition", labels_key=labels_key)
    model = CGMVAE(adata, n_clusters=4, n_hidden=16, n_latent=4)
    model.train(max_epochs=5, plan_kwargs={"lr": 2e-3}, callbacks=[learning_rates], **quiet)
    assert learning_rates.rates == pytest.approx([2e-3] * 2 + [2e-3 * scale] * 3)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"lr_scale": 0}, ValueError, "lr_scale must be positive and finite"),
        ({"lr_scale": -0.1}, ValueError, "lr_scale must be positive and finite"),
        ({"lr_scale": float("nan")}, ValueError, "lr_scale must be positive and finite"),
        ({"lr_scale": float("inf")}, ValueError, "lr_scale must be positive and finite"),
        ({"lr_scale": "small"}, TypeError, "lr_scale must be a number"),
        ({"lr_scale": True}, TypeError, "lr_scale must be a number"),
        ({"lr_scale_at": -0.1}, ValueError, r"lr_scale_at must lie in \[0, 1\]"),
        ({"lr_scale_at": 1.5}, ValueError, r"lr_scale_at must lie in \[0, 1\]"),
        ({"lr_scale_at": float("nan")}, ValueError, r"lr_scale_at must lie in"),
        ({"lr_scale_at": "early"}, TypeError, "lr_scale_at must be a number"),
    ],
)
def test_a_learning_rate_scale_must_be_a_positive_factor_at_a_fraction(
    sim_adata, arguments, error, message
):
    adata = sim_adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=4)
    with pytest.raises(error, match=message):
        model.train(max_epochs=2, **arguments)
    assert not model.is_trained


@pytest.mark.quality
def test_placement_on_a_subsample_says_so_and_still_finds_the_clusters(quiet, sim_adata, seeded):
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("cgmvae").addHandler(handler)
    adata = sim_adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=4)
    try:
        model.train(
            max_epochs=40, train_size=1.0, placement_max_cells=300, cluster_refine=0.75, **quiet
        )
    finally:
        logging.getLogger("cgmvae").removeHandler(handler)
    messages = [record.getMessage() for record in records]
    cuts = [message for message in messages if message.startswith("Neighbour edges cut: kmeans")]
    assert len(cuts) == 1  # "auto" says how many edges each candidate cut, once
    messages = [message for message in messages if message not in cuts]
    assert messages[0] == "Estimating the condition's effect (shared_effect) from 800 cells…"
    assert messages[1].startswith("Placing the mixture on 300 randomly chosen of the 800 training")
    assert messages[2] == "Placing the mixture's 4 clusters on 300 cells by kmeans and umap…"
    assert messages[3].startswith("Placed the mixture's 4 clusters by")
    assert "on 300 cells" in messages[3]
    # the second placement, by Leiden; where no resolution gives 4 communities the log says
    # the mixture stays as placed
    assert messages[4] == "Placing the mixture again after 30 epochs (cluster_refine)."
    again = messages[5:]
    assert again[0].startswith("Placing the mixture on 300 randomly chosen")
    assert again[1] == "Placing the mixture's 4 clusters on 300 cells by leiden…"
    placed_by_leiden = "Placed the mixture's 4 clusters by leiden on 300 cells"
    stayed = "No Leiden resolution gave 4 groups; the mixture stays as placed."
    assert len(again) == 3 and (again[2] == stayed or again[2].startswith(placed_by_leiden))
    clusters = model.get_cluster_assignments()
    assert cluster_scores(adata.obs["cluster"], clusters)["ari"] > 0.9


@pytest.mark.quality
def test_pbmc_clusters_match_the_cell_types(quiet, seed):
    # PBMC 68k-reduced at the defaults, ARI with bulk_labels; its spread over seeds, CPU
    # kernels and threads is measured by benchmarks/stability.py (results/stability.md).
    adata = pbmc68k_reduced()
    scvi.settings.seed = seed
    CGMVAE.setup_anndata(adata, layer="counts")
    model = CGMVAE(adata, n_clusters=10)
    model.train(**quiet)
    scores = cluster_scores(adata.obs["bulk_labels"], model.get_cluster_assignments())
    assert scores["ari"] >= 0.45, scores
