"""Measured properties of the model family (the numbers behind tests/test_model_family.py).

- Linear AE vs PCA: largest principal angle between the span of the linear AE's latent and
  the top-3 PCA scores, on centred Gaussian data (1500 × 20, spectrum 5, 4, 3, then 0.3),
  150 epochs, Adam lr 1e-2.
- k Monte-Carlo samples: standard deviation of the VAE loss over 60 evaluations on one fixed
  minibatch (64 cells × 30 genes, NB), k = 1 and k = 16.
- GMVAE: largest absolute difference between the analytic KL(q(z) || N(μ_k, σ_k²)) and a
  Monte-Carlo estimate from 400 000 draws, over 3 components.

Results to ``benchmarks/results/model_family.json``. About 15 s on a 2-core CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scvi
import torch
from anndata import AnnData
from scipy.linalg import subspace_angles

from cgmvae import AE
from cgmvae.modules import VAEModule
from cgmvae.nn.priors import MixturePrior

from harness import write_json

RESULTS = Path(__file__).parent / "results"


def linear_ae_angle(seed: int) -> float:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(20, 20)))[0]
    scales = np.array([5.0, 4.0, 3.0] + [0.3] * 17)
    data = (rng.normal(size=(1500, 20)) * scales) @ basis.T
    data = (data - data.mean(0)).astype(np.float32)
    adata = AnnData(data)
    scvi.settings.seed = seed
    AE.setup_anndata(adata)
    model = AE(adata, n_latent=3, n_hidden=3, linear=True)
    model.train(
        max_epochs=150, batch_size=256, plan_kwargs={"lr": 1e-2},
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    latent = model.get_latent_representation().astype(np.float64)
    u, s, _ = np.linalg.svd(data, full_matrices=False)
    return float(subspace_angles(latent - latent.mean(0), u[:, :3] * s[:3]).max())


def mc_loss_spread() -> dict[int, float]:
    torch.manual_seed(0)
    tensors = {
        "X": torch.poisson(torch.full((64, 30), 4.0)),
        "condition": torch.zeros(64, 1, dtype=torch.long),
    }
    module = VAEModule(n_input=30, n_latent=5, n_hidden=32, dropout_rate=0.0, likelihood="nb")
    module.train()
    spread = {}
    for k in (1, 16):
        module.n_mc_samples = k
        with torch.no_grad():
            spread[k] = float(np.std([module(tensors)[2].loss.item() for _ in range(60)]))
    return spread


def mixture_kl_error() -> float:
    torch.manual_seed(0)
    prior = MixturePrior(n_clusters=3, n_latent=2)
    mean, var = torch.tensor([[0.3, -0.2]]), torch.tensor([[0.4, 0.9]])
    with torch.no_grad():
        analytic = prior.component_kl(mean, var)[0]
        q = torch.distributions.Normal(mean[0], var[0].sqrt())
        z = q.sample((400_000,))
        components = torch.distributions.Normal(prior.means, prior.variances.sqrt())
        log_p = components.log_prob(z.unsqueeze(1)).sum(-1)
        monte_carlo = (q.log_prob(z).sum(-1, keepdim=True) - log_p).mean(0)
    return float((analytic - monte_carlo).abs().max())


def main() -> None:
    angles = [linear_ae_angle(seed) for seed in range(3)]
    spread = mc_loss_spread()
    results = {
        "linear_ae_max_principal_angle_rad": {"per_seed": angles, "max": max(angles)},
        "vae_loss_std": {"k=1": spread[1], "k=16": spread[16], "ratio": spread[16] / spread[1]},
        "gmvae_kl_analytic_minus_mc_max_abs": mixture_kl_error(),
    }
    print(json.dumps(results, indent=2))
    write_json("model_family", results)


if __name__ == "__main__":
    main()
