"""A failed call explains itself and leaves the user's AnnData exactly as it was."""

import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
import torch

from cgmvae import AE, CGMVAE, GMVAE, VAE
from cgmvae.data import simulate

TINY = {"n_hidden": 16, "n_latent": 4}


def small_adata(n_obs=120, seed=0):
    """Counts in .X and .layers['counts'], obs 'cluster' and 'condition' (2 each)."""
    return simulate(
        counts_layer="counts", n_obs=n_obs, n_vars=50, n_clusters=2, n_conditions=2, seed=seed
    )


def _matrix(data):
    return data.toarray() if sp.issparse(data) else np.asarray(data)


def snapshot(adata):
    """Everything of ``adata`` a failed or read-only call must leave as it was."""
    return {
        "X": adata.X.copy(),
        "layers": {key: value.copy() for key, value in adata.layers.items()},
        "obs": adata.obs.copy(),
        "var_names": list(adata.var_names),
        "uns": set(adata.uns),
    }


def assert_unchanged(adata, before, registered=False):
    """X, layers, genes and the user's obs columns equal ``before``.

    ``registered=False`` also asserts that nothing was added (no ``_scvi_*`` obs column,
    no ``_scvi_uuid`` in uns): the call failed before scvi-tools wrote anything.
    """
    assert sp.issparse(adata.X) == sp.issparse(before["X"])
    np.testing.assert_array_equal(_matrix(adata.X), _matrix(before["X"]))
    assert set(adata.layers) == set(before["layers"])
    for key, value in before["layers"].items():
        assert sp.issparse(adata.layers[key]) == sp.issparse(value)
        np.testing.assert_array_equal(_matrix(adata.layers[key]), _matrix(value))
    assert list(adata.var_names) == before["var_names"]
    for column in before["obs"].columns:
        pd.testing.assert_series_equal(adata.obs[column], before["obs"][column])
    if not registered:
        assert list(adata.obs.columns) == list(before["obs"].columns)
        assert set(adata.uns) == before["uns"]


def train_tiny(quiet, model_cls, adata, setup=None, epochs=2, **kwargs):
    scvi.settings.seed = 0
    model_cls.setup_anndata(adata, **(setup or {"layer": "counts"}))
    model = model_cls(adata, **TINY, **kwargs)
    model.train(max_epochs=epochs, **quiet)
    return model


@pytest.fixture(scope="module")
def trained(quiet):
    """A tiny trained CGMVAE and its training AnnData (do not modify either)."""
    adata = small_adata(n_obs=200)
    setup = {"layer": "counts", "condition_key": "condition"}
    return train_tiny(quiet, CGMVAE, adata, setup, n_clusters=2), adata


def query(n_obs=60):
    """New cells with the training genes, in the training order."""
    return small_adata(n_obs=n_obs, seed=1)


INFERENCE = {
    "get_latent_representation": lambda model, adata: model.get_latent_representation(adata),
    "get_cluster_probabilities": lambda model, adata: model.get_cluster_probabilities(adata),
    "predict_counterfactual": lambda model, adata: (
        model.predict_counterfactual(adata=adata, target_condition="condition_1").X
    ),
    "write_results": lambda model, adata: model.write_results(adata),
}


# 1. keys that are not there -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "value", "close"),
    [
        ("condition_key", "conditon", "condition"),
        ("labels_key", "clusters", "cluster"),
        ("layer", "count", "counts"),
        ("label_probs_key", "probs", None),
    ],
)
def test_setup_with_a_missing_key_fails_before_writing(argument, value, close):
    adata = small_adata()
    before = snapshot(adata)
    setup = {"layer": "counts", "condition_key": "condition", argument: value}
    with pytest.raises(KeyError, match=value) as error:
        CGMVAE.setup_anndata(adata, **setup)
    if close is not None:
        assert f"Did you mean {close!r}" in str(error.value)
    assert_unchanged(adata, before)


def test_setup_with_missing_condition_values_fails_before_writing():
    adata = small_adata()
    adata.obs.loc[adata.obs_names[:3], "condition"] = np.nan
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"'condition'.*3 missing values"):
        CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    assert_unchanged(adata, before)


