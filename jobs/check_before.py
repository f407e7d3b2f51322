"""Records whose accuracies before fine-tuning differ from the current scoring path.

    python -m jobs.check_before RESULTS_DIR [--models KEY,...] [--cache DIR] [--out CSV]

Cells run before 2026-12-05 scored the untrained model by NumPy's cosine argmax over cached embeddings and
the fine-tuned one by the model's scaled logits; a class tie to within float rounding could break the two
ways (one shipped zero-shot record gained +0.125 points by training nothing). Both now come from
``core.evaluate.evaluate_run``. This job scores every successful record's task and OOD sets the current way
and lists each stored ``zs_acc`` or ``ood_before`` value that differs: those records are the ones to run
again. A model or dataset that cannot be loaded here (weights or files not available offline) is named and
skipped, and so is a value whose record names other data than the dataset now holds
(``provenance.data_fingerprint``: a folder's files changed since), as its difference would not be the scoring
path's. Exit (jobs.cli's, as every job) 0 when none differs, 1 when some do, 3 when none differs but some values
could not be checked, 2 for a bad option or a folder with no successful record to check.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from core.cards import flag_values
from core.data.registry import DatasetUnavailableError
from core.models import ModelUnavailableError
from jobs.cli import (EXIT_FAILED, EXIT_INCOMPLETE, check_cache_folder, check_csv_out, check_device, comma_list,
                      check_results_folder, did_you_mean, job_parser, no_runs, user_facing, work_begins)

log = logging.getLogger(__name__)
COLUMNS = ["model_key", "dataset", "run_id", "method", "field", "stored", "now"]


def stored_before(run: pd.Series) -> list[tuple[str, str, float]]:
    """A record's accuracies before fine-tuning as (field, dataset name, %): its task's test set (``zs_acc``) and
    each OOD set (``ood_before[name]``), one entry each even where an OOD set is the task itself. A null the
    schema allows (an OOD value, or the whole map) stores nothing to check."""
    ood = json.loads(run["ood_before"]) if isinstance(run["ood_before"], str) else run["ood_before"]
    return [("zs_acc", run["dataset"], float(run["zs_acc"])),
            *((f"ood_before[{k}]", k, float(v)) for k, v in (ood or {}).items() if v is not None)]


def differing(runs: pd.DataFrame, score, unchecked: dict[tuple[str, str], str] | None = None,
              other_data: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Every stored accuracy before fine-tuning of ``runs``' ok records that ``score(model_key, dataset)``
    (the current path's %) does not give exactly; columns :data:`COLUMNS`. A (model, dataset) whose
    ``score`` raises ModelUnavailableError or DatasetUnavailableError is skipped and, with its reason, put in
    ``unchecked``. A random-weight model's network is the one its record's seed made (a cell seeds torch before
    loading the model): ``score`` is then also given ``seed=``. Where ``score`` has a ``fingerprint(dataset)``
    (the data it scored, :func:`core.embed.data_fingerprint`) and a record's ``provenance.data_fingerprint`` names
    another for that test split (a folder's files changed since), the value is not compared but put, as (run_id,
    dataset), in ``other_data``: a difference there says nothing of the scoring path."""
    from core.data_versions import split_fingerprints

    unchecked = {} if unchecked is None else unchecked
    other_data = [] if other_data is None else other_data
    current = getattr(score, "fingerprint", None)
    rows = []
    ok = runs[runs["status"] == "ok"].copy()
    untrained = flag_values(ok.get("random_weights", pd.Series(False, index=ok.index)))
    # network by network (a random-weight model's seed draws its network), so the scorer holds one at a time
    ok["_network_seed"] = [int(seed) if random else -1 for seed, random in
                           zip(ok.get("seed", pd.Series(-1, index=ok.index)), untrained, strict=True)]
    for _, run in ok.sort_values(["model_key", "_network_seed", "dataset", "run_id"]).iterrows():
        network = {"seed": int(run["seed"])} if run["_network_seed"] >= 0 else {}
        recorded = split_fingerprints(run["dataset"], run.get("provenance"))
        for field, name, stored in stored_before(run):
            if (run["model_key"], name) in unchecked:
                continue
            try:
                now = score(run["model_key"], name, **network)
            except (ModelUnavailableError, DatasetUnavailableError) as exc:
                unchecked[run["model_key"], name] = str(exc)
                continue
            here = current(name) if current is not None else None
            if here and recorded.get((name, "test"), here) != here:
                other_data.append((run["run_id"], name))
                continue
            if now != stored:
                rows.append([run["model_key"], run["dataset"], run["run_id"], run["method"], field, stored, now])
    return pd.DataFrame(rows, columns=COLUMNS)


