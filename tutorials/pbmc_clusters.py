# %% [markdown]
# # Clustering PBMCs with a CGMVAE
#
# 700 peripheral blood mononuclear cells that ship with scanpy, with the integer counts
# recovered from scanpy's log-normalised matrix (`cgmvae.data.pbmc68k_reduced`). We train a
# CGMVAE with 10 clusters on the raw counts (negative binomial likelihood), then compare its
# clusters with the sorted cell types (`bulk_labels`). Runs in about a minute on a laptop CPU.
#
# Run as a script (`python tutorials/pbmc_clusters.py`) or open it as a notebook with
# jupytext.

# %%
import scanpy as sc
import scvi

from cgmvae import CGMVAE
from cgmvae.data import pbmc68k_reduced
from cgmvae.metrics import cluster_scores
from cgmvae.pl import training_history

scvi.settings.seed = 0
adata = pbmc68k_reduced()
adata

# %% [markdown]
# One condition here, so no `condition_key`: the CGMVAE then behaves as a GMVAE.

# %%
CGMVAE.setup_anndata(adata, layer="counts")
model = CGMVAE(adata, n_clusters=10)
model.train()
model.write_results(adata)

# %% [markdown]
# The training curves: the KL weight warms up over the first 40 % of training, the mixture
# is placed on a partition of the latent at 50 %, and `cluster_usage` (the effective number
# of clusters in a minibatch) shows that no cluster collapsed.

# %%
training_history(model.history, "pbmc_history.png")

# %% [markdown]
# Clusters against the sorted cell types (Hungarian accuracy, NMI, ARI):

# %%
print(cluster_scores(adata.obs["bulk_labels"], adata.obs["cgmvae_cluster"]))

# %%
sc.pp.neighbors(adata, use_rep="X_cgmvae")
sc.tl.umap(adata)
sc.pl.umap(adata, color=["cgmvae_cluster", "bulk_labels"], save="_pbmc_cgmvae.png", show=False)
