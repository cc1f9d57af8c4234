"""Screen partition methods for the mixture placement on the latents training places it on.

The placement is the slow part of a small model's first epoch (importing and compiling UMAP
costs about 18 s in a fresh process, before any data). This screen asks whether a method
without UMAP finds the same clusters. ``--capture`` trains each case's model exactly as
``benchmarks/stability.py`` does until the moment of placement, stops there, and stores
the posterior means of all its cells with their reference labels. ``--score`` then
partitions each stored latent by every method of :data:`METHODS`, each in a fresh process
(so that its time includes imports and compilation), and reports ACC / ARI against the
reference, the neighbour edges each cuts, the partition ``"auto"`` would keep from each pair
of candidates, and the seconds. Results: ``benchmarks/results/placement_screen.{json,md}``.

Usage: ``python benchmarks/placement_screen.py --capture --cases pbmc68k mnist --seeds 0 1``
then ``python benchmarks/placement_screen.py --score``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from harness import RESULTS, write_json

LATENTS = Path("/tmp/cgmvae_placement_latents")
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
METHODS = ("kmeans", "umap", "spectral")
#: Pairs of candidates ``"auto"`` would compare (the first is the default it keeps).
AUTO_PAIRS = (("kmeans", "umap"), ("kmeans", "spectral"))


def spectral_gmm_labels(
    latent: np.ndarray, n_clusters: int, seed: int | None, n_neighbors: int = 15
) -> np.ndarray:
    """Cluster by a Gaussian mixture on a spectral embedding of the latent's neighbour graph.

    The embedding UMAP starts from (the graph Laplacian's leading eigenvectors,
    ``n_components = n_clusters``), without UMAP's layout optimisation, and so without its
    compilation; the mixture consensus is that of ``umap_gmm_labels``.
    """
    from scipy import sparse
    from sklearn.manifold import spectral_embedding

    from cgmvae.train.placement.partition import gmm_consensus, nearest_neighbours

    neighbours = nearest_neighbours(latent, n_neighbors)
    n_obs, k = neighbours.shape
    edges = np.ones(n_obs * k)
    graph = sparse.csr_matrix((edges, (np.repeat(np.arange(n_obs), k), neighbours.ravel())))
    graph = graph.maximum(graph.T)
    with warnings.catch_warnings():
        # separate clusters make a disconnected graph: each part gets its own eigenvector
        warnings.filterwarnings("ignore", "Graph is not fully connected", UserWarning)
        embedding = spectral_embedding(
            graph, n_components=n_clusters, random_state=seed, drop_first=False
        )
    return gmm_consensus(embedding, n_clusters, seed)


class _Placed(Exception):
    """Raised in place of the placement: the latent it would use is what the screen needs."""


def _stop_at_placement(*args, **kwargs):
    raise _Placed


def _model_and_labels(case: str, seed: int):
    """The case's model, set up as the stability benchmark builds it, and its labels."""
    import scvi

    from cgmvae import CGMVAE, GMVAE

    scvi.settings.seed = seed
    if case == "mnist":
        from cgmvae.data import mnist

        adata = mnist("test")
        GMVAE.setup_anndata(adata)
        model = GMVAE(adata, n_clusters=10, likelihood="bernoulli")
        return model, adata.obs["label"].to_numpy(), {"max_epochs": 100}
    from clustering import TASKS

    task = TASKS[case]()
    adata = task.adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts")
    model = CGMVAE(adata, n_clusters=task.n_clusters)
    return model, task.labels.to_numpy(), {}


def capture(case: str, seed: int) -> Path:
    """Train ``case`` at ``seed`` up to its placement; store its latent and labels."""
    from cgmvae.train.placement import mixture

    model, labels, train_kwargs = _model_and_labels(case, seed)
    placing = mixture.cluster_latent
    mixture.cluster_latent = _stop_at_placement
    try:
        model.train(**train_kwargs, **QUIET)
    except _Placed:
        pass
    finally:
        mixture.cluster_latent = placing
    model.is_trained_ = True  # stopped on purpose: its weights are those placement would see
    LATENTS.mkdir(exist_ok=True)
    path = LATENTS / f"{case}_{seed}.npz"
    n_clusters = model.module.n_clusters
    np.savez(path, latent=model.get_latent_representation(), labels=labels.astype(str),
             n_clusters=n_clusters)  # fmt: skip
    return path


