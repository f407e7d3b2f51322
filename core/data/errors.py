"""DatasetUnavailableError, in a module of its own: :mod:`core.data.lazy` (which :mod:`core.data.base` imports)
raises it while a dataset is read, and could not import it from :mod:`core.data.registry`, which imports base.
``core.data.registry.DatasetUnavailableError`` is the same class."""
from __future__ import annotations


class DatasetUnavailableError(RuntimeError):
    """A dataset cannot be loaded here (offline, missing files); the message says what to do."""
