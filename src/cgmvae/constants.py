"""Names and choices shared across the package; importing this module imports no torch.

The registry keys name the tensors a data loader yields, the module keys name what a module's
``inference`` and ``generative`` return. Where scvi-tools has a key for the same thing, the
string is scvi-tools' own, so that its model mixins (``VAEMixin``, ``RNASeqMixin``) read
our modules.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Likelihood = Literal["gaussian", "bernoulli", "poisson", "nb", "zinb"]
PlacementMethod = Literal["auto", "umap", "kmeans", "leiden"]
ConditionEffectKind = Literal["additive", "affine", "injected"]

LIKELIHOODS: tuple[str, ...] = ("gaussian", "bernoulli", "poisson", "nb", "zinb")
COUNT_LIKELIHOODS: tuple[str, ...] = ("poisson", "nb", "zinb")
PLACEMENT_METHODS: tuple[str, ...] = ("auto", "umap", "kmeans", "leiden")
CONDITION_EFFECTS: tuple[str, ...] = ("additive", "affine", "injected")

#: Default (width, depth) of the hidden layers by likelihood: images in [0, 1] need more
#: capacity for a latent that clusters (MNIST placement 0.85 → 0.94 with 512 × 2, see
#: ``benchmarks/results/clustering_ablation.md``); the others keep scVI's 128 × 1.
NETWORK_SIZES: dict[str, tuple[int, int]] = {"bernoulli": (512, 2)}
DEFAULT_NETWORK_SIZE: tuple[int, int] = (128, 1)


class _RegistryKeys(NamedTuple):
    X_KEY: str = "X"
    CONDITION_KEY: str = "condition"
    BATCH_KEY: str = "batch"
    LABELS_KEY: str = "labels"
    LABEL_PROBS_KEY: str = "label_probs"
    CAT_COVS_KEY: str = "extra_categorical_covs"
    CONT_COVS_KEY: str = "extra_continuous_covs"


class _ModuleKeys(NamedTuple):
    X_KEY: str = "x"
    Z_KEY: str = "z"
    QZ_KEY: str = "qz"
    QZM_KEY: str = "qzm"
    QZV_KEY: str = "qzv"
    LIBRARY_KEY: str = "library"
    CONDITION_KEY: str = "condition"
    BATCH_INDEX_KEY: str = "batch_index"
    CAT_COVS_KEY: str = "cat_covs"
    CONT_COVS_KEY: str = "cont_covs"
    PX_KEY: str = "px"
    COMPONENT_KL_KEY: str = "component_kl"
    COMPONENT_LOGITS_KEY: str = "component_logits"
    COMPONENT_PROBS_KEY: str = "component_probs"
    CLUSTER_PROBS_KEY: str = "cluster_probs"


#: Keys of the tensors in a minibatch (the same strings as ``scvi.REGISTRY_KEYS`` where
#: scvi-tools has them).
REGISTRY_KEYS = _RegistryKeys()
#: Keys of the dictionaries returned by the modules' ``inference`` and ``generative``.
MODULE_KEYS = _ModuleKeys()


def check_choice(what: str, value: str, choices: tuple[str, ...], guide: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` naming them.

    ``guide`` says which choice fits which use; it ends the error message.
    """
    if value not in choices:
        raise ValueError(
            f"Unknown {what} {value!r}. Choose one of {', '.join(map(repr, choices))}: {guide}"
        )
    return value


def check_likelihood(likelihood: str) -> str:
    """Return ``likelihood`` if it is supported, else raise a ``ValueError`` naming the options."""
    return check_choice(
        "likelihood",
        likelihood,
        LIKELIHOODS,
        "'nb'/'zinb'/'poisson' for raw counts, 'gaussian' for log-normalised or continuous "
        "data, 'bernoulli' for values in [0, 1] such as images.",
    )


def network_size(
    likelihood: str, n_hidden: int | None, n_layers: int | None
) -> tuple[int | None, int | None]:
    """Resolve ``None`` widths and depths to the likelihood's default (:data:`NETWORK_SIZES`)."""
    width, depth = NETWORK_SIZES.get(likelihood, DEFAULT_NETWORK_SIZE)
    return (width if n_hidden is None else n_hidden, depth if n_layers is None else n_layers)


def check_condition_effect(condition_effect: str) -> str:
    """Return ``condition_effect`` if it is supported, else raise a ``ValueError``."""
    return check_choice(
        "condition_effect",
        condition_effect,
        CONDITION_EFFECTS,
        "'additive' (a shared plus a cluster-specific change of each output, which carries "
        "over to unseen cluster-condition pairs; count likelihoods), 'affine' (a per-condition "
        "change of contrast and offset of each feature, taken out before the encoder; "
        "gaussian and bernoulli) or 'injected' (the condition as an input of every decoder "
        "layer, free to interact with z).",
    )