# 2. NaN and infinite values --------------------------------------------------------------


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_setup_refuses_non_finite_values_before_writing(sparse, bad):
    adata = small_adata()
    counts = adata.layers["counts"].toarray().astype(np.float32)
    counts[5, 7] = bad
    adata.layers["counts"] = sp.csr_matrix(counts) if sparse else counts
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"adata.layers\['counts'\] contain .*nan_to_num"):
        CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    assert_unchanged(adata, before)


def test_model_refuses_data_made_non_finite_after_setup():
    adata = small_adata()
    adata.X = adata.X.astype(np.float32)
    GMVAE.setup_anndata(adata)
    adata.X.data[0] = np.nan
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"adata.X contain 1 NaN"):
        GMVAE(adata, **TINY)
    assert_unchanged(adata, before, registered=True)


# 3. values outside the likelihood's support ----------------------------------------------


def _registered(values, sparse):
    adata = anndata.AnnData(sp.csr_matrix(values) if sparse else values)
    VAE.setup_anndata(adata)
    return adata


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("likelihood", ["poisson", "nb", "zinb"])
def test_count_likelihoods_refuse_negative_values(likelihood, sparse):
    values = np.ones((10, 5), dtype=np.float32)
    values[2, 3] = -1.0
    adata = _registered(values, sparse)
    before = snapshot(adata)
    with pytest.raises(ValueError, match="non-negative"):
        VAE(adata, likelihood=likelihood)
    assert_unchanged(adata, before, registered=True)


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("bad", [-0.5, 1.5])
def test_bernoulli_refuses_values_outside_the_unit_interval(bad, sparse):
    values = np.full((10, 5), 0.5, dtype=np.float32)
    values[0, 0] = bad
    adata = _registered(values, sparse)
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"\[0, 1\].*pixels / 255"):
        VAE(adata, likelihood="bernoulli")
    assert_unchanged(adata, before, registered=True)


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_count_likelihoods_warn_on_non_integers(sparse):
    values = np.ones((10, 5), dtype=np.float32)
    values[1, 1] = 2.5
    adata = _registered(values, sparse)
    with pytest.warns(UserWarning, match="integer counts"):
        VAE(adata, likelihood="nb")


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_integer_counts_do_not_warn(sparse, recwarn):
    adata = _registered(np.ones((10, 5), dtype=np.float32), sparse)
    VAE(adata, likelihood="nb")
    assert not [w for w in recwarn if "integer counts" in str(w.message)]


# 4. hyper-parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error", "named"),
    [
        ({"n_clusters": 0}, ValueError, "n_clusters"),
        ({"n_latent": 0}, ValueError, "n_latent"),
        ({"n_hidden": -1}, ValueError, "n_hidden"),
        ({"n_layers": 0}, ValueError, "n_layers"),
        ({"n_mc_samples": 0}, ValueError, "n_mc_samples"),
        ({"likelihood": "gamma"}, ValueError, "gamma"),
        ({"beta": -1.0}, ValueError, "beta"),
        ({"beta_y": -0.1}, ValueError, "beta_y"),
        ({"free_bits": float("nan")}, ValueError, "free_bits"),
        ({"dropout_rate": 1.0}, ValueError, "dropout_rate"),
        ({"n_latent": 2.5}, TypeError, "n_latent"),
        ({"n_hidden": "16"}, TypeError, "n_hidden"),
        ({"n_clusters": True}, TypeError, "n_clusters"),
        ({"beta": "1"}, TypeError, "beta"),
    ],
    ids=lambda value: repr(value) if isinstance(value, dict) else "",
)
def test_invalid_hyper_parameters_are_named(params, error, named):
    adata = small_adata()
    GMVAE.setup_anndata(adata, layer="counts")
    before = snapshot(adata)
    with pytest.raises(error, match=named):
        GMVAE(adata, **params)
    assert_unchanged(adata, before, registered=True)


def test_autoencoder_refuses_negative_noise():
    adata = small_adata()
    AE.setup_anndata(adata, layer="counts")
    with pytest.raises(ValueError, match="noise_sd"):
        AE(adata, noise_sd=-1.0)


# 5. empty and tiny data -------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "named"), [((0, 10), "0 cells"), ((10, 0), "0 genes")])
def test_empty_anndata_is_refused_at_setup(shape, named):
    adata = anndata.AnnData(np.zeros(shape, dtype=np.float32))
    before = snapshot(adata)
    with pytest.raises(ValueError, match=named):
        VAE.setup_anndata(adata)
    assert_unchanged(adata, before)


