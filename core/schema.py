"""The result-record schema: one place that names every field a run leaves behind.

A *record* is one JSON object per fine-tuning run (one grid cell), written by
``jobs.grid`` and read back by ``core.store``. Top-level scalar fields become
leaderboard columns; nested fields (``config``, ``ood_before``, ``ood_after``,
``zero_shot``, ``transferability``, ``provenance``) are kept as JSON text in the
store and expanded where a page needs them.

This module imports nothing heavy (no torch), so the leaderboard can use it.
"""
from __future__ import annotations

import math
from typing import Any

SCHEMA_VERSION = 1

STATUSES = ("ok", "failed")

#: Scalar columns of the leaderboard, with their type and meaning.
SCALAR_FIELDS: dict[str, tuple[type, str]] = {
    "run_id": (str, "hash of the cell's full config; unique per run"),
    "schema_version": (int, "version of this schema the record follows"),
    "status": (str, "'ok' or 'failed'"),
    "error": (str, "the error message of a failed run, else empty"),
    "model": (str, "open_clip architecture name, e.g. ViT-B-32"),
    "pretrained": (str, "pretrained tag, hub id, or 'random' for random weights"),
    "model_key": (str, "the model-zoo key the run used"),
    "random_weights": (bool, "true when the model had random (untrained) weights"),
    "method": (str, "fine-tuning method name from core.methods"),
    "dataset": (str, "training (in-domain) dataset name"),
    "seed": (int, "random seed of the run"),
    "zs_acc": (float, "zero-shot top-1 test accuracy on the dataset, %"),
    "ft_acc": (float, "top-1 test accuracy after fine-tuning, %"),
    "id_gain": (float, "ft_acc - zs_acc, points"),
    "norm_gain": (float, "(ft_acc - zs_acc) / (100 - zs_acc)"),
    "ood_change": (float, "mean over the OOD sets of (after - before), points"),
    "iimm": (float, "Inter-Intra Modal Measure on the training split"),
    "inter_modal": (float, "mean cosine of wrong image-prompt pairs"),
    "intra_image": (float, "mean cosine of distinct image pairs"),
    "source": (str, "how the numbers were obtained, e.g. 'measured:grid@<host>'"),
    "created_at": (str, "UTC ISO-8601 time the record was written"),
}

#: Nested fields, kept as JSON text in the store.
NESTED_FIELDS: dict[str, str] = {
    "config": "the cell's full config (method hyper-parameters, training recipe, data)",
    "ood_sets": "list of out-of-domain dataset names averaged into ood_change",
    "ood_before": "{ood dataset: zero-shot accuracy %}",
    "ood_after": "{ood dataset: accuracy % after fine-tuning}",
    "zero_shot": "every zero-shot measure of core.metrics on the training split",
    "transferability": "{baseline name: score} on the training split (may be empty)",
    "provenance": "git revision, package versions, device, wall time, peak memory, "
    "trainable/total parameter counts, the reproducing command, host",
}

REQUIRED_FIELDS = ("run_id", "status", "model", "pretrained", "method", "dataset", "seed", "source")
NULLABLE_NUMERIC = ("zs_acc", "ft_acc", "id_gain", "norm_gain", "ood_change", "iimm",
                    "inter_modal", "intra_image")


class SchemaError(ValueError):
    """A record does not follow the schema; the message names the field."""


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    """Check one result record and return it unchanged.

    Raises SchemaError naming the first problem found: a missing required
    field, an unknown status, a wrong type, or a non-finite number.
    """
    if not isinstance(record, dict):
        raise SchemaError(f"a record must be a JSON object, got {type(record).__name__}")
    for name in REQUIRED_FIELDS:
        if name not in record or record[name] in (None, ""):
            raise SchemaError(f"record is missing required field {name!r}")
    if record["status"] not in STATUSES:
        raise SchemaError(f"field 'status' must be one of {STATUSES}, got {record['status']!r}")
    for name, (kind, _) in SCALAR_FIELDS.items():
        value = record.get(name)
        if value is None:
            continue
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SchemaError(f"field {name!r} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise SchemaError(f"field {name!r} must be finite, got {value!r}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SchemaError(f"field {name!r} must be an integer, got {value!r}")
        elif kind is bool:
            if not isinstance(value, bool):
                raise SchemaError(f"field {name!r} must be true or false, got {value!r}")
        elif not isinstance(value, str):
            raise SchemaError(f"field {name!r} must be a string, got {value!r}")
    if record["status"] == "ok":
        for name in ("zs_acc", "ft_acc"):
            if record.get(name) is None:
                raise SchemaError(f"a successful record needs field {name!r}")
    for name in ("ood_before", "ood_after", "zero_shot", "transferability", "provenance", "config"):
        if record.get(name) is not None and not isinstance(record[name], dict):
            raise SchemaError(f"field {name!r} must be a JSON object")
    return record


def outcome_fields(zs_acc: float, ft_acc: float,
                   ood_before: dict[str, float], ood_after: dict[str, float]) -> dict[str, float | None]:
    """SPEC section 2: ID gain, normalised gain and OOD change from raw accuracies (in %)."""
    id_gain = ft_acc - zs_acc
    norm_gain = id_gain / (100.0 - zs_acc) if zs_acc < 100.0 else None
    if set(ood_before) != set(ood_after):
        raise ValueError("ood_before and ood_after must name the same OOD sets")
    ood_change = (sum(ood_after[k] - ood_before[k] for k in ood_before) / len(ood_before)
                  if ood_before else None)
    return {"id_gain": id_gain, "norm_gain": norm_gain, "ood_change": ood_change}
