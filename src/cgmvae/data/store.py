"""An .h5ad store for training from disk: ``X`` laid out contiguously, read in runs of rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

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
        encoding = _encoding(matrix)
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


class StoredRows:
    """Rows of the CSR ``X`` of a backed AnnData, read one run of neighbouring rows at a time.

    A run of rows is one stretch of ``X``'s ``data`` and ``indices`` (the anndata on-disk
    format), so a minibatch of a few runs costs a few reads. anndata reads a backed matrix row
    by row for an array of rows, and checks its installed version on every indexing call
    (about 3 ms), which this reader avoids. It reads through the AnnData's own file handle
    (``adata.file``), so closing that handle closes it too. The row pointers are held in
    memory (8 bytes a row: 40 MB for 5·10⁶ cells).

    Parameters
    ----------
    adata
        An AnnData opened with ``read_h5ad(..., backed="r")`` whose ``X`` is a CSR matrix.

    Raises
    ------
    ValueError
        ``adata`` is not backed, or its ``X`` is not a CSR matrix.
    """

    def __init__(self, adata):
        encoding = _backed_encoding(adata)
        if encoding != "csr_matrix":
            raise ValueError(
                f"StoredRows reads the CSR X of a backed AnnData; this one's X is "
                f"{encoding or 'in memory'}. Open a file whose X is CSR with "
                "anndata.read_h5ad(path, backed='r')."
            )
        self.adata = adata
        matrix = adata.file["X"]
        self.indptr = matrix["indptr"][:]
        self.n_vars = int(matrix.attrs["shape"][1])
        self.dtype = matrix["data"].dtype

    def __getitem__(self, rows: np.ndarray) -> csr_matrix:
        """Return the rows ``rows`` (in increasing order; repeats allowed) as a CSR matrix."""
        rows = np.asarray(rows)
        if len(rows) == 0:
            return csr_matrix((0, self.n_vars), dtype=self.dtype)
        cuts = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = rows[np.r_[0, cuts]]
        stops = rows[np.r_[cuts - 1, len(rows) - 1]] + 1
        matrix = self.adata.file["X"]
        values, columns = matrix["data"], matrix["indices"]
        data, indices = [], []
        for start, stop in zip(self.indptr[starts], self.indptr[stops], strict=True):
            data.append(values[start:stop])
            indices.append(columns[start:stop])
        lengths = self.indptr[rows + 1] - self.indptr[rows]
        indptr = np.r_[0, np.cumsum(lengths)]
        return csr_matrix(
            (np.concatenate(data), np.concatenate(indices), indptr),
            shape=(len(rows), self.n_vars),
        )


def _encoding(matrix) -> str | None:
    """How an ``.h5ad`` file stores ``matrix`` (its ``X`` group or dataset), or ``None``."""
    return None if matrix is None else matrix.attrs.get("encoding-type", "array")


def _backed_encoding(adata) -> str | None:
    """How a backed AnnData's file stores its ``X``; ``None`` for an AnnData in memory."""
    return _encoding(adata.file["X"]) if adata.isbacked else None


def stored_rows(adata) -> StoredRows | None:
    """Return a :class:`StoredRows` reader of a backed AnnData's ``X``, or ``None``.

    ``None`` for an AnnData in memory, and for a backed one whose ``X`` is not a CSR matrix.
    """
    return StoredRows(adata) if _backed_encoding(adata) == "csr_matrix" else None
