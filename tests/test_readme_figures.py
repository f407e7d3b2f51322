"""README figures tied to the shipped files they come from, so that a table or count in README.md cannot go
stale unnoticed: the records under jobs/results/, the tables the jobs wrote beside them, the model cards and
pretraining records in core/assets. Each test re-derives the figures (at the precision README states them)
from the file README names; none runs a model or a grid."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from core import forecast_select as fsel

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "jobs" / "results"
README = (REPO / "README.md").read_text(encoding="utf-8")
PROSE = " ".join(README.split())  # line breaks inside a sentence are spaces
NUMBER = re.compile(r"[+−-]?\d[\d,]*(?:\.\d+)?")


def numbers(text: str) -> list[str]:
    """The numbers in ``text`` as README writes them (−, thousands commas); a τ(…) or 95 % label is text."""
    text = re.sub(r"τ\([^)]*\)|95 %|[A-Za-z_]+\d\w*", " ", text)
    return NUMBER.findall(text)


def agrees(stated: str, value: float) -> bool:
    """Whether ``value`` rounds to ``stated`` at the decimals README gives, either way at a tie (96.25 is 96.2 or
    96.3: a float's last bit and the writer's rounding decide; −0.0 is 0.0)."""
    number = float(stated.replace("−", "-").replace(",", ""))
    decimals = len(stated.split(".")[1]) if "." in stated else 0
    return abs(float(value) - number) <= 0.5 * 10 ** -decimals + 1e-9


def check(stated: list[str], values: list[float], what: str) -> None:
    assert len(stated) == len(values), f"{what}: README gives {stated}, the source {len(values)} values"
    wrong = [(s, round(float(v), 4)) for s, v in zip(stated, values) if not agrees(s, v)]
    assert not wrong, f"{what}: README (stated, source) {wrong}"


def table(header_start: str, nth: int = 0) -> list[list[str]]:
    """The body rows (cells stripped) of README's ``nth`` table whose header line starts with ``header_start``."""
    lines = README.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header_start)]
    assert len(starts) > nth, f"README has no table headed {header_start!r} (#{nth})"
    rows = []
    for line in lines[starts[nth] + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def load_records(folder: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(folder.glob("*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        prov = r["provenance"]
        rows.append({"model": r["model"], "pretrained": r["pretrained"], "method": r["method"],
                     "dataset": r["dataset"], "seed": r["seed"], "status": r["status"], "zs": r["zs_acc"],
                     "ft": r["ft_acc"], "gain": r["id_gain"], "ood": r["ood_change"], "iimm": r["iimm"],
                     "inter": r["inter_modal"], "intra": r["intra_image"], "created": r["created_at"],
                     "trainable": (prov.get("method") or {}).get("trainable_params", prov.get("trainable_params"))})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def world1() -> pd.DataFrame:
    return load_records(RESULTS / "default")


@pytest.fixture(scope="module")
def world2() -> pd.DataFrame:
    return load_records(RESULTS / "world-v2")


def test_the_helpers_read_numbers_as_readme_writes_them():
    assert numbers("| A | +0.46 [+0.07, +0.71] / −0.03 | 1,440 runs, 31 of 40 (78 %) τ(IIMM, gain)") == [
        "+0.46", "+0.07", "+0.71", "−0.03", "1,440", "31", "40", "78"]
    assert agrees("−0.03", -0.0301) and agrees("16.0", 16.0148) and not agrees("16.0", 16.06)
    assert agrees("+0.00", -0.001) and agrees("1,440", 1440) and not agrees("94.5", 94.42)
    with pytest.raises(AssertionError, match=r"README \(stated, source\) \[\('7.48', 7.5\)\]"):
        check(["7.48"], [7.5], "x")


def test_the_run_counts_readme_gives_are_the_shipped_records(world1, world2):
    assert (len(world1), len(world2)) == (600, 1600)
    assert set(world1["status"]) == set(world2["status"]) == {"ok"}
    fine1 = int((world1["method"] != "zero_shot").sum())
    fine2 = int((world2["method"] != "zero_shot").sum())
    six = int(world2["method"].isin(["full_ft", "bitfit", "attention", "lora", "clip_adapter", "linear_probe"]).sum())
    for phrase in (f"{len(world1)} cells (15 tasks × 20 methods × seeds 0 and 1), 0 failed",
                   f"the {len(world1) + len(world2):,} shipped now",
                   f"shipped store of {len(world1) + len(world2):,} runs",
                   f"re-run on all {fine1} ok fine-tuning runs", f"now covers {fine2:,} fine-tuning runs",
                   f"{len(world2):,} records by 2026-12-06", f"On all {six} fine-tuning records of the six methods"):
        assert phrase in PROSE, f"README does not say {phrase!r}"


def test_the_world_v1_zero_shot_table_is_the_records_and_the_model_card(world1):
    zero_shot = world1[(world1["method"] == "zero_shot") & (world1["seed"] == 0)].set_index("dataset")
    card = {row[0]: row for row in (
        [c.strip() for c in line.strip("|").split("|")]
        for line in (REPO / "core" / "assets" / "MODEL_CARD.md").read_text(encoding="utf-8").splitlines()
        if line.endswith("| OOD panel |"))}
    rows = table("| task | sub-world | classes |")
    assert len(rows) == 19
    for row in rows:
        task = row[0].removesuffix(" (OOD panel)")
        if task in zero_shot.index:
            r = zero_shot.loc[task]
            check(row[4:8], [r["zs"], r["iimm"], r["inter"], r["intra"]], task)
        else:
            check(row[4:8], [float(v) for v in card[task][4:8]], f"{task} (model card)")
    tasks = zero_shot.loc[[r[0] for r in rows if r[0] in zero_shot.index]]
    between = int(((tasks["zs"] >= 15) & (tasks["zs"] <= 85)).sum())
    assert f"{len(tasks)} fine-tuning tasks; {between} of them between 15 % and 85 %" in PROSE
    stated = re.search(r"the highest at ([\d.]+) %.*?IIMM spread over the fine-tuning tasks ([\d.]+) and "
                       r"intra-image spread ([\d.]+)", PROSE)
    check(list(stated.groups()), [tasks["zs"].max(), tasks["iimm"].max() - tasks["iimm"].min(),
                                  tasks["intra"].max() - tasks["intra"].min()], "world v1 goals")


def report_rows() -> dict[str, list[str]]:
    """default-report.md's gain table: method -> [ID gain "m ± sd", OOD change "m ± sd", Pareto]."""
    text = (RESULTS / "default-report.md").read_text(encoding="utf-8")
    return {m[1]: [m[2], m[3], m[4]] for m in re.finditer(
        r"^\| (\w+) \| 15 \| ([+-][\d.]+ ± [\d.]+) \| ([+-][\d.]+ ± [\d.]+) \| (yes|) \|", text, re.M)}


def test_the_gain_tables_are_the_grid_report_and_the_records(world1):
    shipped = report_rows()
    for method, gain, ood, pareto in table("| method | ID gain | OOD change | Pareto |"):
        assert [gain.replace("−", "-"), ood.replace("−", "-"), pareto] == shipped[method], method
    trainable = world1.groupby("method")["trainable"].agg(["min", "max"])
    rows = table("| method | family | trainable | ID gain | OOD change |")
    assert {r[0] for r in rows} == set(shipped)
    for method, _family, count, gain, ood in rows:
        low, high = trainable.loc[method]
        assert count.split(" (")[0] == (f"{low:,}" if low == high else f"{low:,}–{high:,}"), method
        means = [v.split(" ±")[0] for v in shipped[method][:2]]
        assert [gain.replace("−", "-"), ood.replace("−", "-")] == means, method


def test_peft_lora_against_ours_is_the_records(world1):
    gain = world1.pivot_table(index=["dataset", "seed"], columns="method", values="gain")
    ood = world1.pivot_table(index=["dataset", "seed"], columns="method", values="ood")
    lora = world1[world1["method"] == "lora"]
    noise = lora.pivot_table(index="dataset", columns="seed", values="gain")
    noise_ood = lora.pivot_table(index="dataset", columns="seed", values="ood")
    stated = re.search(r"mean \|Δ ID gain\| of (\d+\.\d+) points against a seed noise of our LoRA of (\d+\.\d+) "
                       r"points.*?OOD change (\d+\.\d+) vs (\d+\.\d+)", PROSE)
    check(list(stated.groups()), [(gain["peft_lora"] - gain["lora"]).abs().mean(), (noise[0] - noise[1]).abs().mean(),
                                  (ood["peft_lora"] - ood["lora"]).abs().mean(),
                                  (noise_ood[0] - noise_ood[1]).abs().mean()], "peft LoRA vs ours")


def test_which_predictor_wins_is_the_predictor_table():
    cells = pd.read_csv(RESULTS / "predictors.csv")
    for row, outcome in zip(table("| outcome | best by \\|τ\\|"), ("id_gain", "norm_gain", "ood_change")):
        g = cells[cells["outcome"] == outcome].assign(abs_tau=lambda d: d["kendall_tau"].abs(),
                                                      excludes=lambda d: (d["tau_lo"] > 0) | (d["tau_hi"] < 0))
        per = g.groupby("predictor").agg(tau=("abs_tau", "mean"), mae=("lodo_mae", "mean"), excl=("excludes", "sum"))
        tau_rank, mae_rank = per["tau"].rank(ascending=False), per["mae"].rank()
        best, lowest = per["tau"].idxmax(), per["mae"].idxmin()
        methods = g["method"].nunique()
        labels = {"inter_modal": "inter-modal term", "emms": "EMMS", "zs_acc": "zero-shot accuracy"}
        assert row[1].startswith(labels.get(best, best)) and row[2].startswith(labels.get(lowest, lowest)), row
        of = [len(per)] if outcome == "id_gain" else []  # "9th of 19" in the first row only
        check(numbers(" ".join(row[1:])), [per.loc[best, "tau"], per.loc[best, "excl"], methods, per.loc[lowest, "mae"],
                                           per.loc["iimm", "tau"], tau_rank["iimm"], *of, per.loc["iimm", "mae"],
                                           mae_rank["iimm"]], f"which predictor wins, {outcome}")


def test_the_world_v1_forecast_tables_are_the_selection_files():
    chosen = pd.read_csv(RESULTS / "forecast-selection.csv")
    summary = fsel.coverage_summary(chosen).set_index("outcome")
    rows = table("| outcome | nested LODO error of the chosen sets")
    for row, outcome in zip(rows, ("id_gain", "norm_gain", "ood_change")):
        s, g = summary.loc[outcome], chosen[chosen["outcome"] == outcome]
        check(numbers(" ".join(row[1:])), [s["nested_lodo_mae"], s["iimm_lodo_mae"], s["cells_no_worse_than_iimm"],
                                           s["cells"], 100 * s["coverage"], 100 * s["iimm_coverage"],
                                           g["mean_width"].mean(), g["iimm_mean_width"].mean()], outcome)
    s = summary.loc["all outcomes"]
    check(numbers(" ".join(rows[3][1:])), [s["cells_no_worse_than_iimm"], s["cells"], 100 * s["coverage"],
                                           100 * s["iimm_coverage"]], "all outcomes")
    rules = pd.read_csv(RESULTS / "forecast-rules.csv")
    for row in table("| rule | ID gain: nested LODO error, methods no worse |"):
        name = row[0].split("`")[1] if "`" in row[0] else "bonferroni"
        s = fsel.coverage_summary(rules[rules["rule"] == name]).set_index("outcome")
        if row[0] == "IIMM-only line":
            values = [s.loc["id_gain", "iimm_lodo_mae"], s.loc["norm_gain", "iimm_lodo_mae"],
                      s.loc["ood_change", "iimm_lodo_mae"], 100 * s.loc["all outcomes", "iimm_coverage"]]
        else:
            values = [v for o in ("id_gain", "norm_gain", "ood_change")
                      for v in (s.loc[o, "nested_lodo_mae"], s.loc[o, "cells_no_worse_than_iimm"], s.loc[o, "cells"])]
            values.append(100 * s.loc["all outcomes", "coverage"])
        check(numbers(" ".join(row[1:])), values, f"rules table, {row[0]}")


def pairs_of(models: str, methods: str) -> list[tuple[str, str]]:
    return [(f"world-v2-{m}", method) for m in models for method in methods.split()]


FIVE = "bitfit attention lora clip_adapter linear_probe"
WORLD_V2_TESTS = [  # README's five world-v2 forecast tables, in order: (rules file, the test's pairs)
    ("forecast-rules.csv", pairs_of("a", FIVE) + pairs_of("abcd", "full_ft")),
    ("forecast-rules.csv", pairs_of("bc", FIVE) + pairs_of("d", "bitfit attention")),
    ("confirmation/forecast-rules.csv", pairs_of("d", "lora clip_adapter linear_probe")),
    ("extension/forecast-rules.csv", pairs_of("adc", "orthogonal clip_cite wise_ft") + pairs_of("b", "orthogonal")),
    ("completion/forecast-rules.csv", pairs_of("b", "clip_cite wise_ft")),
]


@pytest.mark.parametrize("nth", range(len(WORLD_V2_TESTS)))
def test_the_world_v2_forecast_test_tables_are_their_rules_files(nth):
    path, pairs = WORLD_V2_TESTS[nth]
    rules = pd.read_csv(RESULTS / "world-v2" / path)
    rules = rules[[(p, m) in pairs for p, m in zip(rules["pretrained"], rules["method"])]]
    rows = table("| rule | ID gain: nested LODO error / IIMM-only, cells no worse |", nth)
    for row in rows:
        name = row[0].split("`")[1]
        if name not in set(rules["rule"]):  # the first test's `gated`: its file was replaced by the replication's
            continue
        s = fsel.coverage_summary(rules[rules["rule"] == name]).set_index("outcome")
        values = [v for o in ("id_gain", "norm_gain", "ood_change") for v in (
            s.loc[o, "nested_lodo_mae"], s.loc[o, "iimm_lodo_mae"], s.loc[o, "cells_no_worse_than_iimm"],
            s.loc[o, "cells"])]
        coverage = ["all outcomes"] if row[4].count("/") == 0 else ["id_gain", "norm_gain", "ood_change"]
        values += [100 * s.loc[o, "coverage"] for o in coverage]
        check(numbers(" ".join(row[1:])), values, f"world-v2 table {nth + 1}, {name}")


def test_the_jackknife_table_is_the_jackknife_selection_file():
    cells = pd.read_csv(RESULTS / "world-v2" / "jackknife" / "forecast-selection.csv")
    datasets = f"{cells['n_datasets'].min()}–{cells['n_datasets'].max()} datasets each"
    assert f"all {len(cells)} world-v2 cells ({datasets})" in PROSE
    for row, outcome in zip(table("| outcome | jackknife+ coverage |"), ("id_gain", "norm_gain", "ood_change")):
        g = cells[cells["outcome"] == outcome]
        check(numbers(" ".join(row[1:])), [100 * fsel.pooled_coverage(g, "jackknife_plus_coverage"),
                                           100 * fsel.pooled_coverage(g, "coverage"),
                                           g["jackknife_plus_mean_width"].mean(), g["mean_width"].mean()], outcome)


def test_the_manipulation_check_table_is_the_shipped_check():
    text = (RESULTS / "world-v2" / "manipulation-check.md").read_text(encoding="utf-8")
    found = {(m[1], m[2], m[3]): [m[4], m[5], m[6]] for m in re.finditer(
        r"^\| (\S+) \| (zero-shot accuracy|intra-image) \| (across tasks|change vs control) \| (\S+) \| "
        r"\[(\S+), (\S+)\] \|", text, re.M)}
    models = {"A": "worldclip-v2-a", "B": "worldsiglip-v2-b", "D": "worldclip-v2-d"}
    for row in table("| model | τ(coverage, zero-shot acc.)"):
        model = models[row[0][0]]
        values = [float(v) for o in ("zero-shot accuracy", "intra-image")
                  for form in ("across tasks", "change vs control") for v in found[model, o, form]]
        check(numbers(" ".join(row[1:])), values, row[0])


def test_the_world_v2_full_ft_table_is_the_records_and_the_report(world2):
    report = (RESULTS / "world-v2" / "report.md").read_text(encoding="utf-8")
    taus = {(m[1], m[2]): [m[3], m[4], m[5], m[6], m[7], m[8]] for m in re.finditer(
        r"^\| (\S+) \| (\w+) \| 40 \| (\S+) \| \[(\S+), (\S+)\] \| \S+ \| \S+ \| (\S+) \| \[(\S+), (\S+)\] \|",
        report, re.M)}
    models = {"A": "world-v2-a", "B": "world-v2-b", "C": "world-v2-c", "D": "world-v2-d"}
    names = {"world-v2-b": "worldsiglip-v2-b"}
    full = world2[world2["method"] == "full_ft"]
    for row in table("| model | zero-shot | full FT | ID gain |"):
        tag = models[row[0][0]]
        g = full[full["pretrained"] == tag]
        values = [g["zs"].mean(), g["ft"].mean(), g["gain"].mean(), g["ood"].mean(), (g["ft"] >= 95).sum()]
        values += [float(v) for v in taus[names.get(tag, tag.replace("world-", "worldclip-")), "full_ft"]]
        check(numbers(" ".join(row[1:])), values, row[0])


def test_the_methods_table_counts_are_method_info():
    from core.method_info import method_info
    for row in table("| name | family | what trains |"):
        name = row[0].strip("`")
        if name == "peft":
            continue
        info = method_info(name)
        assert row[1] == info.family, name
        expected = info.trainable_vit_b32 if name != "linear_probe" else 512 * 8 + 8
        assert row[-1].split(" (")[0] == f"{expected:,}", name


def test_pretraining_wall_times_are_the_train_records():
    def wall(name: str) -> float:
        return json.loads((REPO / "core" / "assets" / f"{name}.train.json").read_text(encoding="utf-8"))["wall_time_s"]
    v1 = re.search(r"Wall time: ([\d,]+) s \(([\d.]+) min\) for the shipped weights", PROSE)
    check(list(v1.groups()), [wall("worldclip-tiny_world-v1"), wall("worldclip-tiny_world-v1") / 60], "world v1")
    v2 = re.search(r"A ([\d.]+), C ([\d.]+) and D ([\d.]+) min on one thread.*?B ([\d.]+) min \(([\d,]+) s", PROSE)
    check(list(v2.groups()), [wall("worldclip-tiny_world-v2-a") / 60, wall("worldclip-tiny_world-v2-c") / 60,
                              wall("worldclip-tiny_world-v2-d") / 60, wall("worldclip-tiny-sigmoid_world-v2-b") / 60,
                              wall("worldclip-tiny-sigmoid_world-v2-b")], "world v2")


def test_model_a_five_methods_took_the_minutes_readme_gives(world2):
    """Each method ran as one command after the one before: its time is from the previous method's last record
    to its own last (BitFit, the first, from its first record: a lower bound)."""
    a = world2[world2["pretrained"] == "world-v2-a"].assign(t=lambda d: pd.to_datetime(d["created"]))
    ends = a.groupby("method")["t"].agg(["min", "max"])
    order = FIVE.split()
    minutes = [(ends.loc[m, "max"] - (ends.loc[order[i - 1], "max"] if i else ends.loc[m, "min"])).total_seconds() / 60
               for i, m in enumerate(order)]
    overall = re.search(r"\(200 cells, 0 failed, (\d+)–(\d+) min per method", PROSE)
    assert overall, "README does not give model A's per-method times"
    low, high = (int(v) for v in overall.groups())
    assert round(min(minutes)) == low and round(max(minutes)) == high, (low, high, [round(m, 1) for m in minutes])
    detail = re.search(r"min per method: (\d+)–(\d+) for BitFit, attention and LoRA, about (\d+) for CLIP-Adapter "
                       r"and the linear probe\)", PROSE)
    assert detail, "README does not say which methods took how long"
    slow_low, slow_high, fast = (int(v) for v in detail.groups())
    assert round(min(minutes[:3])) == slow_low and round(max(minutes[:3])) == slow_high, minutes
    assert all(round(m) == fast for m in minutes[3:]), minutes


def test_the_compare_pages_table_and_its_ties_are_those_readme_names(world2):
    """The Compare page shows, per model, the shipped predictor table with most of its rows, the last in path
    order on a tie (app.py: sorted rglob, core.predictor_shown.table_for_model); README names it and the ties."""
    from core.predictor_shown import table_for_model
    tables = {p: pd.read_csv(p) for p in sorted(RESULTS.rglob("predictors.csv"))}
    said = re.search(r"the last in path order on a tie \((.*?)\) \|", README)[1]
    for (model, tag), _ in world2.groupby(["model", "pretrained"]):
        best, rows = table_for_model(tables, model, tag)
        assert f"world v2's `{best.parent.name}/`" in said, (tag, best)
        tied = {p.parent.name for p, t in tables.items() if p != best
                and ((t["model"] == model) & (t["pretrained"] == tag)).sum() == len(rows)}
        assert all(f"`{name}/`" in said for name in tied), (tag, sorted(tied), said)


OURS = ("attention", "bitfit", "clip_adapter", "clip_cite", "full_ft", "linear_probe", "lora", "orthogonal", "wise_ft")


def test_how_the_outcomes_relate_to_iimm_is_the_grid_report():
    text = (RESULTS / "default-report.md").read_text(encoding="utf-8")
    fit = pd.DataFrame([m.groups() for m in re.finditer(
        r"^\| (\w+) \| (id_gain|ood_change) \| (\S+) \| (\S+) \[(\S+), (\S+)\] \|", text, re.M)],
        columns=["method", "outcome", "r", "tau", "lo", "hi"]).set_index(["method", "outcome"]).astype(float)
    gain, ood = fit.xs("id_gain", level=1).loc[list(OURS)], fit.xs("ood_change", level=1).loc[list(OURS)]
    assert ((gain["lo"] <= 0) & (gain["hi"] >= 0)).all() and ((ood["lo"] <= 0) & (ood["hi"] >= 0)).all()
    assert (gain["tau"] < 0).all() and len(gain) == 9 and "for all nine of our own methods" in PROSE
    stated = re.search(r"Pearson r from (\S+) \((\w+)\) to (\S+) \((\w+ \w+)\); Kendall τ from (\S+) to (\S+)\), "
                       r"and every τ interval .*? With OOD change, r lies between (\S+) and (\S+) and every interval "
                       r"includes zero too \(CLIP-Adapter's, \[(\S+), (\S+)\]", PROSE)
    assert stated, "README's paragraph on IIMM and the outcomes changed its form"
    r_high, r_low = gain["r"].idxmax(), gain["r"].idxmin()
    assert (stated[2], stated[4]) == (r_high, r_low.replace("_", " ")), (r_high, r_low)
    check([stated[i] for i in (1, 3, 5, 6, 7, 8, 9, 10)],
          [gain["r"].max(), gain["r"].min(), gain["tau"].max(), gain["tau"].min(), ood["r"].min(), ood["r"].max(),
           ood.loc["clip_adapter", "lo"], ood.loc["clip_adapter", "hi"]], "IIMM and the outcomes")
    summary = re.search(r"all nine of our own methods \(Kendall τ (\S+) to (\S+)\)", PROSE)
    check(list(summary.groups()), [gain["tau"].max(), gain["tau"].min()], "What it found")


def test_the_forecast_prose_is_the_selection_files():
    chosen = pd.read_csv(RESULTS / "forecast-selection.csv").set_index(["method", "outcome"])
    worse = chosen[chosen["nested_lodo_mae"] > chosen["iimm_lodo_mae"] + 1e-12]
    rules = pd.read_csv(RESULTS / "forecast-rules.csv")
    rules = rules[rules["nested_lodo_mae"] > rules["iimm_lodo_mae"] + 1e-12]
    excess = (100 * (rules["nested_lodo_mae"] / rules["iimm_lodo_mae"] - 1)).groupby(rules["rule"]).max()
    n = worse.groupby(level="outcome").size()
    errors = ["nested_lodo_mae", "iimm_lodo_mae"]
    s = re.search(r"worse than IIMM alone for (\d+) methods on ID gain \(e\.g\. BitFit (\S+) vs (\S+), LoRA (\S+) "
                  r"vs (\S+) points\) and (\d+) on normalised gain \(e\.g\. CLIP-CITE (\S+) vs (\S+)\), by at most "
                  r"(\d+) % of the IIMM line's error \(`one-se`: up to (\d+) %, `gated` (\d+) %"
                  r".*?chose it (\d+)–(\d+) %", PROSE)
    check(list(s.groups()), [n["id_gain"], *chosen.loc[("bitfit", "id_gain"), errors],
                             *chosen.loc[("lora", "id_gain"), errors], n["norm_gain"],
                             *chosen.loc[("clip_cite", "norm_gain"), errors], excess["bonferroni"], excess["one-se"],
                             excess["gated"], 100 * worse["fold_agreement"].min(), 100 * worse["fold_agreement"].max()],
          "worse cells")
    s = re.search(r"BitFit's ID gain (\S+) \[(\S+), (\S+)\] points \((\d+) folds\) and VeRA \(peft\)'s (\S+) "
                  r"\[(\S+), (\S+)\] \((\d+) folds\)", PROSE)
    values = []
    for method in ("bitfit", "peft_vera"):
        cell = chosen.loc[(method, "id_gain")]
        values += [cell["gain_vs_iimm"], cell["gain_vs_iimm_lo"], cell["gain_vs_iimm_hi"],
                   round(cell["n_datasets"] * (1 - cell["fold_agreement"]))]
    check(list(s.groups()), values, "BitFit, VeRA")
    small = pd.read_csv(RESULTS / "forecast-selection-zero-shot.csv")
    bad = small[small["nested_lodo_mae"] > small["iimm_lodo_mae"] + 1e-12]
    assert len(bad) == 1 and tuple(bad.iloc[0][["method", "outcome", "chosen"]]) == ("peft_hra", "id_gain", "iimm")
    s = re.search(r"no worse than IIMM-only in (\d+) of (\d+) cells \(PEFT HRA's ID gain: (\S+) against (\S+) "
                  r"points, its choice on all datasets IIMM itself, the gain's interval \[(\S+), (\S+)\]", PROSE)
    check(list(s.groups()), [len(small) - 1, len(small), *bad.iloc[0][errors + ["gain_vs_iimm_lo", "gain_vs_iimm_hi"]]],
          "small samples, world v1")
