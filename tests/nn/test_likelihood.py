"""Likelihoods as registered classes: the built-ins, and a new one added in this file only."""

import numpy as np
import pytest
import scvi
import torch
from anndata import AnnData
from torch.distributions import StudentT

from cgmvae import GMVAE, VAE
from cgmvae.nn import LIKELIHOODS, LikelihoodHead, get_likelihood, register_likelihood
from cgmvae.validation import check_values_for_likelihood


class StudentTLikelihood(LikelihoodHead):
    """Heavy-tailed continuous data: Student-t with 3 degrees of freedom, learned scales."""

    name = "student_t"
    use_for = "continuous data with heavy tails"

    def __init__(self, n_hidden, n_output, learn_scale=True):
        super().__init__(n_hidden, n_output)
        self.log_scale = torch.nn.Parameter(torch.zeros(n_output))

    def distribution(self, raw, hidden, library, affine):
        return StudentT(3.0, raw, self.log_scale.exp().expand_as(raw), validate_args=False)


@pytest.fixture
def student_t():
    register_likelihood(StudentTLikelihood)
    yield "student_t"
    del LIKELIHOODS["student_t"]


def heavy_tailed_groups(n_obs=400, n_vars=20, seed=0):
    """Two groups of cells, means ±2 on every feature, Student-t noise (3 d.o.f.)."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 2, n_obs)
    values = 4.0 * groups[:, None] - 2.0 + rng.standard_t(3, size=(n_obs, n_vars))
    adata = AnnData(values.astype(np.float32))
    adata.obs["group"] = groups.astype(str)
    return adata


def test_the_built_in_likelihoods_are_registered_with_their_properties():
    assert set(LIKELIHOODS) >= {"gaussian", "bernoulli", "poisson", "nb", "zinb"}
    counts = {name for name, kind in LIKELIHOODS.items() if kind.counts}
    assert counts == {"poisson", "nb", "zinb"}
    assert get_likelihood("bernoulli").network_size == (512, 2)
    assert get_likelihood("nb").network_size == (128, 1)
    with pytest.raises(ValueError, match=r"Unknown likelihood 'negbin'.*'nb' for raw counts"):
        get_likelihood("negbin")


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("gaussian", {"mean.weight", "mean.bias", "log_scale"}),
        ("bernoulli", {"mean.weight", "mean.bias"}),
        ("poisson", {"mean.weight", "mean.bias"}),
        ("nb", {"mean.weight", "mean.bias", "log_theta"}),
        ("zinb", {"mean.weight", "mean.bias", "log_theta", "dropout_logits.weight",
                  "dropout_logits.bias"}),
    ],
)  # fmt: skip
def test_parameter_names_are_those_saved_models_hold(name, parameters):
    assert set(get_likelihood(name)(8, 5).state_dict()) == parameters


@pytest.mark.parametrize("name", ["gaussian", "bernoulli", "poisson", "nb", "zinb"])
def test_summed_negative_log_likelihood_equals_the_distributions_own(name):
    torch.manual_seed(0)
    head = get_likelihood(name)(8, 5)
    library = torch.full((4, 1), 50.0)
    px = head(torch.randn(4, 8), library)
    x = px.sample().clone()  # scvi-tools samples in inference mode
    torch.testing.assert_close(head.negative_log_likelihood(px, x), -px.log_prob(x).sum(-1))


def test_draws_stay_in_each_likelihoods_support():
    torch.manual_seed(0)
    hidden, library = torch.randn(50, 8), torch.full((50, 1), 200.0)
    for name in ("poisson", "nb", "zinb"):
        draws = get_likelihood(name)(8, 5)(hidden, library).sample()
        assert (draws >= 0).all() and (draws == draws.round()).all(), name
    pixels = get_likelihood("bernoulli")(8, 5)(hidden).sample()
    assert set(pixels.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.quality
def test_a_likelihood_added_outside_the_package_trains_saves_and_loads(student_t, quiet, tmp_path):
    adata = heavy_tailed_groups()
    scvi.settings.seed = 0
    GMVAE.setup_anndata(adata)
    model = GMVAE(adata, n_clusters=2, likelihood=student_t, n_latent=2)
    model.train(max_epochs=40, **quiet)
    loss = model.history["elbo_train"]["elbo_train"].to_numpy()
    assert loss[-1] < loss[0]
    head = model.module.decoder.head
    assert isinstance(head, StudentTLikelihood) and not model.module.models_counts
    clusters = model.get_cluster_assignments()
    agreement = np.mean(clusters == adata.obs["group"].astype(int).to_numpy())
    assert max(agreement, 1 - agreement) >= 0.95
    model.save(tmp_path / "model")
    loaded = GMVAE.load(tmp_path / "model", adata=adata)
    assert isinstance(loaded.module.decoder.head, StudentTLikelihood)
    np.testing.assert_allclose(
        loaded.get_latent_representation(), model.get_latent_representation(), atol=1e-5
    )


def test_a_new_likelihood_gets_the_shared_checks_and_is_gone_once_removed(student_t):
    values = heavy_tailed_groups().X
    check_values_for_likelihood(values, student_t)  # negative values are fine here
    values[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_values_for_likelihood(values, student_t)
    with pytest.raises(ValueError, match="needs a count likelihood"):
        VAE.setup_anndata(adata := heavy_tailed_groups())
        VAE(adata, likelihood=student_t).get_normalized_expression()
    del LIKELIHOODS[student_t]
    with pytest.raises(ValueError, match="Unknown likelihood 'student_t'"):
        VAE(adata, likelihood=student_t)
    register_likelihood(StudentTLikelihood)  # the fixture removes it again
