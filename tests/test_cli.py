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
        "--layer", "counts", "--max-epochs", "2", "--labels-key", "cluster", "--out", str(out),
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


def test_fit_missing_file_is_one_line_error(tmp_path, capsys):
    argv = ["fit", str(tmp_path / "nope.h5ad"), "--n-clusters", "3", "--out", "x.h5ad"]
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--condition-key", "--n-clusters", "--layer", "--likelihood",
                   "--max-epochs", "--out", "--seed"):  # fmt: skip
        assert option in text


def test_demo_writes_h5ad_umap_and_scores(tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path), "--max-epochs", "3"]) == 0
    summary = printed_summary(capsys.readouterr().out)
    assert 0 <= summary["ari"] <= 1 and 0 <= summary["nmi"] <= 1
    for name in ("pbmc68k_cgmvae.h5ad", "pbmc68k_umap.png", "pbmc68k_history.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert anndata.read_h5ad(tmp_path / "pbmc68k_cgmvae.h5ad").n_obs == 700


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
