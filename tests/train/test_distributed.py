"""Plain ``strategy="ddp"`` on two CPU processes trains a usable model, in memory or from disk."""

import json
import subprocess
import sys
import textwrap

import pytest
import scipy.sparse as sp

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import anndata
    import numpy as np
    import os
    import scvi
    from sklearn.metrics import adjusted_rand_score
    from cgmvae import CGMVAE
    from cgmvae.data import simulate

    if sys.argv[2] == "disk":  # every process opens the store; its sampler picks its shard
        adata, layer = anndata.read_h5ad(f"{sys.argv[1]}/cells.h5ad", backed="r"), None
    else:
        adata, layer = simulate(
            counts_layer="counts", n_obs=800, n_vars=100, n_clusters=4, n_conditions=2, seed=0
        ), "counts"
    scvi.settings.seed = int(os.environ.get("CGMVAE_TEST_SEED", "0"))
    CGMVAE.setup_anndata(adata, layer=layer, condition_key="condition")
    model = CGMVAE(adata, n_clusters=4)
    model.train(
        max_epochs=60, accelerator="cpu", devices=2, strategy="ddp",
        enable_progress_bar=False, enable_model_summary=False,
    )
    rank = model.trainer.global_rank
    result = {
        "world_size": model.trainer.world_size,
        "ari": adjusted_rand_score(adata.obs["cluster"], model.get_cluster_assignments()),
        "prior_means": model.module.prior.means.detach().numpy().round(5).tolist(),
        "shared_effect": model.module.condition_effect.shared.detach().numpy().sum().item(),
    }
    with open(f"{sys.argv[1]}/rank{rank}.json", "w") as handle:
        json.dump(result, handle)
    """
)


@pytest.mark.quality
@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_ddp_on_two_processes_places_once_and_recovers_the_clusters(tmp_path, storage):
    if storage == "disk":
        from cgmvae.data import simulate

        cells = simulate(n_obs=800, n_vars=100, n_clusters=4, n_conditions=2, seed=0)
        cells.X = sp.csr_matrix(cells.X)
        cells.write_h5ad(tmp_path / "cells.h5ad")
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path), storage],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(rank["world_size"] == 2 for rank in ranks)
    # one placement, shared: both processes hold the same mixture and condition effect
    assert ranks[0]["prior_means"] == ranks[1]["prior_means"]
    assert ranks[0]["shared_effect"] == ranks[1]["shared_effect"]
    assert ranks[0]["ari"] >= 0.9, ranks[0]