def test_empty_anndata_is_refused_at_inference(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="0 cells"):
        model.get_latent_representation(query()[:0].copy())


def test_a_matrix_instead_of_an_anndata_is_refused():
    with pytest.raises(TypeError, match=r"AnnData, got ndarray.*anndata.AnnData\(X\)"):
        VAE.setup_anndata(np.ones((5, 3)))


@pytest.mark.parametrize("n_obs", [1, 2])
def test_training_on_too_few_cells_fails_before_training(quiet, n_obs):
    adata = small_adata()[:n_obs].copy()
    VAE.setup_anndata(adata, layer="counts")
    model = VAE(adata, **TINY)
    before = snapshot(adata)
    with pytest.raises(ValueError, match="at least 2 training cells"):
        model.train(max_epochs=1, **quiet)
    assert not model.is_trained
    assert_unchanged(adata, before, registered=True)


def test_two_cells_train_with_train_size_one(quiet):
    adata = small_adata()[:2].copy()
    VAE.setup_anndata(adata, layer="counts")
    model = VAE(adata, **TINY)
    model.train(max_epochs=1, train_size=1.0, **quiet)
    assert model.is_trained


def test_a_single_cell_last_minibatch_is_refused(quiet):
    adata = small_adata()[:11].copy()
    VAE.setup_anndata(adata, layer="counts")
    model = VAE(adata, **TINY)
    with pytest.raises(ValueError, match=r"single cell.*batch_size=6"):
        model.train(max_epochs=1, batch_size=5, train_size=1.0, **quiet)
    splitter = {"drop_last": True}
    model.train(max_epochs=1, batch_size=5, train_size=1.0, datasplitter_kwargs=splitter, **quiet)
    assert model.is_trained


# 6. genes at inference --------------------------------------------------------------------


@pytest.mark.parametrize("method", list(INFERENCE))
def test_inference_reorders_genes_on_a_copy(trained, method):
    model, _ = trained
    expected = INFERENCE[method](model, query())
    order = np.random.default_rng(0).permutation(50)
    shuffled = query()[:, order].copy()
    before = snapshot(shuffled)
    result = INFERENCE[method](model, shuffled)
    if method == "write_results":
        reference = query()
        model.write_results(reference)
        np.testing.assert_array_equal(shuffled.obsm["X_cgmvae"], reference.obsm["X_cgmvae"])
        assert_unchanged(shuffled, before, registered=True)
        assert not [c for c in shuffled.obs if c.startswith("_scvi")]
    else:
        np.testing.assert_array_equal(result, expected)
        assert_unchanged(shuffled, before)


def test_counterfactual_of_reordered_genes_is_in_training_order(trained):
    model, adata = trained
    shuffled = query()[:, ::-1].copy()
    result = model.predict_counterfactual(adata=shuffled, target_condition="condition_0")
    assert list(result.var_names) == list(adata.var_names)


def test_repeated_reordered_inference_keeps_one_copy(trained):
    model, _ = trained
    shuffled = query()[:, ::-1].copy()
    model.get_latent_representation(shuffled)
    n_managers = len(model._per_instance_manager_store[model.id])
    for _ in range(3):
        model.get_latent_representation(shuffled)
    assert len(model._per_instance_manager_store[model.id]) == n_managers


@pytest.mark.parametrize("method", list(INFERENCE))
def test_inference_refuses_renamed_genes(trained, method):
    model, _ = trained
    renamed = query()
    renamed.var_names = [f"other_{i}" if i < 7 else g for i, g in enumerate(renamed.var_names)]
    before = snapshot(renamed)
    with pytest.raises(ValueError, match=r"7 training genes are missing \('gene_0'.*and 2 more"):
        INFERENCE[method](model, renamed)
    assert_unchanged(renamed, before)


def test_inference_refuses_missing_and_extra_genes(trained):
    model, _ = trained
    subset = query()[:, 3:].copy()
    with pytest.raises(ValueError, match="3 training genes are missing"):
        model.get_latent_representation(subset)
    superset = anndata.concat([query(), query()[:, :2]], axis=1, merge="same")
    superset.var_names_make_unique()
    with pytest.raises(ValueError, match=r"2 genes were not in training.*get_var_names"):
        model.get_latent_representation(superset)


