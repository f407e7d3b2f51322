"""Safe parsing of samples uploaded by strangers: a zip of labelled images, or an .npz of embeddings.

Threat model: every byte of the upload may be hostile. Nothing is extracted to disk: members are
read into memory in chunks under running byte caps (header sizes are never trusted), images are
decoded from BytesIO by a short list of PIL decoders after their declared size is checked, and each
refused member is reported as (name, reason) instead of being dropped silently.

Where each rule lives (one guess each):

* :mod:`core.upload.limits` -- every limit (:class:`UploadLimits`), the byte budget, the time budget
  (:class:`Deadline`), and label/name checks (formula-looking labels are refused, not escaped);
* :mod:`core.upload.archive` -- the zip itself: entry count, member names, capped member reads; a folder on
  disk as the zip of it (:func:`folder_as_zip`, for the command line);
* :mod:`core.upload.images` -- one image: declared size, total pixel budget, 16-bit/float conversion;
* :mod:`core.upload.folders` -- class-folder and CSV-manifest layouts -> :class:`UploadedSample`;
* :mod:`core.upload.embeddings` -- ``.npz`` of precomputed embeddings, width checked against the model.
"""
from __future__ import annotations

from core.upload.archive import Source, _open_zip, _opened, _read_member, folder_as_zip
from core.upload.embeddings import embedding_width, embeddings_summary, embeddings_warnings, load_embeddings_npz
from core.upload.folders import UploadedSample, check_template, load_image_folder_zip
from core.upload.images import PixelBudget, _decode_image
from core.upload.limits import (ARCHIVE_EXTS, DEFAULT_LIMITS, FORMULA_PREFIXES, IMAGE_EXTS, MiB, NPZ_KEYS,
                                PIL_FORMATS, Deadline, TemplateError, UploadError, UploadLimits, _Budget, _printable,
                                _Skip, label_problem)


def upload_warnings(parsed: UploadedSample | dict) -> list[str]:
    """What an upload's summary warns of beyond its counts (:meth:`UploadedSample.summary`,
    :func:`embeddings_summary`): images or embedding rows repeated exactly, classes dropped, the split used. A
    forecast keeps them, so a saved one says them too."""
    if isinstance(parsed, UploadedSample):
        return list(parsed.warnings)
    return embeddings_warnings(parsed)


__all__ = ["ARCHIVE_EXTS", "DEFAULT_LIMITS", "Deadline", "FORMULA_PREFIXES", "IMAGE_EXTS", "MiB", "NPZ_KEYS",
           "PIL_FORMATS", "PixelBudget", "Source", "TemplateError", "UploadError", "UploadLimits", "UploadedSample",
           "check_template", "embedding_width", "embeddings_summary", "folder_as_zip", "label_problem", "load_embeddings_npz",
           "load_image_folder_zip", "upload_warnings"]
