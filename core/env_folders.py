"""The folders a user names through the environment ($IIMM_RESULTS, $IIMM_SUBMISSIONS, $IIMM_STORE_INDEX,
$IIMM_CACHE, $IIMM_DATA), read one way: set but empty counts as not set, and ``~`` is expanded, or refused by name where no
home folder can be found to expand it."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


class NoHomeFolderError(ValueError):
    """A folder variable starts with ``~`` where no home folder can be found (no $HOME, and a user id the password
    database does not know, as under ``docker run -u 1234``)."""


def env_folder(variable: str, default: Callable[[], Path]) -> Path:
    """``$variable`` as a folder, ``~`` expanded; ``default()`` when it is unset or blank (``Path("")`` would be the
    working folder). NoHomeFolderError naming the variable where its ``~`` cannot be expanded: pathlib's own
    "Could not determine home directory." named neither the variable nor a way out."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return default()
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise NoHomeFolderError(f"{variable}={value}: no home folder can be found here to expand '~' (no $HOME, and "
                                f"this user id has none in the password database); set {variable} to the folder "
                                "without '~'") from None
