"""Summary of a pre-registered forecast test on fresh cells, read from a forecast-rules.csv written by
``python -m jobs.predictors --compare-rules bonferroni,...``.

A pair (pretrained tag x method) is a test pair only if its ID-gain cell rests on ``--tasks`` ok tasks; each of
its scored outcomes is then a test cell (normalised gain may rest on fewer tasks: it is undefined where
zero-shot accuracy is already 100 %). Criterion 1: ``bonferroni``'s nested LODO MAE is no worse than the
IIMM-only line's in every test cell. Criterion 2: the per-outcome coverage of its 95 % intervals lies in 90-99 %.
From the repository root:

    python -m jobs.forecast_test_summary RULES_CSV --pairs world-v2-b:clip_cite,world-v2-b:wise_ft \
        [--tasks 40] [--criteria E]
"""
from __future__ import annotations

import difflib
import sys
from pathlib import Path

import pandas as pd

from core import forecast_select as fsel
from jobs.cli import job_parser, read_table, user_facing

# the rule the pre-registered tests name, fixed here: not core.forecast_select.DEFAULT_RULE, which may change
TESTED_RULE = "bonferroni"
# every column the summary reads, its own and core.forecast_select.coverage_summary's
READ_COLUMNS = ("rule", "pretrained", "method", "outcome", "status", "n_datasets", "gain_vs_iimm", "chosen",
                "nested_lodo_mae", "iimm_lodo_mae", "coverage", "iimm_coverage", "mean_width", "iimm_mean_width",
                "level")


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``"a:m1,b:m2"`` -> ``[("a", "m1"), ("b", "m2")]``, in the order given (the pre-registered order); spaces
    around a name are not part of it."""
    pairs = []
    for item in text.split(","):
        tag, sep, method = (part.strip() for part in item.partition(":"))
        if not sep or not tag or not method:
            raise ValueError(f"--pairs: {item.strip()!r} is not TAG:METHOD (e.g. world-v2-b:clip_cite)")
        pairs.append((tag, method))
    if len(set(pairs)) != len(pairs):
        raise ValueError("--pairs: a pair is named twice")
    return pairs


def unknown_names(rows: pd.DataFrame, pairs: list[tuple[str, str]]) -> list[str]:
    """A warning for each tag or method of ``pairs`` that no row of ``rows`` has, with the table's closest names.
    Such a pair is reported "not run" like a pre-registered pair that has not run yet, so a typo would
    otherwise read as a verdict."""
    out = []
    for column, what, names in (("pretrained", "tag", [t for t, _ in pairs]),
                                ("method", "method", [m for _, m in pairs])):
        known = sorted(set(rows[column].dropna().astype(str)))
        for name in dict.fromkeys(n for n in names if n not in known):
            close = difflib.get_close_matches(name, known, n=3)
            out.append(f"warning: no row of the table has the {what} {name!r}"
                       + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
                       + "; a pair with it is reported as not run")
    return out


def summary_lines(rows: pd.DataFrame, pairs: list[tuple[str, str]], *, tasks: int, criteria: str,
                  source: str = "the table") -> list[str]:
    """The summary's lines: each pair's status, per rule the coverage summary and every test cell, then the
    two criteria for ``bonferroni`` named ``{criteria}1`` and ``{criteria}2``.

    rows: forecast-rules.csv, one row per rule x pretrained x method x outcome; ``source`` names it in the
    ValueError raised when it lacks a column the summary reads."""
    missing = set(READ_COLUMNS) - set(rows.columns)
    if missing:
        raise ValueError(f"{source} is not a forecast-rules table (no {', '.join(sorted(missing))} column)")
    # names as text: a CSV's tag 2024 is read as the number 2024, which the pair ('2024', m) never matched (and
    # unknown_names, comparing text, did not warn): the pair read "not run"
    rows = rows.assign(**{c: rows[c].where(rows[c].isna(), rows[c].astype(str)) for c in ("pretrained", "method")})
    pair = pd.Series(list(zip(rows["pretrained"], rows["method"], strict=True)), index=rows.index)
    id_rows = rows[pair.isin(pairs) & (rows["outcome"] == "id_gain") & (rows["status"] == "ok")]
    counts = list(zip(zip(id_rows["pretrained"], id_rows["method"], strict=True), id_rows["n_datasets"], strict=True))
    test_pairs = {key for key, n in counts if n == tasks}
    more = {key: int(n) for key, n in counts if n > tasks}  # the rule is exactly --tasks: more is not "fewer"
    tested = rows[pair.isin(test_pairs) & (rows["status"] == "ok")]
    lines = [f"{tag} x {method}: " + ("test pair" if (tag, method) in test_pairs
                                       else f"not a test pair ({more[tag, method]} ok tasks, not {tasks})"
                                       if (tag, method) in more else f"not run (fewer than {tasks} ok tasks)")
             for tag, method in pairs]
    summaries = {}
    for rule, cells in tested.groupby("rule", sort=False):
        lines.append(f"== {rule}: {len(cells)} test cells")
        summaries[rule] = fsel.coverage_summary(cells)
        lines.append(summaries[rule].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        lines.append(cells[["pretrained", "method", "outcome", "chosen", "nested_lodo_mae", "iimm_lodo_mae",
                            "coverage"]].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    default = tested[tested["rule"] == TESTED_RULE]
    # a cell without IIMM's line counts as not "no worse" (coverage_summary leaves it out of both counts)
    no_worse = int(fsel.no_worse_than_iimm(default["gain_vs_iimm"]).sum())
    lines.append(f"{criteria}1 ({TESTED_RULE} no worse than IIMM-only in every test cell): {no_worse} of "
                 f"{len(default)} -> {bool(len(default)) and no_worse == len(default)}")
    coverage = (summaries[TESTED_RULE].set_index("outcome")["coverage"] if len(default)
                else pd.Series(dtype=float))
    per_outcome = coverage.drop("all outcomes", errors="ignore")  # the criterion is per outcome; pooled is shown
    held = bool(len(per_outcome)) and bool(((per_outcome >= 0.90) & (per_outcome <= 0.99)).all())
    lines.append(f"{criteria}2 ({TESTED_RULE} coverage in [0.90, 0.99] per outcome): "
                 f"{coverage.round(4).to_dict()} -> {held}")
    return lines


@user_facing
def main(argv: list[str] | None = None) -> int:
    parser = job_parser("python -m jobs.forecast_test_summary",
                        description=__doc__.split("\n\n")[0])
    parser.add_argument("rules_csv", help="forecast-rules.csv of the test")
    parser.add_argument("--pairs", required=True,
                        help="TAG:METHOD,... in the pre-registered order (a tag or method that no row of the table "
                             "has is warned about on stderr: a misspelt name reads as a pair not run)")
    parser.add_argument("--tasks", type=int, default=40,
                        help="ok tasks a test pair's ID-gain cell rests on, exactly (default 40)")
    parser.add_argument("--criteria", default="T", help="letter naming the two criteria (default T: T1, T2)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.tasks < 1:
        raise ValueError(f"--tasks must be at least 1, got {args.tasks}")
    pairs = parse_pairs(args.pairs)
    if not Path(args.rules_csv).is_file():
        raise ValueError(f"{args.rules_csv} is not a file (usage: see --help)")
    rows = read_table(args.rules_csv, "forecast-rules table")
    lines = summary_lines(rows, pairs, tasks=args.tasks, criteria=args.criteria, source=args.rules_csv)
    for warning in unknown_names(rows, pairs):
        print(warning, file=sys.stderr)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
