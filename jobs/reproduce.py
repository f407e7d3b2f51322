"""Run stored records' cells again and compare: do the records reproduce here?

    python -m jobs.reproduce RECORD.json [RECORD.json ...] [--tolerance 0] [--device cpu] [--threads N]
                             [--cache DIR] [--out CSV]

Each record's ``config`` is the cell it ran. The cell runs again here, with the record's seed, and writes
nothing to any store; then every measured value is compared with the record's: the accuracies before and
after fine-tuning (task and each OOD set), the outcomes (ID gain, normalised gain, OOD change) and the
zero-shot measures (IIMM and its two terms). A difference larger than ``--tolerance`` is listed: for the
accuracies and outcomes in their own units, default 0 (an accuracy counts images, so a real difference is at
least 100/N points; values equal to within 1e-12 are float rounding, never listed); for the zero-shot measures
``--measure-tolerance``, default 1e-6 (cosines recomputed from fresh embeddings differ around 1e-8; the app
shows three decimals). A model, method, dataset, seed or OOD panel
the record names that is not its config's (the cell run here) is listed too. A host can verify a submitted,
unverified run this way. Float reductions depend on the device, the thread count and the library versions,
so compare on the kind of machine the record names (``provenance.device``, ``.gpu``, ``.versions``, ``.cpu``,
``.cpu_signature``, ``.cpu_capability``, ``.numerics_env``, ``.torch_threads``, ``.blas_threads``; a difference is
pointed out, as is other data: a split whose ``.data_fingerprint`` differs from the re-run's).
Exit 0 when every record reproduces (a record that failed and fails here too counts), 1 when a value or the
status differs, 2 for a bad option, a file that is no record, a model this machine cannot load, a method its
registry does not list, or an unknown dataset or an image folder not on this machine (checked before any cell
runs), 130 on Ctrl-C after reporting what was compared (``--out`` left as it was when nothing was).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from jobs.cli import EXIT_FAILED, check_cache_folder, check_csv_out, check_device, job_parser, user_facing, work_begins

log = logging.getLogger(__name__)
COLUMNS = ["run_id", "field", "recorded", "reproduced", "difference"]
SCALARS = ("zs_acc", "ft_acc", "id_gain", "norm_gain", "ood_change", "iimm", "inter_modal", "intra_image")
MEASURES = ("iimm", "inter_modal", "intra_image")  # cosines of fresh embeddings: float noise around 1e-8
#: what a record says it is; the run here takes all of it from the config, so a record whose fields claim another
#: cell than its config (a relabelled submission) must not pass for reproduced
IDENTITY = ("model", "pretrained", "model_key", "random_weights", "method", "dataset", "seed", "ood_sets")


def measured_values(record: Mapping[str, Any]) -> dict[str, float | None]:
    """A record's measured values by field name: :data:`SCALARS`, then ``ood_before[name]``/``ood_after[name]``."""
    values: dict[str, float | None] = {name: record.get(name) for name in SCALARS}
    for kind in ("ood_before", "ood_after"):
        for name, value in sorted((record.get(kind) or {}).items()):
            values[f"{kind}[{name}]"] = value
    return values


def _check_tolerance(value: object, name: str) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def compare(recorded: Mapping[str, Any], reproduced: Mapping[str, Any], *, tolerance: float = 0.0,
            measure_tolerance: float = 1e-6) -> pd.DataFrame:
    """The measured values of two records of one cell that differ by more than their tolerance (or are present
    in one only): ``measure_tolerance`` for :data:`MEASURES`, ``tolerance`` for the accuracies and outcomes;
    first any :data:`IDENTITY` field that differs (the record claims another cell than the one run).
    Columns :data:`COLUMNS`, difference = reproduced - recorded (NaN where one is missing or not a number).
    Values equal to within 1e-12 (relative, or absolute near 0) are float rounding, never listed."""
    tolerance = _check_tolerance(tolerance, "tolerance")
    measure_tolerance = _check_tolerance(measure_tolerance, "measure_tolerance")
    rows = []
    for field in IDENTITY:
        a, b = recorded.get(field), reproduced.get(field)
        if field == "ood_sets":  # the same sets in another order are the same panel
            a, b = (sorted(map(str, v)) if isinstance(v, list) else v for v in (a, b))
        if a != b:
            rows.append([recorded.get("run_id"), field, a, b, math.nan])
    old, new = measured_values(recorded), measured_values(reproduced)
    for field in [*old, *(f for f in new if f not in old)]:
        a, b = old.get(field), new.get(field)
        if a is None and b is None:
            continue
        difference = b - a if a is not None and b is not None else math.nan
        allowed = measure_tolerance if field in MEASURES else tolerance
        # float rounding (a mean summed in another order) is no difference, even at tolerance 0
        if math.isnan(difference) or (abs(difference) > allowed and not math.isclose(a, b, rel_tol=1e-12,
                                                                                     abs_tol=1e-12)):
            rows.append([recorded.get("run_id"), field, a, b, difference])
    return pd.DataFrame(rows, columns=COLUMNS)


