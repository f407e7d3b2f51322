"""Which zero-shot predictor predicts fine-tuning outcomes best: IIMM, its two terms, zero-shot
accuracy, the silhouette scores and other zero-shot measures, and every transferability baseline.

    python -m jobs.predictors [--results DIR]... [--out CSV]
                              [--summary-md FILE] [--min-datasets 5] [--bootstrap 1000]
                              [--rescore] [--no-selection]
                              [--selection-rule one-se|bonferroni|gated] [--compare-rules [RULES]]

Reads the ok runs of the store (default: the app's store without submitted, unverified runs), leaves
out method 'zero_shot', and
for every (model, pretrained, method, predictor, outcome) - outcomes: ID gain, normalised gain,
OOD change - reports n datasets (seeds averaged first), Pearson r, Kendall tau, R² of a
straight-line fit, leave-one-dataset-out MAE, and where several seeds exist a two-level
bootstrap interval for tau (datasets, then seeds). Writes the CSV, a short Markdown summary
(default: beside the CSV, ``predictors.md``) and prints, per outcome, the predictor with the
highest mean |tau| and the lowest mean LODO MAE across cells, and IIMM's rank.

Where the tables go without ``--out``: ``jobs/results/predictors.csv`` (what the app's compare page
reads) only for the shipped runs, ``--results jobs/results/default``; for any other ``--results``,
``predictors.csv`` in the first --results folder; without ``--results`` (the app's whole store),
``predictors.csv`` in the local store (``$IIMM_RESULTS`` or ``results/``). Other runs whose default
would still be the shipped CSV (``--results jobs/results``) are refused: name it with ``--out``. So is any
run whose tables would land elsewhere in the shipped folder ``jobs/results`` (``--results jobs/results/world-v2``:
its tables record the pre-registered commands that made them), and, for the shipped runs, another analysis
(``--bootstrap``, ``--min-datasets``, ``--selection-rule``, ``--no-selection`` not at their defaults).
Every other table (``predictors.md``, ``forecast-selection.csv``, ``forecast-rules.*``) goes beside the CSV.

``--rescore`` first recomputes the transferability baselines of every ok record in the given
``--results`` folders with the current definitions (study conventions, LEEP with the model's own
classifier, EMMS from every offline text encoder): it embeds each (model, dataset) training split
once (a random-weight model's on the network each record's seed draws, as the grid drew it) and rewrites the
records' ``transferability`` field, noting how in ``provenance.transferability``. A record without
``model_key`` (optional in the schema), or one whose ``provenance.data_fingerprint`` names another train split
than the dataset gives now (a folder's files changed since it ran), is left as it is and named.

Then, unless ``--no-selection``, the forecast procedure of core.forecast_select is scored on every
(model, method, outcome): the predictor set chosen by leave-one-dataset-out error, its nested LODO
error against the IIMM-only line, and the measured LODO coverage of both 95 % intervals and of the
procedure's jackknife+ interval (``forecast-selection.csv`` beside the CSV, summary in the Markdown; the
jackknife+ coverage is NaN in a cell of fewer than 20 datasets; ``forecast-selection-zero-shot.csv``: the
same procedure with the zero-shot measures alone competing, as the forecast page runs it for a sample too
small for the baselines), under ``--selection-rule``
(default bonferroni: IIMM alone is kept unless a set beats it in a one-sided paired t test at
0.05 divided by the number of competing sets; see core.forecast_select). ``--compare-rules``
scores every rule (or the comma-separated ``RULES``) on the same runs and writes their summaries
side by side to ``forecast-rules.md`` and every rule's per-cell rows to ``forecast-rules.csv``,
beside the CSV. The gated rule redoes the nested selection inside every selection: minutes on 15
datasets, about an hour on 9 cells of 40.
Exit codes (jobs.cli's, as every job): 0 done; 2 bad arguments, a missing --results folder, no ok runs in it or
too few datasets for any (model, method): nothing is written.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from core import cards
from core import forecast_select as fsel
from core import predictor_eval as pe
from core import store
from core.schema import csv_text
from jobs.cli import check_file_out, comma_list, job_parser, no_runs, user_facing, work_begins
from jobs.predictor_tables import (HEADLINE, RULE_TEXT, rules_markdown, selection_markdown,  # noqa: F401 (tests
                                    summary_lines, summary_markdown,  # and users read them from here)
                                    zero_shot_markdown)

DEFAULT_OUT = store.SHIPPED_DIR / "predictors.csv"
SHIPPED_RESULTS = store.SHIPPED_DIR / "default"  # the runs DEFAULT_OUT is made from
OUT_RULE = ("default: jobs/results/predictors.csv for --results jobs/results/default alone, else predictors.csv "
            "in the first --results folder, or in the local store (results/ or $IIMM_RESULTS) without --results")
#: The tables written beside --out, named here once for the job that writes them and the check that they are
#: distinct files.
SUMMARY_MD, SELECTION_CSV, ZERO_SHOT_CSV = "predictors.md", "forecast-selection.csv", "forecast-selection-zero-shot.csv"
RULES_MD, RULES_CSV = "forecast-rules.md", "forecast-rules.csv"
log = logging.getLogger("jobs.predictors")
PROGRESS_EVERY_S = 10.0  #: at most one progress line on stderr per this many seconds a stage (its last one too)
MAX_BOOTSTRAP = 100_000  #: most --bootstrap replicates: the tau interval's arrays take datasets² × B × 16 bytes
#: The analysis the shipped tables were made with: option -> (argument name, default).
ANALYSIS_DEFAULTS = {"--min-datasets": ("min_datasets", 5), "--bootstrap": ("bootstrap", 1000),
                     "--no-selection": ("no_selection", False),
                     "--selection-rule": ("selection_rule", fsel.DEFAULT_RULE)}


def _first_paths(paths: list[Path], shown: int = 10) -> str:
    """The first ``shown`` of ``paths`` and how many more, for a warning's list."""
    return ", ".join(map(str, paths[:shown])) + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


