"""Names and choices shared across the package; importing this module imports no torch.

The registry keys name the tensors a data loader yields, the module keys name what a module's
``inference`` and ``generative`` return. Where scvi-tools has a key for the same thing, the
string is scvi-tools' own, so that its model mixins (``VAEMixin``, ``RNASeqMixin``) read
our modules.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

PlacementMethod = Literal["auto", "umap", "kmeans", "leiden"]
ConditionEffectKind = Literal["additive", "affine", "injected", "switched"]

PLACEMENT_METHODS: tuple[str, ...] = ("auto", "umap", "kmeans", "leiden")
CONDITION_EFFECTS: tuple[str, ...] = ("additive", "affine", "injected", "switched")
ConditionInvarianceKind = Literal["mmd", "adversarial"]
#: The learned penalties that keep the condition out of the latent (``condition_invariance``).
CONDITION_INVARIANCES: tuple[str, ...] = ("mmd", "adversarial")


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


def check_condition_effect(condition_effect: str) -> str:
    """Return ``condition_effect`` if it is supported, else raise a ``ValueError``."""
    return check_choice(
        "condition_effect",
        condition_effect,
        CONDITION_EFFECTS,
        "'additive' (a shared plus a cluster-specific change of each output, which carries "
        "over to unseen cluster-condition pairs; count likelihoods), 'affine' (a per-condition "
        "change of contrast and offset of each feature, taken out before the encoder; "
        "gaussian and bernoulli), 'switched' (a first encoder layer and a last decoder layer "
        "per condition, any linear map of the observations) or 'injected' (the condition as "
        "an input of every decoder layer, free to interact with z).",
    )


def check_condition_invariance(condition_invariance: str | None) -> str | None:
    """Return ``condition_invariance`` if ``None`` or supported, else raise a ``ValueError``."""
    if condition_invariance is None:
        return None
    return check_choice(
        "condition_invariance",
        condition_invariance,
        CONDITION_INVARIANCES,
        "'mmd' (a kernel two-sample penalty between the conditions' latent codes) or "
        "'adversarial' (a condition classifier on the latent that the encoder learns to "
        "defeat); None for no penalty.",
    )