def test_inference_refuses_a_different_gene_count_of_the_same_names(trained):
    model, _ = trained
    duplicated = anndata.concat([query()[:, ::-1], query()[:, :1]], axis=1, merge="same")
    with pytest.raises(
        ValueError, match=r"duplicate gene names \('gene_0'\).*var_names_make_unique"
    ):
        model.get_latent_representation(duplicated)


# 7. conditions at inference ---------------------------------------------------------------


def _with_condition(adata, value, n=3):
    adata.obs["condition"] = adata.obs["condition"].cat.add_categories([value])
    adata.obs.loc[adata.obs_names[:n], "condition"] = value
    return adata


@pytest.mark.parametrize("method", list(INFERENCE))
def test_unseen_condition_is_refused_listing_the_known_ones(trained, method):
    model, _ = trained
    adata = _with_condition(query(), "condition_9")
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"'condition_9'.*Known categories: 'condition_0'"):
        INFERENCE[method](model, adata)
    assert_unchanged(adata, before)


def test_missing_condition_column_at_inference(trained):
    model, _ = trained
    adata = query()
    adata.obs = adata.obs.rename(columns={"condition": "conditions"})
    before = snapshot(adata)
    with pytest.raises(KeyError, match=r"condition_key='condition'.*Did you mean 'conditions'"):
        model.get_latent_representation(adata)
    assert_unchanged(adata, before)


def test_unknown_target_condition_is_refused(trained):
    model, _ = trained
    adata = query()
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"Unknown condition 'stim'.*'condition_0'"):
        model.predict_counterfactual(adata=adata, target_condition="stim")
    with pytest.raises(ValueError, match="Pass target_condition"):
        model.predict_counterfactual(adata=adata)
    assert_unchanged(adata, before)


def test_labels_are_checked_at_inference(quiet):
    adata = small_adata()
    setup = {"layer": "counts", "labels_key": "cluster"}
    model = train_tiny(quiet, GMVAE, adata, setup, epochs=1, n_clusters=2)
    unlabelled = query()
    del unlabelled.obs["cluster"]
    with pytest.raises(KeyError, match=r"labels_key='cluster'.*'unknown'"):
        model.get_latent_representation(unlabelled)
    relabelled = query()
    relabelled.obs["cluster"] = relabelled.obs["cluster"].cat.rename_categories(["a", "b"])
    before = snapshot(relabelled)
    with pytest.raises(ValueError, match="not seen in training: 'a', 'b'"):
        model.get_latent_representation(relabelled)
    assert_unchanged(relabelled, before)


def test_few_labels_are_reported_by_class_name_not_warned_by_code(logged):
    adata = small_adata()
    labels = np.full(adata.n_obs, "unknown", dtype=object)
    labels[:2], labels[60:70] = "rare", "common"
    adata.obs["known"] = pd.Categorical(labels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GMVAE.setup_anndata(adata, layer="counts", labels_key="known")
    assert not [w for w in caught if "_scvi_labels" in str(w.message)]
    assert "known: 12 of 120 cells labelled (common 10, rare 2)." in logged


def test_non_finite_values_are_refused_at_inference(trained):
    model, _ = trained
    adata = query()
    adata.layers["counts"] = adata.layers["counts"].astype(np.float32)
    adata.layers["counts"].data[:2] = np.inf
    before = snapshot(adata)
    with pytest.raises(ValueError, match="2 infinite"):
        model.get_latent_representation(adata)
    assert_unchanged(adata, before)


# 8. loading -------------------------------------------------------------------------------


def test_load_from_a_missing_directory(tmp_path):
    path = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=r"nowhere.*does not exist"):
        CGMVAE.load(path)


def test_load_from_an_incomplete_directory(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "saved", save_anndata=False)
    (tmp_path / "saved" / "model.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"saved.*model.pt is missing"):
        CGMVAE.load(tmp_path / "saved")


def test_load_from_a_truncated_model_file(tmp_path):
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "model.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot be read"):
        CGMVAE.load(tmp_path / "saved")


