"""Names and choices shared across the package; importing this module imports no torch."""

from __future__ import annotations

LIKELIHOODS: tuple[str, ...] = ("gaussian", "bernoulli", "poisson", "nb", "zinb")
COUNT_LIKELIHOODS: tuple[str, ...] = ("poisson", "nb", "zinb")


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