def partition(path: Path, method: str, seed: int) -> dict:
    """Partition the stored latent by ``method``; labels and seconds (this process's)."""
    start = time.perf_counter()
    from cgmvae.train.placement.partition import PARTITIONS

    methods = PARTITIONS | {"spectral": spectral_gmm_labels}
    stored = np.load(path)
    labels = methods[method](stored["latent"], int(stored["n_clusters"]), seed)
    return {"clusters": labels.tolist(), "seconds": time.perf_counter() - start}


def score(path: Path, seed: int) -> dict:
    """Every method on one stored latent, each in a fresh process."""
    from cgmvae.metrics import cluster_scores
    from cgmvae.train.placement.partition import (
        CUT_RATIO,
        CUT_TOLERANCE,
        cut_fraction,
        nearest_neighbours,
    )

    stored = np.load(path)
    latent, reference = stored["latent"], stored["labels"]
    known = reference != "nan"
    neighbours = nearest_neighbours(latent, 15)
    rows = {}
    for method in METHODS:
        command = [sys.executable, __file__, "--child", str(path), method, str(seed)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        found = json.loads(done.stdout.strip().splitlines()[-1])
        clusters = np.asarray(found["clusters"])
        scores = cluster_scores(reference[known], clusters[known])
        rows[method] = {
            "acc": scores["acc"], "ari": scores["ari"], "seconds_fresh_process": found["seconds"],
            "cut": cut_fraction(latent, clusters, neighbours=neighbours), "clusters": clusters,
        }  # fmt: skip
    for default, rival in AUTO_PAIRS:
        cut_default, cut_rival = rows[default]["cut"], rows[rival]["cut"]
        wins = cut_rival <= CUT_RATIO * cut_default and cut_default - cut_rival > CUT_TOLERANCE
        chosen = rival if wins else default
        rows[f"auto({default}, {rival})"] = {
            key: rows[chosen][key] for key in ("acc", "ari", "cut")
        } | {"chose": chosen}
    for row in rows.values():
        row.pop("clusters", None)
    return rows


def report(records: list[dict]) -> None:
    """Write the table of every scored latent."""
    header = [
        "case",
        "seed",
        "method",
        "ACC",
        "ARI",
        "edges cut",
        "s (fresh process)",
        "auto chose",
    ]
    lines = ["# Placement methods on the latents training places the mixture on", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]  # fmt: skip
    for record in records:
        for method, row in record["methods"].items():
            seconds = row.get("seconds_fresh_process")
            lines.append(
                f"| {record['case']} | {record['seed']} | {method} | {row['acc']:.3f} | "
                f"{row['ari']:.3f} | {row['cut']:.1%} | "
                f"{'' if seconds is None else f'{seconds:.1f}'} | {row.get('chose', '')} |"
            )
    lines += ["", "Command: `python benchmarks/placement_screen.py --capture --cases ... "
              "--seeds ...` then `--score`."]  # fmt: skip
    (RESULTS / "placement_screen.md").write_text("\n".join(lines) + "\n")
    write_json("placement_screen", {"records": records})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", action="store_true")
    parser.add_argument("--score", action="store_true")
    parser.add_argument("--cases", nargs="+", default=["pbmc68k", "pbmc3k", "mnist"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, method, seed = args.child
        print(json.dumps(partition(Path(path), method, int(seed))))
        return
    if args.capture:
        for case in args.cases:
            for seed in args.seeds:
                print("captured", capture(case, seed), flush=True)
    if args.score:
        records = []
        for path in sorted(LATENTS.glob("*.npz")):
            case, seed = path.stem.rsplit("_", 1)
            records.append({"case": case, "seed": int(seed), "methods": score(path, int(seed))})
            print(json.dumps(records[-1]), flush=True)
        report(records)


if __name__ == "__main__":
    main()
