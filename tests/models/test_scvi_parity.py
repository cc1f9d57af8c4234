"""What scvi-tools users expect of a model: its mixins, batch beside condition, predict."""

import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from sklearn.metrics import adjusted_rand_score

from cgmvae import CGMVAE, GMVAE, VAE
from cgmvae.data import simulate

DONOR_GENES = np.arange(60, 70)
# 60 epochs left the donor effect half learned, by how much depending on the learning-rate
# schedule; by 150 every schedule tried had learned it
DONOR_EPOCHS = 150


def donor_by_condition(n_obs=800, seed=0):
    """Simulated clusters × conditions, with a donor effect (×4 on ten genes in donor d2)."""
    adata = simulate(
        counts_layer="counts", n_obs=n_obs, n_vars=100, n_clusters=4, n_conditions=2, seed=seed
    )
    rng = np.random.default_rng(seed)
    donors = rng.choice(["d1", "d2"], size=n_obs)
    counts = adata.layers["counts"].toarray()
    in_d2 = donors == "d2"
    counts[np.ix_(in_d2, DONOR_GENES)] += rng.poisson(3 * counts[np.ix_(in_d2, DONOR_GENES)])
    adata.layers["counts"] = counts.astype(np.float32)
    adata.obs["donor"] = pd.Categorical(donors)
    adata.obs["percent_mito"] = rng.random(n_obs)
    return adata


@pytest.fixture(scope="module")
def donor_model(seed):
    scvi.settings.seed = seed
    adata = donor_by_condition()
    CGMVAE.setup_anndata(
        adata,
        layer="counts",
        condition_key="condition",
        batch_key="donor",
        continuous_covariate_keys=["percent_mito"],
    )
    model = CGMVAE(adata, n_clusters=4, n_hidden=64, components_per_cluster=1)
    model.train(
        max_epochs=DONOR_EPOCHS,
        cluster_placement="kmeans",
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model.write_results(adata)
    return model, adata


def test_batch_and_condition_are_registered_apart(donor_model):
    model, _ = donor_model
    assert model.summary_stats["n_condition"] == 2
    assert model.summary_stats["n_batch"] == 2
    assert model.summary_stats["n_extra_continuous_covs"] == 1
    assert model.conditions == ["condition_0", "condition_1"]


@pytest.mark.quality
def test_clusters_follow_cell_types_not_donor_or_condition(donor_model):
    model, adata = donor_model
    clusters = model.predict()
    assert adjusted_rand_score(adata.obs["cluster"], clusters) > 0.8
    assert abs(adjusted_rand_score(adata.obs["donor"], clusters)) < 0.05
    assert abs(adjusted_rand_score(adata.obs["condition"], clusters)) < 0.05


@pytest.mark.quality
def test_transform_batch_removes_the_donor_effect(donor_model):
    model, adata = donor_model
    in_d2 = np.flatnonzero(adata.obs["donor"] == "d2")
    own = model.get_normalized_expression(indices=in_d2, library_size=1e4)
    as_d1 = model.get_normalized_expression(indices=in_d2, library_size=1e4, transform_batch="d1")
    ratio = (
        as_d1.iloc[:, DONOR_GENES].to_numpy().mean() / own.iloc[:, DONOR_GENES].to_numpy().mean()
    )
    assert ratio < 0.5, ratio
    np.testing.assert_allclose(own.sum(1), 1e4, rtol=1e-4)
    assert list(own.index) == list(adata.obs_names[in_d2])


def test_normalized_expression_takes_scvi_arguments(donor_model):
    model, adata = donor_model
    genes = list(adata.var_names[:5])
    subset = model.get_normalized_expression(gene_list=genes, n_samples=3, return_mean=True)
    assert list(subset.columns) == genes and subset.shape == (adata.n_obs, 5)
    draws = model.get_normalized_expression(n_samples=3, return_mean=False)
    assert draws.shape == (3, adata.n_obs, adata.n_vars)


def test_normalized_expression_values_sum_to_the_library_and_follow_the_markers(donor_model):
    model, adata = donor_model
    scaled = model.get_normalized_expression(library_size=1e4)
    np.testing.assert_allclose(scaled.sum(1), 1e4, rtol=1e-4)
    markers = adata.uns["ground_truth"]["simulate"]["marker_log_fold_changes"] > 0
    for k, name in enumerate(adata.uns["ground_truth"]["group_names"]):
        inside = (adata.obs["cluster"] == name).to_numpy()
        genes = markers[k]
        assert (
            scaled.loc[inside, genes].mean().mean() > 2 * scaled.loc[~inside, genes].mean().mean()
        )


def test_history_holds_every_epoch_of_finite_loss_terms(donor_model):
    model, _ = donor_model
    history = model.history
    for key in ("elbo_train", "reconstruction_loss_train", "kl_local_train", "kl_weight"):
        values = history[key].iloc[:, 0].to_numpy(dtype=float)
        assert len(values) == DONOR_EPOCHS and np.isfinite(values).all(), key
    elbo = history["elbo_train"].iloc[:, 0].to_numpy(dtype=float)
    assert elbo[-5:].mean() < elbo[:5].mean()


def test_view_anndata_setup_names_the_registered_columns(donor_model, capsys):
    model, adata = donor_model
    model.view_anndata_setup(adata)
    shown = capsys.readouterr().out
    for column in ("counts", "condition", "donor", "percent_mito"):
        assert column in shown, column


def test_to_device_moves_the_module_and_keeps_its_outputs(donor_model):
    model, _ = donor_model
    before = model.get_latent_representation()
    model.to_device("cpu")
    assert model.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in model.module.parameters())
    np.testing.assert_allclose(model.get_latent_representation(), before, rtol=1e-6)