def test_load_with_another_class_names_both(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "saved", save_anndata=False)
    with pytest.raises(ValueError, match=r"saved CGMVAE, not a GMVAE.*CGMVAE.load"):
        GMVAE.load(tmp_path / "saved")


def test_load_with_reordered_genes_is_refused(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "saved", save_anndata=False)
    shuffled = query()[:, ::-1].copy()
    before = snapshot(shuffled)
    with pytest.raises(ValueError, match="another order"):
        CGMVAE.load(tmp_path / "saved", adata=shuffled)
    assert_unchanged(shuffled, before)
    with pytest.raises(ValueError, match="'condition_9'"):
        CGMVAE.load(tmp_path / "saved", adata=_with_condition(query(), "condition_9"))


# 9. views and backed AnnData --------------------------------------------------------------


def test_setup_on_a_view_is_refused_with_the_fix_and_leaves_both_unchanged():
    parent = small_adata()
    before = snapshot(parent)
    view = parent[parent.obs["condition"] == "condition_0"]
    with pytest.raises(ValueError, match=r"view.*adata\[mask\]\.copy\(\)"):
        CGMVAE.setup_anndata(view, layer="counts", condition_key="condition")
    assert view.is_view
    assert_unchanged(parent, before)


def test_inference_on_a_view_is_refused_and_indices_give_the_same_cells(trained):
    model, _ = trained
    parent = query()
    before = snapshot(parent)
    view = parent[:20]
    with pytest.raises(ValueError, match="indices="):
        model.get_latent_representation(view)
    assert view.is_view
    np.testing.assert_array_equal(
        model.get_latent_representation(parent, indices=np.arange(20)),
        model.get_latent_representation(parent[:20].copy()),
    )
    assert_unchanged(parent, before, registered=True)


def test_an_anndata_in_place_of_the_target_condition_says_what_to_pass(trained):
    model, _ = trained
    with pytest.raises(TypeError, match=r"predict_counterfactual\(<condition>, adata=adata\)"):
        model.predict_counterfactual(query())


