# %% [markdown]
# # Clustering and generating MNIST digits with a GMVAE
#
# The 10 000 MNIST test images (`cgmvae.data.mnist("test")`, offline after `make data`) as
# an AnnData of 784 pixels in [0, 1]. A GMVAE with 10 clusters and a Bernoulli likelihood
# clusters them without labels; we score the clusters against the digits (Hungarian accuracy,
# NMI, ARI) and draw new digits from each cluster. About a minute on a laptop CPU.

# %%
import anndata
import scvi

from cgmvae import GMVAE
from cgmvae.data import mnist
from cgmvae.metrics import cluster_scores
from cgmvae.pl import image_grid

scvi.settings.seed = 0
digits = mnist("test")
GMVAE.setup_anndata(digits)
model = GMVAE(digits, n_clusters=10, likelihood="bernoulli", n_hidden=256)
model.train(max_epochs=60, batch_size=256)
model.write_results(digits)

# %%
print(cluster_scores(digits.obs["label"], digits.obs["gmvae_cluster"]))

# %% [markdown]
# Real digits per learned cluster, then new digits drawn from each cluster's component:

# %%
image_grid(digits, rows="gmvae_cluster", path="mnist_clusters.png")
generated = [model.sample(10, cluster=str(k)) for k in range(10)]
image_grid(anndata.concat(generated), rows="cluster", path="mnist_generated.png")