def rescore(roots: list[Path]) -> int:
    """Recompute the baselines of every ok record under ``roots`` (see the module doc); returns
    how many records were rewritten."""
    from core.data.registry import load_split
    from core.data_versions import split_fingerprints
    from core.embed import embed_dataset
    from core.experiment import git_revision
    from core.models import load_model
    from core.store.records import read_json_record
    from core.transferability import classifier_params
    from core.transferability.label_sources import baseline_block

    files = sorted(p for root in roots for p in Path(root).glob("*.json"))
    # as the store reads them: a file that is no valid record is skipped with a warning naming it (json.loads
    # failed with a bare 'Expecting value', and a JSON list with an AttributeError traceback)
    records = [(p, r) for p in files if (r := read_json_record(p)) is not None]
    records = [(p, r) for p, r in records if r.get("status") == "ok" and r.get("method") and r.get("dataset")]
    if unnamed := [p for p, r in records if not isinstance(r.get("model_key"), str) or not r["model_key"]]:
        # optional in the schema (a record made elsewhere): which model to load is not known
        logging.getLogger("jobs.predictors").warning(
            "not rescored, left as they are (no model_key: which model to load is not known): %s",
            _first_paths(unnamed))
        left = set(unnamed)  # by path: two folders may hold one run id
        records = [(p, r) for p, r in records if p not in left]

    def network(rec: dict) -> tuple[str, int | None]:
        # a random-weight model's network is drawn from the run's seed, as run_cell draws it
        return rec["model_key"], rec["seed"] if rec.get("random_weights") is True else None

    records.sort(key=lambda item: (str(network(item[1])), str(item[0])))  # one network held at a time
    cache: dict[tuple, tuple[dict, dict, str | None]] = {}
    other_data = []  # records that ran on another version of their train split: its baselines are not theirs
    models: dict[tuple, object] = {}
    for path, rec in records:
        key = (*network(rec), rec["dataset"])
        if key not in cache:
            if network(rec) not in models:
                models.clear()
                models[network(rec)] = load_model(rec["model_key"], init_seed=network(rec)[1])
            loaded = models[network(rec)]
            emb = embed_dataset(loaded, load_split(rec["dataset"], "train"))
            scale, bias = classifier_params(loaded.model)
            scores, info = baseline_block(emb.image, emb.text, emb.labels, emb.class_names,
                                          logit_scale=scale, logit_bias=bias)
            info.update(rescored_by="python -m jobs.predictors --rescore", rescored_at_revision=git_revision())
            cache[key] = ({k: float(v) for k, v in scores.items()}, info, emb.data_fingerprint)
            logging.getLogger("jobs.predictors").warning(
                "rescored %s / %s", rec["model_key"], rec["dataset"] + (f" (seed {key[1]}'s network)"
                                                                        if key[1] is not None else ""))
        scores, info, now = cache[key]
        if now and split_fingerprints(rec["dataset"], rec.get("provenance")).get((rec["dataset"], "train"), now) != now:
            other_data.append(path)
            continue
        rec["transferability"] = scores
        rec.setdefault("provenance", {})["transferability"] = info
        store.write_record(rec, path.parent)
    if other_data:
        logging.getLogger("jobs.predictors").warning(
            "not rescored, left as they are (they ran on other data than their dataset's train split holds now, "
            "by provenance.data_fingerprint: its baselines would not be theirs): %s",
            _first_paths(other_data))
    return len(records) - len(other_data)


