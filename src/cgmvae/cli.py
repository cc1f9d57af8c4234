"""Command line: ``cgmvae fit`` trains a CGMVAE on an h5ad file, ``cgmvae demo`` on PBMC."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path


class UsageError(Exception):
    """An error in the user's input, reported in one line with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``cgmvae`` command."""
    parser = argparse.ArgumentParser(
        prog="cgmvae", description="Conditional Gaussian-mixture VAEs for single-cell data."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser(
        "fit",
        help="train a CGMVAE on an .h5ad file and write its results",
        description="Train a CGMVAE and write the latent (.obsm['X_cgmvae']), clusters "
        "(.obs['cgmvae_cluster'], .obsm['cgmvae_cluster_probs']) and parameters "
        "(.uns['cgmvae']) into a copy of the input.",
    )
    fit.add_argument("input", type=Path, help="input AnnData (.h5ad)")
    fit.add_argument("--out", type=Path, required=True, help="output .h5ad path")
    fit.add_argument(
        "--condition-key", default=None, help=".obs column holding the condition (default: none)"
    )
    fit.add_argument(
        "--batch-key",
        default=None,
        help=".obs column of a nuisance batch (donor, run) corrected in the decoder",
    )
    fit.add_argument("--n-clusters", type=int, required=True, help="number of clusters K")
    fit.add_argument("--layer", default=None, help="layer with the counts (default: .X)")
    fit.add_argument(
        "--likelihood",
        default="nb",
        help="observation model: nb (default), zinb, poisson, gaussian or bernoulli",
    )
    fit.add_argument(
        "--score-key",
        default=None,
        help=".obs column of known cell types to score the clusters against (ARI, NMI, ACC); "
        "it does not supervise the model",
    )
    fit.add_argument("--umap", type=Path, default=None, help="also save a UMAP picture here")
    add_training_options(fit)

    demo = commands.add_parser(
        "demo",
        help="train a CGMVAE on the bundled PBMC 68k-reduced data",
        description="Train a CGMVAE (K=10) on PBMC 68k-reduced (700 cells, shipped with "
        "scanpy), write the annotated AnnData, a UMAP and the training curves, and print "
        "ARI/NMI of the clusters against the sorted cell types (bulk_labels).",
    )
    demo.add_argument("--out-dir", type=Path, default=Path("results"), help="output folder")
    demo.add_argument("--n-clusters", type=int, default=10, help="number of clusters K")
    add_training_options(demo)
    return parser


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that trains."""
    parser.add_argument(
        "--save-model",
        type=Path,
        default=None,
        metavar="DIR",
        help="also save the trained model to this folder (load with CGMVAE.load(DIR))",
    )
    parser.add_argument("--n-latent", type=int, default=10, help="latent dimension (default 10)")
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="epochs (default: from the data size)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu"
    )


@dataclass(frozen=True)
class FitJob:
    """What one training run reads and writes."""

    condition_key: str | None
    batch_key: str | None
    layer: str | None
    likelihood: str
    score_key: str | None
    out: Path
    umap: Path | None
    save_model: Path | None


def fit_and_write(adata, args: argparse.Namespace, job: FitJob) -> tuple:
    """Train a CGMVAE on ``adata``, write results; return the model and a run summary."""
    import matplotlib
    import scvi

    matplotlib.use("Agg")  # the command line writes files, it never opens windows
    from cgmvae import CGMVAE
    from cgmvae.metrics import cluster_scores
    from cgmvae.pl import latent_umap

    scvi.settings.seed = args.seed
    CGMVAE.setup_anndata(
        adata, layer=job.layer, condition_key=job.condition_key, batch_key=job.batch_key
    )
    model = CGMVAE(
        adata, n_clusters=args.n_clusters, n_latent=args.n_latent, likelihood=job.likelihood
    )
    start = time.perf_counter()
    model.train(max_epochs=args.max_epochs, accelerator=args.accelerator)
    summary = {"train_seconds": round(time.perf_counter() - start, 2), "n_obs": adata.n_obs}
    model.write_results(adata)
    if job.score_key is not None:
        summary.update(cluster_scores(adata.obs[job.score_key], adata.obs["cgmvae_cluster"]))
    for path in (job.out, job.umap):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    if job.umap is not None:  # before writing, so that the file holds the UMAP too
        keys = (job.score_key, job.condition_key, job.batch_key)
        color = ["cgmvae_cluster"] + [key for key in keys if key is not None]
        latent_umap(adata, "X_cgmvae", color, show=False, save=job.umap)
    adata.write_h5ad(job.out)
    if job.save_model is not None:
        model.save(job.save_model, overwrite=True)
        summary["model_dir"] = str(job.save_model)
    return model, summary


def run_fit(args: argparse.Namespace) -> dict:
    """``cgmvae fit``: read, check, train, write."""
    import anndata

    from cgmvae.validation import check_layer, check_obs_key

    if not args.input.is_file():
        raise UsageError(f"input file {str(args.input)!r} does not exist")
    adata = anndata.read_h5ad(args.input)
    check_layer(adata, args.layer)
    check_obs_key(adata, args.condition_key, "--condition-key")
    check_obs_key(adata, args.batch_key, "--batch-key")
    check_obs_key(adata, args.score_key, "--score-key")
    job = FitJob(
        args.condition_key, args.batch_key, args.layer, args.likelihood, args.score_key,
        args.out, args.umap, args.save_model,
    )  # fmt: skip
    _, summary = fit_and_write(adata, args, job)
    return summary


def run_demo(args: argparse.Namespace) -> dict:
    """``cgmvae demo``: CGMVAE on PBMC 68k-reduced, scored against ``bulk_labels``."""
    from cgmvae.data import pbmc68k_reduced
    from cgmvae.pl import training_history

    out_dir = args.out_dir
    adata = pbmc68k_reduced()
    job = FitJob(
        None, None, "counts", "nb", "bulk_labels",
        out_dir / "pbmc68k_cgmvae.h5ad", out_dir / "pbmc68k_umap.png", args.save_model,
    )  # fmt: skip
    model, summary = fit_and_write(adata, args, job)
    training_history(model.history, show=False, save=out_dir / "pbmc68k_history.png")
    (out_dir / "pbmc68k_metrics.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cgmvae`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = run_fit(args) if args.command == "fit" else run_demo(args)
    except (UsageError, FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"cgmvae {args.command}: error: {message}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
