"""An .h5ad store laid out for training from disk: ``X``'s values and columns contiguous."""

from __future__ import annotations

from pathlib import Path

#: Values copied at a time (512 MiB of float32), so no step holds the whole matrix.
COPY_VALUES = 1 << 27


def write_contiguous_h5ad(source: str | Path, target: str | Path) -> Path:
    """Copy the ``.h5ad`` file ``source`` to ``target`` with a sparse ``X`` stored unchunked.

    anndata writes a sparse ``X`` as chunked HDF5 datasets, and HDF5 reads a whole chunk for
    every row a minibatch takes: about 141 KiB twice for a cell of 600 stored values in an
    atlas written by anndata, 60 times the row. Training from ``anndata.read_h5ad(target,
    backed="r")`` reads only the rows (``benchmarks/store_layout.py``; ``docs/performance.md``).
    Everything else (``obs``, ``var``, ``uns``, layers, ...) is copied as it is; ``X``'s
    ``data`` and ``indices`` are copied :data:`COPY_VALUES` values at a time.

    Parameters
    ----------
    source
        An ``.h5ad`` file whose ``X`` is CSR (as :func:`anndata.io.write_h5ad` writes it).
    target
        Where to write the copy; must not exist.

    Returns
    -------
    pathlib.Path
        ``target``.

    Raises
    ------
    ValueError
        ``X`` of ``source`` is not a CSR matrix, or ``target`` exists or is ``source``.
    """
    import h5py

    source, target = Path(source), Path(target)
    if target.exists():
        raise ValueError(f"{str(target)!r} exists; name a new file (or delete it first).")
    with h5py.File(source, "r") as read:
        matrix = read.get("X")
        encoding = None if matrix is None else matrix.attrs.get("encoding-type")
        if encoding != "csr_matrix":
            raise ValueError(
                f"X of {str(source)!r} is stored as {encoding or 'nothing'}, not a CSR matrix; "
                "only a sparse X by rows is rewritten. Write it as CSR first: "
                "adata.X = scipy.sparse.csr_matrix(adata.X); adata.write_h5ad(path)."
            )
        with h5py.File(target, "w") as write:
            _copy_attributes(read, write)
            for name in read:
                if name != "X":
                    read.copy(read[name], write, name)
            _copy_contiguous(matrix, write.create_group("X"))
    return target


def _copy_attributes(read, write) -> None:
    for key, value in read.attrs.items():
        write.attrs[key] = value


def _copy_contiguous(matrix, group) -> None:
    _copy_attributes(matrix, group)
    group.create_dataset("indptr", data=matrix["indptr"][:])
    for key in ("data", "indices"):
        chunked = matrix[key]
        flat = group.create_dataset(key, chunked.shape, chunked.dtype)
        for start in range(0, chunked.shape[0], COPY_VALUES):
            flat[start : start + COPY_VALUES] = chunked[start : start + COPY_VALUES]