def read_record(path: Path) -> dict[str, Any]:
    """A record file checked by the store's rules (a regular file of at most 1 MiB, UTF-8 with or without a
    byte-order mark, nested at most as deep as the store allows; a valid record), with a cell to run
    (ValueError saying what is wrong)."""
    from core.store.records import read_capped
    from core.store.validate import MAX_RECORD_BYTES, check_record, parse_json_bytes

    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    try:
        record = parse_json_bytes(read_capped(path, MAX_RECORD_BYTES))
    except ValueError as exc:
        raise ValueError(f"{path} is not a JSON record: {exc}") from None
    try:
        check_record(record)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(record.get("config"), dict) or not {"model", "dataset", "method"} <= set(record["config"]):
        raise ValueError(f"{path}: its config is not a grid cell (model, dataset, method, ...): nothing to run")
    return record


def check_models(records: list[tuple[Path, Mapping[str, Any]]]) -> None:
    """Each model the records' configs name can be built here (as jobs.grid checks before any cell runs): a known
    name, and weights that need a download already in the local cache when the hub does not answer; else
    ValueError naming the first file that needs it. A cell that cannot run here says nothing of its record."""
    from core import models

    seen: set[str] = set()
    for path, record in records:
        name = str(record["config"]["model"])
        if name in seen:
            continue
        seen.add(name)
        try:
            spec = models.check_model(name)
            if spec.needs_download and not models.hub_reachable():
                models.load_model(spec)  # succeeds only when the weights are already in the local cache
        except (models.ModelUnavailableError, ValueError) as exc:
            raise ValueError(f"{path}: model {name!r} cannot be run here: {exc}") from None


def check_methods(records: list[tuple[Path, Mapping[str, Any]]]) -> None:
    """Each method the records' configs name is in this installation's registry (``core.methods.METHODS``): the
    cell of a method it lacks (a user's own, in a colleague's records or a submission) cannot run here, which
    says nothing of its record; ValueError naming the first file that needs one."""
    from core.methods import METHODS

    for path, record in records:
        name = record["config"]["method"]
        if not isinstance(name, str) or name not in METHODS:  # a list (hand-edited config) is unhashable
            raise ValueError(f"{path}: method {name!r} cannot be run here: this installation's method registry "
                             f"(core.methods.METHODS) does not list it; known: {', '.join(METHODS)}")


def check_datasets(records: list[tuple[Path, Mapping[str, Any]]]) -> None:
    """Each dataset the records' configs name (task and OOD sets) is one this installation knows, and each image
    folder (``folder:/path``, a user's own images) is on this machine: a cell on data that is not here cannot run,
    which says nothing of its record; ValueError naming the first file that needs one."""
    from core.data.registry import get_dataset

    for path, record in records:
        ood = record["config"].get("ood") or []
        for name in [record["config"]["dataset"], *(ood if isinstance(ood, list) else [ood])]:
            try:
                get_dataset(name)
            except ValueError as exc:
                raise ValueError(f"{path}: dataset {name!r} cannot be run here: {exc}") from None
            if isinstance(name, str) and name.startswith("folder:") and not Path(name[7:]).is_dir():
                raise ValueError(f"{path}: dataset {name!r} cannot be run here: the image folder {name[7:]} is "
                                 "not on this machine")