def stage_progress(what: str) -> Callable[[int, int], None]:
    """A progress callback for one stage of the job (``progress(done, total)``): a line on stderr with the
    count and elapsed time on the first call, then at most every :data:`PROGRESS_EVERY_S` seconds and on the
    last with an ETA too (from the pace since the first call, which a stage's setup would skew; the job was
    silent for minutes on the shipped runs)."""
    started = time.monotonic()
    first: tuple[float, int] | None = None  # (when, done) of the first call
    last = float("-inf")

    def report(done: int, total: int) -> None:
        nonlocal first, last
        now = time.monotonic()
        if done < total and now - last < PROGRESS_EVERY_S:
            return
        last = now
        if first is None:
            first = (now, done)
            if done < total:
                log.info("%s: %d of %d (elapsed %.0fs)", what, done, total, now - started)
                return
        (then, done_then), left = first, total - done
        eta = (now - then) / (done - done_then) * left if done > done_then else 0.0
        log.info("%s: %d of %d (elapsed %.0fs, ETA %.0fs)", what, done, total, now - started, eta)

    return report


def parse_rules(text: str) -> list[str]:
    """The comma-separated selection rules of ``--compare-rules``, in the given order, each once."""
    rules = list(dict.fromkeys(comma_list(text)))
    if not rules:
        raise ValueError("name at least one rule")
    for rule in rules:
        fsel.check_rule(rule)
    return rules


def shipped_runs(results: list[Path] | None) -> bool:
    """Whether ``--results`` names only the shipped runs, the ones DEFAULT_OUT is made from."""
    return bool(results) and {r.resolve() for r in results} == {SHIPPED_RESULTS.resolve()}


def default_out(results: list[Path] | None) -> Path:
    """The CSV path without ``--out`` (see the module doc): other runs' numbers must not replace
    the shipped tables the app reads."""
    if shipped_runs(results):
        return DEFAULT_OUT
    return (results[0] if results else store.local_results_dir()) / "predictors.csv"


