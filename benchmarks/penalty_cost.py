"""Cost of the condition-invariance penalty per training step, with and without it.

The same CGMVAE sizes as ``benchmarks/speed.py`` (NB, 128 hidden, latent 10, 2,000 genes,
two conditions), one model with ``condition_invariance="mmd"`` (the default) and one with
``None``. Each model's module takes the same minibatches (forward, backward, Adam step);
the two alternate for ``--rounds`` rounds so that the machine's drift hits both. Reports
milliseconds per step (median over rounds) and the penalty's share to
``benchmarks/results/penalty_cost.json``. About a minute on a 2-core CPU.

Usage: ``python benchmarks/penalty_cost.py [--batch-sizes 128 512] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness import write_json

N_OBS, N_VARS, N_BATCHES, REPEATS = 4096, 2000, 8, 10


def step_milliseconds(module, batches: list, n_obs: int) -> float:
    """Mean milliseconds of one training step of ``module`` over ``batches``, repeated."""
    import torch

    module.train()
    optimiser = torch.optim.Adam(module.parameters(), 1e-3)
    start = time.perf_counter()
    for _ in range(REPEATS):
        for batch in batches:
            _, _, output = module(batch, loss_kwargs={"n_obs": n_obs, "kl_weight": 1.0})
            optimiser.zero_grad()
            output.loss.backward()
            optimiser.step()
    return (time.perf_counter() - start) / (REPEATS * len(batches)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from cgmvae import CGMVAE
    from cgmvae.data import simulate

    adata = simulate(n_obs=N_OBS, n_vars=N_VARS, n_clusters=8, n_conditions=2, seed=0)
    CGMVAE.setup_anndata(adata, condition_key="condition")
    penalties = {"mmd": "mmd", "none": None}
    models = {
        name: CGMVAE(adata, n_clusters=8, n_hidden=128, n_latent=10, likelihood="nb",
                     condition_invariance=penalty)
        for name, penalty in penalties.items()
    }  # fmt: skip
    rows = []
    for batch_size in args.batch_sizes:
        loader = models["mmd"]._make_data_loader(adata=adata, batch_size=batch_size)
        batches = [batch for _, batch in zip(range(N_BATCHES), loader, strict=False)]
        times = {name: [] for name in models}
        for _ in range(args.rounds):
            for name, model in models.items():
                times[name].append(step_milliseconds(model.module, batches, N_OBS))
        medians = {name: statistics.median(values) for name, values in times.items()}
        row = {"batch_size": batch_size, "milliseconds_per_step": times,
               "median_mmd": medians["mmd"], "median_none": medians["none"],
               "penalty_share": medians["mmd"] / medians["none"] - 1}  # fmt: skip
        rows.append(row)
        print(row, flush=True)
    write_json("penalty_cost", {"arguments": vars(args), "runs": rows})


if __name__ == "__main__":
    main()
