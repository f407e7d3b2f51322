"""jobs.predictors' outputs: the shipped tables are replaced only for the shipped results, another analysis
never writes into the shipped folder, the default store leaves submitted runs out, a failure writes nothing;
--rescore; and what its summaries say of random-weight and toy models."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import predictor_eval as pe
from core import store
from jobs import predictors as job
from tests.predictor_helpers import _one_line_error, _records, _run, _store


OUTPUTS = {"predictors.csv", "predictors.md", "forecast-selection.csv", "forecast-selection-zero-shot.csv",
           "forecast-rules.md", "forecast-rules.csv"}


def test_outputs_replace_the_shipped_tables_only_for_the_shipped_results(tmp_path, capsys, monkeypatch):
    shipped_out = tmp_path / "shipped" / "predictors.csv"
    monkeypatch.setattr(job, "DEFAULT_OUT", shipped_out)
    root = Path(_store(tmp_path, _records("logme", "iimm", seeds=(0,))))
    with pytest.raises(SystemExit):
        job.main(["--help"])
    assert "predictors.csv in the first --results folder" in " ".join(capsys.readouterr().out.split())
    args = ["--bootstrap", "0", "--selection-rule", "one-se", "--compare-rules", "one-se"]
    assert job.main(["--results", str(root), *args]) == 0
    assert not shipped_out.parent.exists() and OUTPUTS <= {p.name for p in root.iterdir()}
    monkeypatch.setattr(job, "SHIPPED_RESULTS", root)  # the same runs, now as the shipped default
    assert job.main(["--results", str(root), *args]) == 0
    assert {p.name for p in shipped_out.parent.iterdir()} == OUTPUTS
    # without --results (the app's whole store) the tables go to the user's local store
    local = tmp_path / "local"
    monkeypatch.setattr(store, "SHIPPED_DIR", root)
    monkeypatch.setenv(store.ENV_VAR, str(local))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(tmp_path / "submitted"))
    assert job.main(["--bootstrap", "0", "--no-selection"]) == 0
    assert {p.name for p in local.iterdir()} == {"predictors.csv", "predictors.md"}
    # a results folder whose own tables would be the shipped ones needs --out
    monkeypatch.setattr(job, "DEFAULT_OUT", root / "predictors.csv")
    monkeypatch.setattr(job, "SHIPPED_RESULTS", tmp_path / "default")
    capsys.readouterr()
    assert job.main(["--results", str(root), "--bootstrap", "0", "--no-selection"]) == 2
    assert "name the output with --out" in _one_line_error(capsys)


def test_another_analysis_never_replaces_tables_in_the_shipped_folder(tmp_path, capsys, monkeypatch):
    shipped = tmp_path / "shipped"
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setattr(job, "DEFAULT_OUT", shipped / "predictors.csv")
    world = shipped / "world-v2"  # e.g. the pre-registered world-v2 tables beside their records
    for rec in _records("iimm", "gbc", seeds=(0,)):
        store.write_record(rec, world)
    (world / "predictors.csv").write_text("shipped analysis\n", encoding="utf-8")
    for extra in (["--bootstrap", "10"], ["--bootstrap", "1000"]):  # any analysis, the default one too
        assert job.main(["--results", str(world), *extra]) == 2
        assert "its tables record the commands that made them" in _one_line_error(capsys)
        assert (world / "predictors.csv").read_text(encoding="utf-8") == "shipped analysis\n"
    out = tmp_path / "mine" / "predictors.csv"
    assert job.main(["--results", str(world), "--bootstrap", "10", "--no-selection", "--out", str(out)]) == 0
    assert out.exists() and (world / "predictors.csv").read_text(encoding="utf-8") == "shipped analysis\n"
    monkeypatch.setattr(job, "SHIPPED_RESULTS", world)  # the app's own runs: only their default analysis
    (shipped / "predictors.csv").write_text("the app's table\n", encoding="utf-8")
    for extra, flag in ((["--bootstrap", "10"], "--bootstrap"), (["--no-selection"], "--no-selection"),
                        (["--selection-rule", "one-se"], "--selection-rule"), (["--min-datasets", "6"], "--min-datasets")):
        assert job.main(["--results", str(world), *extra]) == 2
        assert flag in _one_line_error(capsys)
        assert (shipped / "predictors.csv").read_text(encoding="utf-8") == "the app's table\n"


def test_the_default_store_leaves_submitted_runs_out(tmp_path, monkeypatch):
    local, submitted = tmp_path / "local", tmp_path / "submitted"
    for rec in _records("iimm", "gbc", seeds=(0,)):
        store.write_record(rec, local)
        if rec["method"] == "full":  # a stranger's unverified copy under another method name
            store.write_record({**rec, "run_id": "sub-" + rec["run_id"], "method": "their_method",
                                "source": store.SUBMITTED_SOURCE}, submitted)
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setenv(store.ENV_VAR, str(local))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(submitted))
    assert job.main(["--bootstrap", "0", "--no-selection"]) == 0
    assert set(pd.read_csv(local / "predictors.csv")["method"]) == {"full", "bitfit"}  # was: their_method too


def test_a_failure_while_scoring_writes_nothing(tmp_path, capsys, monkeypatch):
    root = _store(tmp_path, _records("iimm", "gbc", seeds=(0,)))

    def broken(*args, **kwargs):
        raise ValueError("scoring failed")

    monkeypatch.setattr(job.fsel, "selection_table", broken)
    code, out = _run(tmp_path, root)
    assert code == 2 and "scoring failed" in _one_line_error(capsys)
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no CSV without its summary


def test_rescore_rewrites_the_baselines_and_says_how(tmp_path, monkeypatch):
    import json
    import types

    import torch

    from core import embed, models
    from core.data import registry
    from core.transferability import label_sources

    root = _store(tmp_path, _records("iimm", "gbc", n_sets=6, methods=("full",)))
    # files the store skips are skipped here too: 'not json' failed with a bare 'Expecting value', a JSON list
    # with an AttributeError traceback
    (Path(root) / "zz-not-json.json").write_text("not json", encoding="utf-8")
    (Path(root) / "zz-list.json").write_text("[1, 2]", encoding="utf-8")
    rng = np.random.default_rng(0)
    emb = types.SimpleNamespace(image=rng.standard_normal((30, 6)), text=rng.standard_normal((3, 6)),
                                labels=np.arange(30) % 3, class_names=["a", "b", "c"], data_fingerprint=None)
    fake_model = types.SimpleNamespace(logit_scale=torch.tensor(np.log(14.3)))
    monkeypatch.setattr(models, "load_model", lambda key, init_seed=None: types.SimpleNamespace(model=fake_model))
    monkeypatch.setattr(registry, "load_split", lambda name, split: name)
    monkeypatch.setattr(embed, "embed_dataset", lambda loaded, data: emb)
    monkeypatch.setattr(label_sources, "_minilm", lambda: None)
    assert job.rescore([Path(root)]) == 12
    assert (Path(root) / "zz-list.json").read_text(encoding="utf-8") == "[1, 2]"  # left as it was
    for path in Path(root).glob("fx-*.json"):
        rec = json.loads(path.read_text(encoding="utf-8"))
        assert set(rec["transferability"]) >= {"gbc", "gbc_diagonal", "sfda", "ncti", "emms", "leep"}
        info = rec["provenance"]["transferability"]
        assert info["convention"] == "study" and info["leep_logit_scale"] == pytest.approx(14.3)
        assert info["rescored_by"].endswith("--rescore")


def test_a_random_weight_models_predictor_summary_says_so(tmp_path, capsys):
    # predictors.md named models by architecture alone ("worldclip-tiny"): the numbers of an untrained network
    # (here an ingested record's own flag, under a tag of its own) read like the pretrained model's
    recs = [dict(r, pretrained="their-tag", random_weights=True) for r in _records("iimm", "gbc", seeds=(0,))]
    code, out = _run(tmp_path, _store(tmp_path, recs), "--no-selection", "--bootstrap", "0")
    printed = capsys.readouterr().out
    md = (out.parent / "predictors.md").read_text(encoding="utf-8")
    assert code == 0 and "(worldclip-tiny (their-tag, RANDOM WEIGHTS); methods" in md
    assert "**RANDOM WEIGHTS:**" in md and "RANDOM WEIGHTS: the numbers of worldclip-tiny (their-tag" in printed
    trained = job.summary_markdown(pd.read_csv(out), pe.OUTCOMES, n_runs=len(recs), min_datasets=5)
    assert "RANDOM WEIGHTS" not in trained and "(worldclip-tiny (their-tag); methods" in trained


def test_the_offline_toy_models_predictor_summary_says_it_is_a_toy(tmp_path):
    # the shipped summary is of worldclip-tiny (world-v1), a tiny model pretrained offline on the generated world:
    # its Markdown read like a finding about real CLIP models
    code, out = _run(tmp_path, _store(tmp_path, _records("iimm", "gbc", seeds=(0,))), "--no-selection", "--bootstrap", "0")
    md = (out.parent / "predictors.md").read_text(encoding="utf-8")
    assert code == 0 and "(worldclip-tiny (world-v1); methods" in md
    assert "**Toy model:** worldclip-tiny (world-v1) is a tiny model pretrained offline" in md


def test_the_compared_rules_name_their_models_and_random_weights(tmp_path):
    # forecast-rules.md named no model at all: a random-weight store's coverage figures read like anyone's
    recs = [dict(r, pretrained="their-tag", random_weights=True) for r in _records("iimm", "gbc", seeds=(0,))]
    code, out = _run(tmp_path, _store(tmp_path, recs), "--compare-rules", "one-se", "--bootstrap", "0")
    rules = (out.parent / "forecast-rules.md").read_text(encoding="utf-8")
    assert code == 0 and "Model(s): worldclip-tiny (their-tag, RANDOM WEIGHTS)." in rules
    assert "**RANDOM WEIGHTS:** the numbers of worldclip-tiny (their-tag, RANDOM WEIGHTS)" in rules


def test_a_cell_without_an_iimm_line_reads_as_a_dash_not_nan():
    # a cell where IIMM is missing on some dataset has no IIMM-only line: its row read "nan" and "nan%"
    from core import forecast_select as fsel
    from jobs.predictor_tables import selection_markdown

    table = fsel.selection_table(store.records_to_frame(_records("iimm", "gbc", seeds=(0,))), outcomes=("id_gain",),
                                 coverage=False).assign(coverage=0.9, iimm_coverage=0.8)
    table.loc[0, ["iimm_lodo_mae", "iimm_coverage", *fsel.GAIN_COLUMNS]] = np.nan
    lines = selection_markdown(table).splitlines()
    rows = {m: [line for line in lines if line.startswith(f"| {m} |")] for m in table["method"]}
    row, other = rows[table["method"][0]], rows[table["method"][1]]
    assert len(row) == 1 and "nan" not in row[0]
    assert row[0].split(" | ")[5:7] == ["—", "—"] and row[0].split(" | ")[9] == "—"  # MAE, gain, IIMM coverage
    assert other[0].split(" | ")[9] == "80%"


def test_winners_without_iimm_read_as_a_dash_not_nan(tmp_path):
    # runs without IIMM (records with no iimm): the winners table read '+nan' for both margins over IIMM
    from jobs.predictor_tables import summary_markdown

    records = _records("zs_acc", "gbc", seeds=(0,))
    for rec in records:
        rec["iimm"] = None
        rec["zero_shot"].pop("iimm")
    table = pe.evaluate_predictors(store.records_to_frame(records), n_boot=0)
    assert "iimm" not in set(table["predictor"])
    md = summary_markdown(table, pe.OUTCOMES, n_runs=len(records), min_datasets=5)
    winners = [line for line in md.splitlines() if line.startswith("| ID gain | zs_acc")]
    assert len(winners) == 1 and "nan" not in md
    assert winners[0].split(" | ")[2] == "—" and winners[0].endswith("| — points |")


def test_a_predictor_scored_on_fewer_datasets_is_named_in_the_summary():
    # a baseline added after some records were made: those records lack it, and its mean |tau| rested on fewer
    # datasets than the others' with no word in the summary
    from jobs.predictor_tables import summary_lines, summary_markdown

    records = _records("zs_acc", "gbc", seeds=(0,))
    table = pe.evaluate_predictors(store.records_to_frame(records), n_boot=0)
    assert not [line for line in summary_lines(table, pe.OUTCOMES) if "fewer datasets" in line]
    for rec in records:
        if rec["dataset"].endswith(("-0", "-1")):
            rec["transferability"].pop("gbc")
    table = pe.evaluate_predictors(store.records_to_frame(records), n_boot=0)
    full = int(table.loc[table["predictor"] == "iimm", "n_datasets"].max())
    said = [line for line in summary_lines(table, pe.OUTCOMES) if "fewer datasets" in line]
    assert said == [f"Scored on fewer datasets than other predictors of the same cell, so their means and ranks "
                    f"rest on other data: gbc in 6 cell outcome(s) (as few as {full - 2} where others have {full})."]
    assert said[0] in summary_markdown(table, pe.OUTCOMES, n_runs=len(records), min_datasets=5)


def test_a_selection_of_several_models_names_each_rows_model():
    # world v2's tables hold four models: their rows of one method and outcome read alike, with no model column
    from core import forecast_select as fsel
    from jobs.predictor_tables import selection_markdown

    records = _records("iimm", "gbc", seeds=(0,), methods=("full",))
    one = fsel.selection_table(store.records_to_frame(records), outcomes=("id_gain",), coverage=False)
    two = pd.concat([one, one.assign(pretrained="random")], ignore_index=True).assign(coverage=0.9)
    lines = selection_markdown(two).splitlines()
    rows = [line for line in lines if line.startswith("| worldclip-tiny")]
    assert lines[3].startswith("| model | method | outcome |") and lines[4] == "|---" * 12 + "|"
    assert [r.split(" | ")[:3] for r in rows] == [["| worldclip-tiny · random (RANDOM WEIGHTS)", "full", "id_gain"],
                                                  ["| worldclip-tiny · world-v1", "full", "id_gain"]]
    alone = selection_markdown(one.assign(coverage=0.9)).splitlines()
    assert alone[3].startswith("| method | outcome |") and alone[5].startswith("| full | id_gain |")


def test_a_winner_that_is_iimm_is_written_as_no_margin_not_minus_zero():
    """Where IIMM itself has the lowest LODO error its margin is 0: the winners table wrote '-0 points' (the
    negated zero, '+.4g'), where every other surface writes a zero change with a '+' or no sign."""
    from jobs.predictor_tables import summary_markdown

    records = _records("iimm", "gbc", seeds=(0,))
    table = pe.evaluate_predictors(store.records_to_frame(records), n_boot=0)
    md = summary_markdown(table, pe.OUTCOMES, n_runs=len(records), min_datasets=5)
    winners = [line for line in md.splitlines() if line.startswith("| ID gain | ")]
    assert len(winners) == 1 and "| iimm " in winners[0], md
    assert winners[0].endswith("| +0 points |") and "-0 " not in winners[0], winners[0]
