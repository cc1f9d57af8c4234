"""Screen a pre-training setting by the partition the mixture would be placed on.

The GMVAE trains as a VAE until it places its mixture, and its final clusters stay within
about ±0.01 of that placement (``benchmarks/results/clustering_ablation.md``), so a setting
can be screened on the VAE phase alone: train a ``VAE`` (Bernoulli likelihood, KL warm-up
over the first 80 % of ``--epochs``, as the GMVAE's first half of 100 epochs), place
(:func:`cgmvae.train.placement.cluster_latent`, ``"umap"``) on the latent of all 10 000 test
images and score the partition (Hungarian ACC, NMI, ARI). One JSON line per run is appended
to ``benchmarks/results/latent_screen.jsonl``. About 2–3 minutes a run on a 2-core CPU.

Usage: ``python benchmarks/latent_screen.py --data mnist --seed 0 --hidden 512 --layers 2``
"""

from __future__ import annotations

import argparse
import json
import time

import scvi

from cgmvae import VAE
from cgmvae.data import fashion_mnist, mnist
from cgmvae.metrics import cluster_scores
from cgmvae.train.placement import cluster_latent

from harness import RESULTS

LOADERS = {"mnist": mnist, "fashion_mnist": fashion_mnist}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist", choices=list(LOADERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--latent", type=int, default=10)
    args = parser.parse_args()
    images = LOADERS[args.data]("test")
    scvi.settings.seed = args.seed
    VAE.setup_anndata(images)
    model = VAE(
        images, n_hidden=args.hidden, n_layers=args.layers, dropout_rate=args.dropout,
        n_latent=args.latent, likelihood="bernoulli",
    )  # fmt: skip
    start = time.perf_counter()
    model.train(
        max_epochs=args.epochs, plan_kwargs={"warmup_end": 0.8},
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    train_seconds = time.perf_counter() - start
    partition = cluster_latent(model.get_latent_representation(), 10, "umap", args.seed)
    scores = cluster_scores(images.obs["label"], partition)
    record = vars(args) | {key: round(value, 4) for key, value in scores.items()}
    record["seconds"] = round(time.perf_counter() - start, 1)
    record["train_seconds"] = round(train_seconds, 1)
    print(json.dumps(record), flush=True)
    with open(RESULTS / "latent_screen.jsonl", "a") as stream:
        stream.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