def reproduce(record: Mapping[str, Any], *, device: str = "cpu", cache_dir: Path | None = None) -> dict[str, Any]:
    """The record of ``record``'s cell run again here (nothing written); see core.experiment.run_cell."""
    from core.experiment import run_cell

    return run_cell(dict(record["config"]), cache_dir=cache_dir, device=device, command="python -m jobs.reproduce")


def notes(record: Mapping[str, Any], again: Mapping[str, Any]) -> list[str]:
    """What the reader should know beside the numbers: an id its config does not give; another torch or
    another version of any other library in ``provenance.versions`` (Python, open_clip_torch, peft, NumPy,
    torchvision), device, GPU (named by records made on CUDA since 2026-12-06), CPU, CPU signature
    (family/model/stepping, caches, flags), CPU kernel instruction set, kernel settings in the environment
    (``core.experiment.NUMERICS_VARIABLES``) or thread count (records before 2026-12-05 name no CPU or thread
    count; an instruction set, a signature and kernel settings are named only by records made since 2026-12-06);
    other data: a split whose ``provenance.data_fingerprint`` differs (``core.data_versions.other_data``; named
    by records made since 2026-12-06)."""
    from core.data_versions import other_data
    from core.experiment import cell_id

    out = []
    if cell_id(record["config"]) != record["run_id"]:
        out.append("its config does not hash to its run_id (not a grid record as written, or edited)")
    was, now = record.get("provenance") or {}, again.get("provenance") or {}
    old_versions, new_versions = (p.get("versions") if isinstance(p.get("versions"), dict) else {} for p in (was, now))
    for name in ["torch", *sorted(set(old_versions) - {"torch"})]:  # another peft or NumPy is other code too
        old, new = old_versions.get(name), new_versions.get(name)
        if old and new and old != new:
            out.append(f"recorded with {name} {old}, reproduced with {new}: "
                       + ("rounding may differ" if name == "torch" else "the values may differ for that alone"))
    for what, old, new in (("device", was.get("device"), now.get("device")), ("GPU", was.get("gpu"), now.get("gpu")),
                           ("CPU", was.get("cpu"), now.get("cpu")),
                           ("CPU signature", was.get("cpu_signature"), now.get("cpu_signature")),
                           ("CPU kernels", was.get("cpu_capability"), now.get("cpu_capability")),
                           ("torch threads", was.get("torch_threads"), now.get("torch_threads")),
                           ("BLAS threads", _named(was.get("blas_threads")), _named(now.get("blas_threads")))):
        if old and new and old != new:
            out.append(f"recorded with {what} {old}, reproduced with {new}: rounding may differ")
    other = other_data(record, again)  # records made before 2026-12-06 name no data
    if other:
        out.append(f"ran on other data: {'; '.join(other)}: the values may differ for that alone")
    old_env, new_env = was.get("numerics_env"), now.get("numerics_env")
    if isinstance(old_env, dict) and isinstance(new_env, dict) and old_env != new_env:  # {}: none was set
        out.append(f"recorded with kernel settings {_settings(old_env)}, reproduced with {_settings(new_env)}: "
                   "rounding may differ")
    return out


def _named(counts: Any) -> str | None:
    """A record's ``blas_threads`` as words ('libscipy_openblas 2'); None for a record made before it was kept
    (2026-12-07) or one naming no library."""
    if not isinstance(counts, dict) or not counts:
        return None
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))


