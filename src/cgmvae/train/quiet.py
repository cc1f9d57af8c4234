"""Lightning's messages a user can do nothing about, hidden during training only."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

LIGHTNING_LOGGER = "lightning.pytorch.utilities.rank_zero"
#: Lightning 2.6 calls a torch API that torch 2.10+ deprecated, once per training step.
TREESPEC_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


#: Lightning's per-run banner lines ("GPU available: False, used: False"), one set per model.
HARDWARE_BANNER = ("GPU available:", "TPU available:", "HPU available:", "IPU available:")


def _drop_advertising(record: logging.LogRecord) -> bool:
    """Keep Lightning's messages except its product tips and its hardware banner."""
    message = str(record.msg)
    return not (message.startswith("💡 Tip") or message.startswith(HARDWARE_BANNER))


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Within the block, drop Lightning's product tips, hardware banner and a per-step warning.

    Both filters are removed on exit, so the rest of the session (and other libraries'
    Lightning runs) see Lightning as it is.
    """
    logger = logging.getLogger(LIGHTNING_LOGGER)
    logger.addFilter(_drop_advertising)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=TREESPEC_WARNING)
            yield
    finally:
        logger.removeFilter(_drop_advertising)
