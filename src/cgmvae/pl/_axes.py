"""Where a plot draws and what happens once it is drawn: scanpy's ``ax=``, ``show=``, ``save=``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

#: Backends that draw to files only; on them ``show=None`` does not call ``plt.show()``.
FILE_BACKENDS = ("agg", "pdf", "pgf", "ps", "svg", "cairo", "template")


def panels(
    ax: Axes | Sequence[Axes] | None, n_panels: int, panel_size: tuple[float, float], what: str
) -> tuple[list[Axes], bool]:
    """Return the axes to draw ``n_panels`` panels on, and whether the figure is new.

    ``ax=None`` makes a figure of ``n_panels`` side by side; otherwise ``ax`` must give
    exactly ``n_panels`` axes (one Axes for one panel).

    Raises
    ------
    ValueError
        ``ax`` gives another number of axes; the message says how many ``what`` needs.
    """
    if ax is None:
        width, height = panel_size
        _, grid = plt.subplots(1, n_panels, figsize=(width * n_panels, height), squeeze=False)
        return list(grid[0]), True
    given = [ax] if isinstance(ax, Axes) else list(ax)
    if len(given) != n_panels:
        raise ValueError(
            f"{what} draws {n_panels} panel(s) but ax= gives {len(given)}; pass that many "
            "axes (e.g. plt.subplots(1, n)[1]), or ax=None for a new figure."
        )
    return given, False


def finish(
    axes: list[Axes], new_figure: bool, show: bool | None, save: str | Path | None
) -> Axes | list[Axes] | None:
    """Lay out, save and show the figure; return the axes unless it was shown.

    ``show=None`` shows it on an interactive backend (a notebook, a window) and not when
    drawing to files only, as scanpy's ``autoshow`` does for a session.
    """
    figure = axes[0].figure
    if new_figure:
        figure.tight_layout()
    if save is not None:
        figure.savefig(save, dpi=120, bbox_inches="tight")
    if show is None:
        show = matplotlib.get_backend().lower() not in FILE_BACKENDS
    if show:
        plt.show()
        return None
    return axes[0] if len(axes) == 1 else axes