@pytest.mark.quality
def test_counterfactual_swaps_the_condition_and_keeps_the_donor(donor_model):
    model, adata = donor_model
    control = np.flatnonzero(adata.obs["condition"] == "condition_0")[:100]
    mean = model.predict_counterfactual("condition_1", indices=control)
    drawn = model.predict_counterfactual("condition_1", indices=control, n_samples=8)
    assert list(drawn.obs["donor"]) == list(adata.obs["donor"].iloc[control])
    assert drawn.layers["counterfactual_sd"].shape == drawn.X.shape
    observed = np.asarray(adata.layers["counts"][control]) > 0  # zeros stay zero: x times a fold
    assert (drawn.layers["counterfactual_sd"][observed] > 0).mean() > 0.99
    assert np.all(drawn.layers["counterfactual_sd"][~observed] == 0)
    relative = np.abs(drawn.X - mean.X).mean() / mean.X.mean()
    assert relative < 0.5, relative


@pytest.mark.quality
def test_differential_expression_of_clusters_finds_the_simulated_markers(donor_model):
    model, adata = donor_model
    markers = adata.uns["ground_truth"]["simulate"]["marker_log_fold_changes"] > 0
    results = model.differential_expression(groupby="cgmvae_cluster", mode="change", silent=True)
    clusters = model.predict()
    for name, table in results.groupby("group1"):
        truth = pd.Series(adata.obs["cluster"].to_numpy()[clusters == name]).mode()[0]
        k = list(adata.uns["ground_truth"]["group_names"]).index(truth)
        top = table.sort_values("lfc_mean", ascending=False).index[:10]
        found = markers[k][adata.var_names.get_indexer(top)].mean()
        assert found >= 0.7, (name, truth, found)


def test_elbo_reconstruction_and_marginal_likelihood_are_consistent(donor_model):
    model, _ = donor_model
    indices = np.arange(100)
    elbo = float(model.get_elbo(indices=indices))
    reconstruction = float(model.get_reconstruction_error(indices=indices)["reconstruction_loss"])
    marginal = model.get_marginal_ll(indices=indices, n_mc_samples=200)
    assert np.isfinite([elbo, reconstruction, marginal]).all()
    assert -reconstruction > elbo  # the KL terms are positive
    assert elbo <= marginal <= elbo + 50  # importance sampling tightens the bound


def posterior_predictive_agrees_with_the_data(model, counts):
    """Shapes of one and of three draws; per-gene means of the draws against the data's."""
    one = model.posterior_predictive_sample(indices=np.arange(50)).todense()
    assert one.shape == (50, counts.shape[1])
    three = model.posterior_predictive_sample(n_samples=3).todense()
    assert three.shape == (*counts.shape, 3)
    assert (three >= 0).all() and (three == np.round(three)).all()
    drawn, observed = three.mean(axis=(0, 2)), np.asarray(counts).mean(0)
    assert np.corrcoef(np.log1p(drawn), np.log1p(observed))[0, 1] >= 0.95
    assert 0.9 <= drawn.sum() / observed.sum() <= 1.1


