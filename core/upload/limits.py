"""Limits, errors, the running byte/pixel/time budgets, and name checks shared by every upload loader."""
from __future__ import annotations

import time
import unicodedata
from collections import Counter
from dataclasses import dataclass

import numpy as np

from core.text import FORMULA_PREFIXES  # noqa: F401 (re-exported: core.upload and submissions import it from here)

MiB = 1 << 20
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Only these decoders run: PIL's EPS plugin would call Ghostscript, others are rarely audited.
PIL_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
ARCHIVE_EXTS = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".npz", ".jar"}
ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf\x27\x1c", b"Rar!",
                 b"\x28\xb5\x2f\xfd")
SYSTEM_FILES = {"__macosx", "thumbs.db", "desktop.ini"}
NPZ_KEYS = ("image_embeddings", "text_embeddings", "labels", "class_names")


class UploadError(ValueError):
    """The upload is refused; the message is meant for the person who uploaded it."""


class TemplateError(UploadError):
    """The prompt template, not the uploaded file, is unusable (a page must not blame the file for it)."""


@dataclass(frozen=True)
class UploadLimits:
    """Every limit applied to an upload, in one place. Ratios apply only past ``ratio_floor_bytes``
    so that tiny, very compressible files (a blank BMP) are not mistaken for bombs."""

    max_archive_bytes: int = 200 * MiB
    max_total_uncompressed_bytes: int = 512 * MiB
    max_member_bytes: int = 64 * MiB
    max_member_ratio: float = 100.0
    max_overall_ratio: float = 50.0
    ratio_floor_bytes: int = 4 * MiB
    max_members: int = 5000          # zip entries, directories and system files included
    max_images: int = 2000           # thumbnails are kept in memory: this bounds the result size
    max_image_pixels: int = 16_000_000  # declared width*height (after JPEG draft scaling); a 16 MP WebP
    #                                    decodes with ~250 MiB of peak memory, 25 MP with ~390 MiB
    max_total_pixels: int = 250_000_000  # all images together: bounds the CPU spent decoding
    max_side: int = 256              # images are thumbnailed to this longest side
    min_images_per_class: int = 1
    max_classes: int = 1000
    max_name_length: int = 200       # member paths, labels and the template
    max_manifest_bytes: int = 4 * MiB
    # An .npz forecast runs every transferability baseline on the arrays; these caps keep it near 10 s of
    # CPU and +534 MiB once MiniLM is loaded (python -m tests.measure_forecast_bounds, 2026-12-05;
    # 5,000 x 2,048 x 1,000 took 50 s and +1,179 MiB). A known model's width must match exactly.
    max_embedding_rows: int = 4000
    max_embedding_dim: int = 1152    # the widest open_clip embedding (SigLIP so400m)
    max_embedding_classes: int = 250
    max_npz_bytes: int = 160 * MiB   # all arrays of an .npz together, uncompressed
    max_seconds: float = 300.0       # the whole forecast (parse, embed, measures), see Deadline


DEFAULT_LIMITS = UploadLimits()
class _Skip(Exception):
    """One member is unusable; the message is the reason shown to the user."""


def over_limit(size: int, limit: int) -> tuple[str, str]:
    """How a message refusing ``size`` bytes above ``limit`` shows the two: the size to 0.1 MiB and the limit in
    MiB, or both in bytes where the size would read as no more than the limit (one byte past 200 MiB is not
    'the upload is 200 MiB; the limit is 200 MiB')."""
    size_mib, limit_mib = round(size / MiB, 1), round(limit / MiB, 1)
    if size_mib <= limit_mib:
        return f"{size:,} bytes", f"{limit:,} bytes"
    return f"{size_mib:.1f} MiB", f"{limit_mib:g} MiB"


def _reason_counts(skipped: list[tuple[str, str]]) -> str:
    return "; ".join(f"{n}× {r}" for r, n in Counter(r for _, r in skipped).most_common(5))


def _class_counts(labels, class_names) -> tuple[int, str]:
    """(number of classes, 'cat (2), dog (0)'): what an upload's summary says of its labels (ints 0..C-1)."""
    counts = np.bincount(labels, minlength=len(class_names))
    return len(counts), ", ".join(f"{name} ({n})" for name, n in zip(class_names, counts, strict=True))


def _kind(e: Exception) -> str:
    """The exception's type as a user-facing hint, e.g. 'zlib.error' or 'OSError'."""
    module = type(e).__module__
    return type(e).__name__ if module == "builtins" else f"{module.split('.')[-1]}.{type(e).__name__}"


def _printable(name: str) -> str:
    """The name with control/format characters escaped and its length capped, safe to display."""
    out = "".join(f"\\u{ord(ch):04x}" if _is_control(ch) else ch for ch in name)
    return out if len(out) <= 120 else out[:117] + "..."


def _is_control(ch: str) -> bool:
    # Cf holds the bidi overrides (U+202E) used to spoof names; ZWNJ/ZWJ are legitimate in many scripts.
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in "\u200c\u200d"


def label_problem(label: str, limits: UploadLimits = DEFAULT_LIMITS) -> str | None:
    """Why ``label`` cannot be a class name (empty, too long, control characters, formula), or None."""
    if not label.strip():
        return "empty label"
    if len(label) > limits.max_name_length:
        return f"label longer than {limits.max_name_length} characters"
    if any(_is_control(ch) for ch in label):
        return "label contains control characters"
    if label.startswith(FORMULA_PREFIXES):
        return "label looks like a spreadsheet formula (starts with = + - @)"
    return None



class _Budget:
    """A running cap on bytes actually decompressed, across the whole archive."""

    def __init__(self, cap: int) -> None:
        self.cap, self.used = cap, 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.cap:
            raise UploadError(f"the archive expands to more than {self.cap // MiB} MiB; refusing it "
                              "(zip bomb guard)")


class Deadline:
    """A time budget for a whole upload-to-forecast request; :meth:`check` raises UploadError past it."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def check(self, doing: str = "") -> None:
        if self.end is not None and time.monotonic() > self.end:
            raise UploadError(f"the forecast took longer than its time budget of {self.seconds:.0f} s"
                              f"{' while ' + doing if doing else ''}; try a smaller sample")
