import json
import subprocess
import sys

import anndata
import pytest

from cgmvae.cli import main


def printed_summary(stdout: str) -> dict:
    """The JSON summary the CLI prints last (a progress bar may come before it)."""
    return json.loads(stdout[stdout.rindex("\n{") + 1 :] if "\n{" in stdout else stdout)


@pytest.fixture
def tiny_h5ad(sim_adata, tmp_path):
    path = tmp_path / "tiny.h5ad"
    sim_adata[:150].copy().write_h5ad(path)
    return path


def test_fit_writes_results(tiny_h5ad, tmp_path, capsys):
    out = tmp_path / "fitted.h5ad"
    argv = [
        "fit", str(tiny_h5ad), "--condition-key", "condition", "--n-clusters", "3",
        "--layer", "counts", "--max-epochs", "2", "--score-key", "cluster", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    summary = printed_summary(capsys.readouterr().out)
    assert {"ari", "nmi", "acc", "train_seconds"} <= summary.keys()
    fitted = anndata.read_h5ad(out)
    assert fitted.obsm["X_cgmvae"].shape == (150, 10)
    assert "cgmvae_cluster" in fitted.obs


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--condition-key", "conditon"], "conditon"),
        (["--layer", "raw_counts"], "raw_counts"),
    ],
)
def test_fit_bad_key_is_one_line_error(tiny_h5ad, tmp_path, capsys, extra, message):
    argv = ["fit", str(tiny_h5ad), "--n-clusters", "3", "--out", str(tmp_path / "o.h5ad")]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_fit_corrects_a_batch_and_saves_a_model_that_loads(tiny_h5ad, tmp_path, capsys):
    from cgmvae import CGMVAE

    data = anndata.read_h5ad(tiny_h5ad)
    data.obs["donor"] = ["d1", "d2"] * (data.n_obs // 2)
    data.write_h5ad(tiny_h5ad)
    out, folder = tmp_path / "fitted.h5ad", tmp_path / "model"
    argv = [
        "fit", str(tiny_h5ad), "--condition-key", "condition", "--batch-key", "donor",
        "--n-clusters", "3", "--layer", "counts", "--max-epochs", "2", "--out", str(out),
        "--save-model", str(folder),
    ]  # fmt: skip
    assert main(argv) == 0
    assert printed_summary(capsys.readouterr().out)["model_dir"] == str(folder)
    fitted = anndata.read_h5ad(out)
    assert fitted.uns["cgmvae"]["setup"]["batch_key"] == "donor"
    model = CGMVAE.load(folder, adata=fitted)
    assert model.summary_stats["n_batch"] == 2
    assert model.get_latent_representation().shape == (fitted.n_obs, 10)


def test_fit_bad_batch_key_is_one_line_error(tiny_h5ad, tmp_path, capsys):
    argv = ["fit", str(tiny_h5ad), "--n-clusters", "3", "--out", str(tmp_path / "o.h5ad"),
            "--batch-key", "donr"]  # fmt: skip
    assert main(argv) == 2
    assert "--batch-key='donr' is not a column" in capsys.readouterr().err


def test_fit_missing_file_is_one_line_error(tmp_path, capsys):
    argv = ["fit", str(tmp_path / "nope.h5ad"), "--n-clusters", "3", "--out", "x.h5ad"]
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--condition-key", "--batch-key", "--n-clusters", "--layer", "--likelihood",
                   "--score-key", "--save-model", "--max-epochs", "--out", "--seed"):  # fmt: skip
        assert option in text


def test_demo_writes_h5ad_umap_and_scores(tmp_path, capsys):
    out_dir = tmp_path / "results"  # not there yet, as in a fresh clone's `make demo`
    assert main(["demo", "--out-dir", str(out_dir), "--max-epochs", "3"]) == 0
    summary = printed_summary(capsys.readouterr().out)
    assert 0 <= summary["ari"] <= 1 and 0 <= summary["nmi"] <= 1
    for name in ("pbmc68k_cgmvae.h5ad", "pbmc68k_umap.png", "pbmc68k_history.png"):
        assert (out_dir / name).stat().st_size > 0
    assert anndata.read_h5ad(out_dir / "pbmc68k_cgmvae.h5ad").n_obs == 700


def test_help_imports_neither_torch_nor_scvi():
    script = (
        "import sys\n"
        "import cgmvae.cli as cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'scvi', 'scanpy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