@pytest.mark.quality
def test_posterior_predictive_samples_follow_the_data(donor_model):
    model, adata = donor_model
    posterior_predictive_agrees_with_the_data(model, adata.layers["counts"])


@pytest.mark.quality
@pytest.mark.parametrize("likelihood", ["poisson", "zinb"])
def test_posterior_predictive_samples_of_the_other_count_likelihoods(
    likelihood, sim_adata, quiet, seeded
):
    adata = sim_adata.copy()
    VAE.setup_anndata(adata, layer="counts")
    model = VAE(adata, likelihood=likelihood, n_hidden=64)
    model.train(max_epochs=30, **quiet)
    posterior_predictive_agrees_with_the_data(model, adata.layers["counts"].toarray())


def test_predict_names_clusters_and_soft_gives_named_probabilities(donor_model):
    model, adata = donor_model
    hard = model.predict()
    np.testing.assert_array_equal(hard, np.asarray(adata.obs["cgmvae_cluster"]))
    soft = model.predict(indices=np.arange(10), soft=True)
    assert list(soft.columns) == model.cluster_names
    assert list(soft.index) == list(adata.obs_names[:10])
    np.testing.assert_allclose(soft.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(soft.idxmax(1).to_numpy(), hard[:10])


def test_new_data_need_the_batch_column(donor_model):
    model, adata = donor_model
    query = adata.copy()
    del query.obs["donor"]
    with pytest.raises(KeyError, match="batch_key='donor'"):
        model.get_latent_representation(query)


def test_one_column_cannot_be_condition_and_batch():
    adata = donor_by_condition(n_obs=100)
    with pytest.raises(ValueError, match="both condition_key and batch_key"):
        CGMVAE.setup_anndata(
            adata, layer="counts", condition_key="condition", batch_key="condition"
        )
    with pytest.raises(ValueError, match="both as batch_key"):
        VAE.setup_anndata(
            adata, layer="counts", batch_key="donor", categorical_covariate_keys=["donor"]
        )


def test_continuous_covariates_must_be_numeric():
    adata = donor_by_condition(n_obs=100)
    with pytest.raises(ValueError, match="must be numeric and finite"):
        VAE.setup_anndata(adata, layer="counts", continuous_covariate_keys=["donor"])


def test_unconditional_models_correct_a_batch_and_refuse_a_condition():
    adata = donor_by_condition(n_obs=100)
    GMVAE.setup_anndata(adata, layer="counts", batch_key="donor")
    with pytest.raises(ValueError, match="batch_key"):
        GMVAE.setup_anndata(adata, layer="counts", condition_key="condition")


def test_unknown_plan_kwargs_are_refused_with_where_they_belong():
    adata = donor_by_condition(n_obs=100)
    GMVAE.setup_anndata(adata, layer="counts")
    model = GMVAE(adata, n_clusters=2, n_hidden=8)
    with pytest.raises(ValueError, match=r"Unknown plan_kwargs 'learning_rate'.*lr"):
        model.train(max_epochs=1, plan_kwargs={"learning_rate": 1e-3})
    with pytest.raises(ValueError, match=r"cluster_init: pass it to train\(\) itself"):
        model.train(max_epochs=1, plan_kwargs={"cluster_init": 0.2})
    assert not model.is_trained


def test_early_stopping_waits_for_the_mixture(quiet, seeded):
    adata = donor_by_condition(n_obs=200)
    GMVAE.setup_anndata(adata, layer="counts")
    model = GMVAE(adata, n_clusters=4, n_hidden=16)
    model.train(
        max_epochs=40,
        early_stopping=True,
        early_stopping_patience=1,
        early_stopping_min_delta=1e6,  # every epoch counts as no improvement
        cluster_placement="kmeans",
        **quiet,
    )
    assert bool(model.module.prior.initialized)
    assert len(model.history["elbo_train"]) >= 20 + 5
    assert len(model.history["elbo_train"]) < 40


def three_donors(seed=0):
    """Simulated types × conditions; donors d2 and d3 each raise ten genes of their own ×4."""
    adata = simulate(
        counts_layer="counts", n_obs=1200, n_vars=100, n_clusters=4, n_conditions=2, seed=seed
    )
    rng = np.random.default_rng(seed)
    donors = rng.choice(["d1", "d2", "d3"], size=adata.n_obs)
    counts = adata.layers["counts"].toarray()
    for donor, genes in (("d2", np.arange(60, 70)), ("d3", np.arange(70, 80))):
        rows = donors == donor
        counts[np.ix_(rows, genes)] += rng.poisson(3 * counts[np.ix_(rows, genes)])
    adata.layers["counts"] = counts.astype(np.float32)
    adata.obs["donor"] = pd.Categorical(donors)
    return adata


@pytest.mark.quality
def test_a_new_donor_is_mapped_into_the_reference_clusters_training_only_its_weights(
    seed, quiet, tmp_path
):
    adata = three_donors()
    query_rows = (adata.obs["donor"] == "d3").to_numpy()
    reference_data = adata[~query_rows].copy()
    reference_data.obs["donor"] = reference_data.obs["donor"].cat.remove_unused_categories()
    scvi.settings.seed = seed
    CGMVAE.setup_anndata(
        reference_data, layer="counts", condition_key="condition", batch_key="donor"
    )
    reference = CGMVAE(reference_data, n_clusters=4, n_hidden=64, components_per_cluster=1)
    reference.train(max_epochs=60, cluster_placement="kmeans", **quiet)
    reference.save(tmp_path / "reference")
    before = {key: value.clone() for key, value in reference.module.state_dict().items()}

    query = adata[query_rows].copy()
    model = CGMVAE.load_query_data(query, tmp_path / "reference")
    assert model.summary_stats["n_batch"] == 3
    model.train(max_epochs=30, **quiet)
    clusters = model.get_cluster_assignments()
    assert adjusted_rand_score(query.obs["cluster"], clusters) >= 0.9

    changed = []
    for key, value in model.module.state_dict().items():
        old = before[key]
        if key.endswith("num_batches_tracked"):  # counts batches; the statistics stay fixed
            continue
        if value.shape != old.shape:  # a layer that takes the batch one-hot: one more column
            torch.testing.assert_close(value[:, : old.shape[1]], old, rtol=0, atol=0)
            assert value[:, old.shape[1] :].abs().sum() > 0
            changed.append(key)
        elif not torch.equal(value, old):
            changed.append(key)
    assert changed == ["decoder.hidden.fc_layers.Layer 0.0.weight"], changed


def test_query_mapping_needs_a_reference_with_batches_and_known_conditions(
    donor_model, quiet, tmp_path
):
    model, adata = donor_model
    query = adata[:40].copy()
    query.obs["condition"] = query.obs["condition"].cat.add_categories(["condition_9"])
    query.obs.loc[query.obs_names[:5], "condition"] = "condition_9"
    with pytest.raises(ValueError, match="condition_9"):
        CGMVAE.load_query_data(query, model)
    plain = adata[:200].copy()
    GMVAE.setup_anndata(plain, layer="counts")
    unbatched = GMVAE(plain, n_clusters=2, n_hidden=16)
    with pytest.raises(ValueError, match="set up without batch_key"):
        GMVAE.load_query_data(adata[:40].copy(), unbatched)


@pytest.mark.quality
def test_counterfactual_de_ranks_each_groups_responding_genes_first(donor_model):
    model, adata = donor_model
    table = model.counterfactual_differential_expression("condition_1", groupby="cluster")
    effects = adata.uns["ground_truth"]["simulate"]["condition_log_fold_changes"]
    names = list(adata.uns["ground_truth"]["group_names"])
    control = adata.obs["condition"] != "condition_1"
    for name, part in table.groupby("group"):
        assert part.index.is_unique and len(part) == adata.n_vars
        assert part["n_cells"].iloc[0] == (control & (adata.obs["cluster"] == name)).sum()
        responders = set(adata.var_names[effects[names.index(name), 1] != 0])
        ranked = part["lfc_vs_median"].abs().sort_values(ascending=False).index[:20]
        assert np.mean([gene in responders for gene in ranked]) >= 0.8, name
        assert ((part["proba_de"] >= 0) & (part["proba_de"] <= 1)).all()
    clusters = model.counterfactual_differential_expression("condition_1", n_samples=2)
    assert set(clusters["group"]) <= set(model.cluster_names)


def test_counterfactual_de_says_what_it_needs(donor_model):
    model, _ = donor_model
    with pytest.raises(ValueError, match="condition_7"):
        model.counterfactual_differential_expression("condition_7")
    with pytest.raises(KeyError, match="celltype"):
        model.counterfactual_differential_expression("condition_1", groupby="celltype")
