"""The package's one library of input checks; each fails early, naming the problem and the fix.

One convention for every check: a value of the wrong kind raises ``TypeError`` (a size that
is not an integer, a weight that is not a number, an AnnData that is not one), a key that is
not there raises ``KeyError`` (with close matches), and a value of the right kind that
cannot be used raises ``ValueError``; what the model can work with but the user should know
is logged as a warning.

- :mod:`~cgmvae.validation.arguments`: sizes, weights, fractions, names and choices passed as
  arguments (models, training, the data generators);
- :mod:`~cgmvae.validation.adata`: the AnnData's type, names, keys, layers and categories;
- :mod:`~cgmvae.validation.values`: the registered matrix's values, read once in chunks.
"""

from cgmvae.validation.adata import (
    align_var_names,
    check_anndata,
    check_covariates,
    check_known_categories,
    check_label_probs,
    check_labels,
    check_layer,
    check_names,
    check_new_obs_column,
    check_obs_complete,
    check_obs_key,
    data_location,
    report_label_counts,
    warn_backed_layer,
)
from cgmvae.validation.arguments import (
    NON_NEGATIVE_PARAMS,
    POSITIVE_INT_PARAMS,
    check_count,
    check_dispersion,
    check_distinct_names,
    check_enough_genes,
    check_fraction,
    check_model_params,
    check_n_clusters,
    check_non_negative,
    check_positive,
    check_proportions,
    check_real,
    check_subset,
    check_trainable,
)
from cgmvae.validation.values import (
    CHUNK_VALUES,
    MatrixScan,
    ValueSummary,
    check_finite,
    check_integer_counts,
    check_no_duplicate_entries,
    check_summary_for_likelihood,
    check_values_for_likelihood,
    scan_matrix,
    summarize_values,
    warn_empty_genes,
)

__all__ = [
    "CHUNK_VALUES",
    "NON_NEGATIVE_PARAMS",
    "POSITIVE_INT_PARAMS",
    "MatrixScan",
    "ValueSummary",
    "align_var_names",
    "check_anndata",
    "check_count",
    "check_covariates",
    "check_dispersion",
    "check_distinct_names",
    "check_enough_genes",
    "check_finite",
    "check_fraction",
    "check_integer_counts",
    "check_known_categories",
    "check_label_probs",
    "check_labels",
    "check_layer",
    "check_model_params",
    "check_n_clusters",
    "check_names",
    "check_new_obs_column",
    "check_no_duplicate_entries",
    "check_non_negative",
    "check_obs_complete",
    "check_obs_key",
    "check_positive",
    "check_proportions",
    "check_real",
    "check_subset",
    "check_summary_for_likelihood",
    "check_trainable",
    "check_values_for_likelihood",
    "data_location",
    "report_label_counts",
    "scan_matrix",
    "summarize_values",
    "warn_backed_layer",
    "warn_empty_genes",
]