def _settings(env: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(env.items())) or "(none set)"


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.reproduce", description=__doc__.split("\n")[0])
    p.add_argument("records", type=Path, nargs="+", help="record JSON files (e.g. from a results folder)")
    p.add_argument("--tolerance", type=float, default=0.0, help="largest difference of an accuracy or outcome "
                   "that still counts as the same, in its own units (default 0: equal to within float rounding, 1e-12)")
    p.add_argument("--measure-tolerance", type=float, default=1e-6, help="the same for IIMM and its terms "
                   "(default 1e-6)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    p.add_argument("--cache", type=Path, default=None,
                   help="embedding cache folder (default: $IIMM_CACHE, else .cache/embeddings, as jobs.grid's)")
    p.add_argument("--out", type=Path, default=None, help="also write the differing values to this CSV")
    args = p.parse_args(argv)
    _check_tolerance(args.tolerance, "--tolerance")  # before any cell runs
    _check_tolerance(args.measure_tolerance, "--measure-tolerance")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    check_csv_out(args.out)
    if args.out is not None and any(args.out.resolve() == path.resolve() for path in args.records):
        # the CSV of differences replaced that record once its cell had run
        raise ValueError(f"--out {args.out} is one of the records to reproduce: name another file")
    check_cache_folder(args.cache)
    device = check_device(args.device)
    read = [(path, read_record(path)) for path in args.records]  # every file checked before any cell runs
    check_models(read)
    check_methods(read)
    check_datasets(read)
    records = [record for _, record in read]
    work_begins()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    tables, failed, done = [], 0, 0
    try:
        for i, record in enumerate(records, 1):
            table = _one(record, f"[{i}/{len(records)}]", device, args)
            tables.append(table)
            failed += bool(len(table))
            done = i
    except KeyboardInterrupt:  # what was compared so far is still reported (and written), then exit 130
        print(f"interrupted after {done} of {len(records)} records", flush=True)
        if not done:  # an empty CSV reads as "everything reproduced": an earlier --out stays as it was
            args.out = None
            print("nothing compared: --out left as it was", flush=True)
        _report(tables, done - failed, done, args)
        raise
    _report(tables, len(records) - failed, len(records), args)
    return EXIT_FAILED if failed else 0


def _one(record: dict[str, Any], position: str, device: str, args: argparse.Namespace) -> pd.DataFrame:
    """Run one record's cell again, print a line about it, and return what differs (a status that differs is
    a row too: field 'status'; a record that failed and fails here too reproduces)."""
    label = f"{position} {record['run_id']} ({record['method']} on {record['dataset']}, seed {record['seed']})"
    print(f"{label}: running its cell again", file=sys.stderr, flush=True)  # a cell takes up to half a minute
    again = reproduce(record, device=device, cache_dir=args.cache)
    if record["status"] != "ok" or again["status"] != "ok":
        print(f"{label}: recorded {record['status']}, here {again['status']}"
              + (f" ({again.get('error')})" if again["status"] != "ok" else ""), flush=True)
        same = record["status"] == again["status"]
        return pd.DataFrame([] if same else [[record["run_id"], "status", record["status"], again["status"], math.nan]],
                            columns=COLUMNS)
    table = compare(record, again, tolerance=args.tolerance, measure_tolerance=args.measure_tolerance)
    numeric = pd.to_numeric(table["difference"], errors="coerce").abs()
    largest = numeric.max() if len(table) else math.nan  # NaN: no numeric difference
    print(f"{label}: " + ("reproduces" if table.empty else f"{len(table)} values differ"
                          + (f", largest by {largest:.6g}" if not math.isnan(largest) else ""))
          + "".join(f"; note: {n}" for n in notes(record, again)), flush=True)
    return table


def _report(tables: list[pd.DataFrame], reproduced: int, total: int, args: argparse.Namespace) -> None:
    """The differences found, in a table (and ``--out``), and the count."""
    found = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    if len(found):
        print(found.to_string(index=False))
    if args.out is not None:
        from core.schema import csv_text
        from core.store import write_file_atomic
        from core.text import formula_safe

        # a list (ood_sets) as JSON text, as the store and jobs.export write it: Python's repr ['a', 'b'] is no list
        # to jq, R or JavaScript
        as_json = {c: found[c].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
                   for c in ("recorded", "reproduced")}
        # a host reproduces strangers' submissions: a claimed name that starts as a formula gets an apostrophe
        write_file_atomic(args.out, csv_text(formula_safe(found.assign(**as_json))))  # its missing folders made
    print(f"{reproduced} of {total} records reproduce (tolerance {args.tolerance:g}; "
          f"zero-shot measures {args.measure_tolerance:g})")
    if args.out is not None:
        print(f"wrote the differing values to {args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