def test_a_backed_anndata_gives_the_in_memory_latent_and_one_stored_by_columns_is_refused(
    trained, tmp_path
):
    model, _ = trained
    cells = query()
    cells.write_h5ad(tmp_path / "cells.h5ad")
    backed = anndata.read_h5ad(tmp_path / "cells.h5ad", backed="r")
    np.testing.assert_allclose(
        model.get_latent_representation(backed), model.get_latent_representation(cells),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    backed.file.close()
    cells = query()
    cells.X = sp.csc_matrix(cells.X)
    cells.write_h5ad(tmp_path / "by_columns.h5ad")
    by_columns = anndata.read_h5ad(tmp_path / "by_columns.h5ad", backed="r")
    with pytest.raises(ValueError, match=r"stored by columns \(CSC\).*tocsr\(\)"):
        CGMVAE.setup_anndata(by_columns, condition_key="condition")
    assert "_scvi_uuid" not in by_columns.uns
    by_columns.file.close()


# training safeguards ---------------------------------------------------------------------


def test_divergence_names_the_term_and_a_fix(quiet, monkeypatch):
    adata = small_adata()
    VAE.setup_anndata(adata, layer="counts")
    model = VAE(adata, **TINY)
    latent_terms = model.module.latent_terms

    def exploding(inference_outputs, tensors):
        cost = latent_terms(inference_outputs, tensors)
        kl = {name: torch.full_like(value, np.inf) for name, value in cost.kl_terms.items()}
        return cost._replace(kl_terms=kl, penalty=torch.full_like(cost.penalty, np.inf))

    monkeypatch.setattr(model.module, "latent_terms", exploding)
    with pytest.raises(FloatingPointError, match=r"the kl_z term.*gradient_clip_val"):
        model.train(max_epochs=1, **quiet)


def test_divergence_of_the_reconstruction_is_named(quiet):
    adata = small_adata()
    adata.X = adata.X.astype(np.float32)
    VAE.setup_anndata(adata)
    model = VAE(adata, **TINY)
    adata.X.data[:] = np.inf  # after the checks: simulates data corrupted during training
    with pytest.raises(FloatingPointError, match=r"diverged.*reconstruction.*lr"):
        model.train(max_epochs=1, **quiet)


def test_gradient_clipping_reaches_lightning(quiet):
    adata = small_adata()
    model = train_tiny(quiet, VAE, adata, epochs=1)
    assert model.trainer.gradient_clip_val is None
    model.train(max_epochs=1, gradient_clip_val=0.5, **quiet)
    assert model.trainer.gradient_clip_val == 0.5


def test_same_seed_gives_the_same_latent_and_clusters(quiet):
    setup = {"layer": "counts", "condition_key": "condition"}
    first, second = (
        train_tiny(quiet, CGMVAE, small_adata(), setup, n_clusters=2, learn_cluster_weights=True)
        for _ in range(2)
    )
    np.testing.assert_array_equal(
        first.get_latent_representation(), second.get_latent_representation()
    )
    np.testing.assert_array_equal(
        first.get_cluster_probabilities(), second.get_cluster_probabilities()
    )


def test_save_load_gives_identical_results_on_data_read_from_h5ad(trained, tmp_path):
    model, adata = trained
    model.save(tmp_path / "saved")
    adata.write_h5ad(tmp_path / "cells.h5ad")
    fresh = anndata.read_h5ad(tmp_path / "cells.h5ad")
    for loaded in (
        CGMVAE.load(tmp_path / "saved"),
        CGMVAE.load(tmp_path / "saved", adata=anndata.read_h5ad(tmp_path / "cells.h5ad")),
    ):
        np.testing.assert_array_equal(
            loaded.get_latent_representation(fresh), model.get_latent_representation()
        )
        np.testing.assert_array_equal(
            loaded.get_cluster_assignments(fresh), model.get_cluster_assignments()
        )
        np.testing.assert_array_equal(
            loaded.predict_counterfactual(adata=fresh, target_condition="condition_1").X,
            model.predict_counterfactual(target_condition="condition_1").X,
        )


def _fail_while_writing_model(monkeypatch):
    """Make the model file write fail half-way, as a full disk or a kill would."""
    real_save = torch.save

    def half_save(obj, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_save)
    return real_save


def test_interrupted_save_leaves_no_folder_and_no_staging_files(trained, tmp_path, monkeypatch):
    model, _ = trained
    _fail_while_writing_model(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "saved")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_previous_save_loadable(trained, tmp_path, monkeypatch):
    model, _ = trained
    model.save(tmp_path / "saved", save_anndata=True)
    before = sorted(p.name for p in (tmp_path / "saved").iterdir())
    _fail_while_writing_model(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "saved", overwrite=True, save_anndata=True)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == before
    np.testing.assert_array_equal(
        CGMVAE.load(tmp_path / "saved").get_latent_representation(),
        model.get_latent_representation(),
    )


def test_save_refuses_an_existing_folder_without_overwrite(trained, tmp_path):
    model, _ = trained
    (tmp_path / "saved").mkdir()
    with pytest.raises(ValueError, match="overwrite=True"):
        model.save(tmp_path / "saved")


# 10. names, sparse storage, empty genes, too few cells ------------------------------------


def test_duplicate_gene_names_are_refused_at_setup():
    adata = small_adata()
    adata.var_names = ["g0", "g0", *adata.var_names[2:]]
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"1 duplicate gene names \('g0'\).*make_unique"):
        GMVAE.setup_anndata(adata, layer="counts")
    assert_unchanged(adata, before)


def test_duplicate_cell_names_are_logged_at_setup(logged):
    adata = small_adata()
    adata.obs_names = ["c0", "c0", *adata.obs_names[2:]]
    GMVAE.setup_anndata(adata, layer="counts")
    assert any("1 duplicate cell names ('c0')" in message for message in logged)


def test_a_sparse_matrix_storing_an_entry_twice_is_refused():
    adata = small_adata()
    counts = adata.layers["counts"].tocsr()
    row = counts[:1]
    doubled = sp.csr_matrix(
        (np.r_[row.data / 2, row.data[:1] / 2, row.data[1:] / 2],
         np.r_[row.indices, row.indices],
         [0, 2 * row.nnz]),
        shape=row.shape,
    )  # fmt: skip
    adata.layers["counts"] = sp.vstack([doubled, counts[1:]], format="csr")
    adata.layers["counts"].has_canonical_format = False
    with pytest.raises(ValueError, match=r"more than once.*sum_duplicates\(\)"):
        GMVAE.setup_anndata(adata, layer="counts")