def current_scorer(cache_dir: Path | None, device: str = "cpu"):
    """(model_key, dataset[, seed]) -> the untrained model's test accuracy (%) the way a cell now scores it on
    ``device``, each dataset scored once; ``seed``: that of a random-weight model's record, whose network is
    drawn under it as run_cell draws it (``load_model(..., init_seed=seed)``), the caller's torch generator left
    as it was. One network is held at a time (:func:`differing` asks network by network), so a store of many
    models or seeds does not pile them up in memory. A dataset the registry cannot load here (an unknown name, a
    missing folder) raises DatasetUnavailableError."""
    from core.data.registry import load_split
    from core.experiment import accuracies_before, frozen_embeddings_of
    from core.models import load_model

    held: dict = {}  # network -> loaded model or the ModelUnavailableError it gave; one at a time
    failed: dict = {}
    scores: dict = {}
    fingerprints: dict = {}  # dataset -> the data_fingerprint of the test split scored

    def network_for(network):
        if network in failed:
            raise failed[network]
        if network not in held:
            held.clear()
            model_key, seed = network
            try:
                held[network] = load_model(model_key, device=device, init_seed=seed)
            except ModelUnavailableError as exc:
                failed[network] = exc  # tried once: not again for each of its datasets
                raise
        return held[network]

    def score(model_key: str, name: str, seed: int | None = None) -> float:
        network = (model_key, seed)
        if (network, name) not in scores:
            loaded = network_for(network)
            try:
                data = load_split(name, "test")
            except ValueError as exc:  # an unknown name: a submission's own dataset, a folder not on this host
                raise DatasetUnavailableError(str(exc)) from exc
            frozen = frozen_embeddings_of(loaded, cache_dir)
            scores[network, name] = float(accuracies_before(loaded, data, {}, frozen)["test_acc"])
            fingerprints[name] = frozen.fingerprint(data)
            log.info("%s%s on %s: %.3f %%", model_key, "" if seed is None else f" (seed {seed})", name,
                     scores[network, name])
        return scores[network, name]

    score.fingerprint = fingerprints.get  # what differing compares a record's data_fingerprint with
    return score


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.check_before", description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, help="a results folder (its JSON records)")
    p.add_argument("--models", default="", help="comma-separated model keys to check (default: every model)")
    p.add_argument("--cache", type=Path, default=None,
                   help="embedding cache folder (default: $IIMM_CACHE, else .cache/embeddings, as jobs.grid's)")
    p.add_argument("--out", type=Path, default=None, help="also write the differing values to this CSV")
    p.add_argument("--device", default="cpu", help="where to score: the device the records were measured on "
                   "(cpu, cuda, cuda:N; default cpu), since another one can round a near-tie differently")
    args = p.parse_args(argv)
    check_cache_folder(args.cache)
    check_csv_out(args.out)
    device = check_device(args.device)
    from core import store
    from core.schema import csv_text

    runs = store.load_runs([check_results_folder(args.results, option="")])
    if not (runs["status"] == "ok").any():  # was "0 of 0 ok records differ", exit 0: read as a pass
        raise no_runs("successful records", [args.results])
    if wanted := comma_list(args.models):
        have = sorted(set(runs["model_key"]))
        if unknown := sorted(set(wanted) - set(have)):  # which, the closest key, and the folder's: as jobs.grid
            named = ", ".join(f"{key}{did_you_mean(key, have)}" for key in unknown)
            raise ValueError(f"--models: no records of {named} in {args.results}; its models: {', '.join(have)}")
        runs = runs[runs["model_key"].isin(wanted)]
    work_begins()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)  # one line per (model, dataset) scored: progress on a long check
    unchecked: dict[tuple[str, str], str] = {}
    other_data: list[tuple[str, str]] = []
    found = differing(runs, current_scorer(args.cache, device), unchecked, other_data)
    checked = int((runs["status"] == "ok").sum())
    if args.out is not None:
        store.write_file_atomic(args.out, csv_text(found))  # its missing folders made
    print(found.to_string(index=False) if len(found) else "no stored accuracy differs")
    print(f"{found['run_id'].nunique()} of {checked} ok records differ from the current scoring path")
    for (model_key, name), why in sorted(unchecked.items()):
        print(f"not checked: {model_key} on {name}: {why}")
    if other_data:
        names = sorted({name for _, name in other_data})
        print(f"not compared: {len(other_data)} value(s) of {len({r for r, _ in other_data})} record(s), measured on "
              f"other data than {', '.join(names)} now hold(s) (their provenance.data_fingerprint differs, e.g. "
              "files of a folder changed since): a difference there says nothing of the scoring path; to measure "
              "them on the data as it is now, move their records out and run their grid again")
    if args.out is not None:
        print(f"wrote the differing values to {args.out}")
    return EXIT_FAILED if len(found) else EXIT_INCOMPLETE if unchecked or other_data else 0


if __name__ == "__main__":
    raise SystemExit(main())