def checked_options(args: argparse.Namespace) -> tuple[list[str], Path]:
    """Check every option before anything is read, rescored or written (a late refusal used to
    leave a fresh CSV behind); returns the selection rules to score and the CSV path."""
    if args.min_datasets < 3:
        raise ValueError(f"--min-datasets must be at least 3, got {args.min_datasets}")
    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    if args.bootstrap > MAX_BOOTSTRAP:  # memory grows as datasets² × B: 40 datasets at 10⁶ need ~26 GB
        raise ValueError(f"--bootstrap must be at most {MAX_BOOTSTRAP}, got {args.bootstrap}")
    bad = [f"{r} ({'not a folder' if r.exists() else 'not found'})" for r in args.results or [] if not r.is_dir()]
    if bad:  # a mistyped path is the user's mistake: exit 2 like every other bad argument
        raise ValueError(f"--results: {', '.join(bad)}")
    if args.rescore and not args.results:
        raise ValueError("--rescore rewrites records: name the folder(s) with --results")
    out = args.out or default_out(args.results)
    if args.out is None and not shipped_runs(args.results) and out.resolve() == DEFAULT_OUT.resolve():
        raise ValueError(f"these runs' tables would replace the shipped {DEFAULT_OUT}: name the output with --out")
    changed = [flag for flag, (name, default) in ANALYSIS_DEFAULTS.items() if getattr(args, name) != default]
    if args.out is None and out.resolve().is_relative_to(store.SHIPPED_DIR.resolve()):
        # the app's tables are the default analysis of the default runs; any other table in the shipped folder
        # (world v2's pre-registered ones) is a record of its own command: never replaced by default
        if not shipped_runs(args.results):
            raise ValueError(f"these tables would land in the shipped folder {out.parent} (its tables record the "
                             "commands that made them): name the output with --out")
        if changed:
            raise ValueError(f"with {', '.join(changed)} these tables would replace the shipped ones in {out.parent}: "
                             "name the output with --out")
    for flag, path in (("--out", out), ("--summary-md", args.summary_md)):
        if path is not None:  # a folder, or a file in the way of its folder: refused before the work, not after
            check_file_out(path, flag)
    _check_distinct(out, args)
    if args.compare_rules is None:
        return [args.selection_rule], out
    if args.no_selection:
        raise ValueError("--compare-rules scores the forecast procedure: drop --no-selection")
    try:
        return parse_rules(args.compare_rules), out
    except ValueError as err:
        raise ValueError(f"--compare-rules: {err}") from None


def _check_distinct(out: Path, args: argparse.Namespace) -> None:
    """ValueError when two of the files the job writes under these options are one file (``--summary-md``
    naming the CSV, or ``--out`` named like a table written beside it): the later one silently replaced the
    other."""
    outputs = [(out, "--out"), (_summary_path(out, args), "the summary (--summary-md)")]
    beside = [] if args.no_selection else [SELECTION_CSV, ZERO_SHOT_CSV]
    beside += [RULES_MD, RULES_CSV] if args.compare_rules is not None else []
    outputs += [(out.with_name(name), f"the {name} written beside it") for name in beside]
    seen: dict[Path, str] = {}
    for path, what in outputs:
        if path.resolve() in seen:
            raise ValueError(f"{seen[path.resolve()]} and {what} are one file, {path}: one would replace the "
                             "other; name another file")
        seen[path.resolve()] = what


def _summary_path(out: Path, args: argparse.Namespace) -> Path:
    """Where the Markdown summary goes: ``--summary-md``, else beside ``out``."""
    return args.summary_md or out.with_name(SUMMARY_MD)