def test_genes_zero_in_every_cell_are_named(logged):
    adata = small_adata()
    counts = adata.layers["counts"].toarray()
    counts[:, :3] = 0
    adata.layers["counts"] = sp.csr_matrix(counts)
    GMVAE.setup_anndata(adata, layer="counts")
    GMVAE(adata, n_clusters=2, **TINY)
    names = ", ".join(repr(name) for name in adata.var_names[:3])
    assert any("3 of 50 genes are zero in every cell" in m and names in m for m in logged)
    logged.clear()
    GMVAE(adata, n_clusters=2, likelihood="gaussian", **TINY)  # constant pixels are ordinary
    assert not any("zero in every cell" in m for m in logged)


def test_counts_that_are_integers_only_up_to_rounding_are_logged(logged):
    adata = small_adata()
    adata.layers["counts"] = adata.layers["counts"].toarray().astype(np.float64) + 1e-9
    GMVAE.setup_anndata(adata, layer="counts")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no non-integer warning: they are counts
        GMVAE(adata, n_clusters=2, **TINY)
    assert any("integers only up to rounding error" in message for message in logged)


def test_more_clusters_than_cells_are_refused_before_training(quiet):
    adata = small_adata(n_obs=120)
    GMVAE.setup_anndata(adata, layer="counts")
    with pytest.raises(ValueError, match="n_clusters=130 but adata has only 120 cells"):
        GMVAE(adata, n_clusters=130, **TINY)
    model = GMVAE(adata, n_clusters=115, **TINY)
    with pytest.raises(ValueError, match="n_clusters=115 but the placement would use only 108"):
        model.train(max_epochs=2, **quiet)
    with pytest.raises(ValueError, match="placement would use only 50 cells"):
        GMVAE(adata, n_clusters=60, **TINY).train(max_epochs=2, placement_max_cells=50, **quiet)
    assert not model.is_trained


def test_a_condition_too_rare_for_its_response_is_named(quiet, logged):
    adata = small_adata(n_obs=200)
    rare = np.flatnonzero(adata.obs["condition"] == "condition_1")[3:]
    keep = np.setdiff1d(np.arange(adata.n_obs), rare)
    adata = adata[keep].copy()
    train_tiny(quiet, CGMVAE, adata, {"layer": "counts", "condition_key": "condition"},
               epochs=1, n_clusters=2)  # fmt: skip
    assert any(
        "response to condition(s) 'condition_1' is not estimated" in message for message in logged
    ), logged


# 11. keys written into the user's AnnData -------------------------------------------------


def test_two_models_of_one_class_write_apart_with_key_added(trained, quiet):
    model, training = trained
    adata = training.copy()
    other = train_tiny(quiet, CGMVAE, adata.copy(), {"layer": "counts", "condition_key":
                       "condition"}, n_clusters=3)  # fmt: skip
    model.write_results(adata)
    other.write_results(adata, key_added="cgmvae_k3")
    assert adata.uns["cgmvae"]["params"]["n_clusters"] == 2
    assert adata.uns["cgmvae_k3"]["params"]["n_clusters"] == 3
    assert adata.obsm["X_cgmvae_k3"].shape == (adata.n_obs, 4)
    assert adata.obsm["cgmvae_k3_cluster_probs"].shape == (adata.n_obs, 3)
    assert adata.uns["cgmvae_k3"]["cluster_names"] == other.cluster_names == ["0", "1", "2"]
    np.testing.assert_array_equal(
        adata.obs["cgmvae_k3_cluster"].astype(str),
        np.asarray(other.cluster_names)[adata.obsm["cgmvae_k3_cluster_probs"].argmax(1)],
    )
    np.testing.assert_array_equal(adata.obsm["X_cgmvae"], model.get_latent_representation())


def test_counterfactual_output_keeps_the_users_columns_and_no_scvi_ones(trained):
    model, adata = trained
    assert any(str(column).startswith("_scvi_") for column in adata.obs.columns)
    predicted = model.predict_counterfactual(target_condition="condition_1")
    assert not [column for column in predicted.obs if str(column).startswith("_scvi_")]
    kept = [column for column in adata.obs if not str(column).startswith("_scvi_")]
    assert list(predicted.obs.columns) == [*kept, "counterfactual_condition"]