@user_facing
def main(argv: list[str] | None = None) -> int:
    # the first paragraph is the whole first sentence (its first line alone stopped mid-sentence)
    parser = job_parser("python -m jobs.predictors",
                        description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--results", action="append", type=Path, metavar="DIR",
                        help="a results folder (repeatable); default: the app's store")
    parser.add_argument("--out", type=Path, metavar="CSV", help=f"CSV path ({OUT_RULE})")
    parser.add_argument("--summary-md", type=Path, help="Markdown summary (default: predictors.md beside the CSV)")
    parser.add_argument("--min-datasets", type=int, default=ANALYSIS_DEFAULTS["--min-datasets"][1],
                        help="score a (model, method) only with at least this many datasets (>= 3)")
    parser.add_argument("--bootstrap", "--boot", dest="bootstrap", type=int,
                        default=ANALYSIS_DEFAULTS["--bootstrap"][1], metavar="B",
                        help=f"bootstrap replicates for the tau interval (0 = none, at most {MAX_BOOTSTRAP}; "
                             "--boot as in the world jobs)")
    parser.add_argument("--rescore", action="store_true",
                        help="first recompute the baselines of every ok record in --results (rewrites them)")
    parser.add_argument("--no-selection", action="store_true", help="skip the forecast-procedure scoring")
    parser.add_argument("--selection-rule", choices=fsel.SELECTION_RULES, default=fsel.DEFAULT_RULE,
                        help=f"when a predictor set may replace IIMM alone (default {fsel.DEFAULT_RULE})")
    parser.add_argument("--compare-rules", nargs="?", const=",".join(fsel.SELECTION_RULES), default=None,
                        metavar="RULES", help="also score these selection rules (comma-separated; default all) and "
                        "write forecast-rules.md and forecast-rules.csv beside the CSV")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # the progress of each stage, on stderr (stdout holds the summary)
    rules, out = checked_options(args)
    roots = args.results or store.default_roots()
    work_begins()
    if args.rescore:
        print(f"rescored {rescore(list(roots))} records")
    runs = store.load_runs(roots)
    if not args.results:  # the app's store: as the forecast page, verified runs only
        runs = store.verified_runs(runs)
    usable = pe.fine_tuning_runs(runs) if len(runs) else runs
    if usable.empty:  # the input cannot be used: exit 2, as an empty --results folder in every job
        raise no_runs("ok fine-tuning runs", roots)
    table = pe.evaluate_predictors(runs, min_datasets=args.min_datasets, n_boot=args.bootstrap,
                                   progress=stage_progress("scoring each predictor (rows of the CSV)"))
    if not (table["status"] == "ok").any():
        most = int(table["n_datasets"].max()) if len(table) else 0
        raise ValueError(f"no (model, method) in {', '.join(str(r) for r in roots)} has {args.min_datasets} datasets "
                         f"with outcomes and predictors (most: {most}); run more of the grid or lower --min-datasets")
    outcomes = pe.OUTCOMES
    md_path = _summary_path(out, args)
    untrained = cards.untrained_models(usable)
    md = summary_markdown(table, outcomes, n_runs=len(usable), min_datasets=args.min_datasets, untrained=untrained)
    files = {out: csv_text(table, float_format="%.6g")}  # written together once all is computed
    skipped: list[str] = []
    if not args.no_selection:
        min_selection = max(args.min_datasets, 6)  # every selection table, and the note when none is scored
        selections = {rule: fsel.selection_table(runs, outcomes=outcomes, min_datasets=min_selection, rule=rule,
                                                 progress=stage_progress(f"scoring the forecast procedure, rule {rule} "
                                                                         "(model, method and outcome)"))
                      for rule in dict.fromkeys(rules + [args.selection_rule])}
        selection = selections[args.selection_rule]
        scored = bool((selection["status"] == "ok").any())
        if args.compare_rules is not None and scored:
            compared = {rule: selections[rule] for rule in rules}
            files[out.with_name(RULES_MD)] = rules_markdown(compared, untrained)
            files[out.with_name(RULES_CSV)] = (pd.concat(compared.values(), ignore_index=True)
                                               .pipe(csv_text, float_format="%.6g"))
        if scored:
            files[out.with_name(SELECTION_CSV)] = csv_text(selection, float_format="%.6g")
            md += selection_markdown(selection)
            print(fsel.coverage_summary(selection).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            # what the forecast page runs for a sample too small for the baselines (the zero-shot measures the
            # sample's core.metrics.zero_shot_scores gives, these names): its coverage, measured too
            reduced = fsel.selection_table(runs, outcomes=outcomes, min_datasets=min_selection,
                                           rule=args.selection_rule, predictors=pe.ZERO_SHOT_PREDICTORS,
                                           progress=stage_progress("scoring the forecast procedure on the zero-shot "
                                                                   "measures alone"))
            if (reduced["status"] == "ok").any():
                files[out.with_name(ZERO_SHOT_CSV)] = csv_text(reduced, float_format="%.6g")
                md += zero_shot_markdown(reduced)
        else:  # said: exit 0 with no word of it read as if the procedure had been scored (or --compare-rules done)
            most = int(selection["n_datasets"].max()) if len(selection) else 0
            skipped.append(f"note: the forecast procedure was not scored (no forecast-selection.csv"
                           f"{', forecast-rules.*' if args.compare_rules is not None else ''}): no (model, method) has "
                           f"{min_selection} datasets with the outcome (most: {most})")
    files[md_path] = md
    store.write_files_together(files)  # all new or all old: the app reads the CSV and the selection table together
    written = [str(out), str(md_path), *(str(p) for p in files if p not in (out, md_path))]
    print("\n".join(summary_lines(table, outcomes)))
    for note in cards.model_notes(table[table["status"] == "ok"], untrained, markdown=False):
        print(note)
    print("\n".join([*skipped, f"wrote {', '.join(written)}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
