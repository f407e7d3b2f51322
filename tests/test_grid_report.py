"""jobs.grid_report: per-method outcomes and IIMM's relation to them, from stored records."""
import json

from core import schema
from jobs import grid_report
from tests.fixtures import LINES, write_fixture_store


def test_report_tables_from_a_fixture_store(tmp_path, capsys):
    write_fixture_store(tmp_path, n_datasets=6, methods=("full", "bitfit"), seeds=(0, 1), noise=0.0)
    out_md = tmp_path / "report.md"
    assert grid_report.main(["--results", str(tmp_path), "--out", str(out_md)]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert captured.err == f"wrote {out_md}\n"  # the file was not named
    assert "6 datasets, 24 successful runs (0 failed), up to 2 seed(s)" in text
    rows = [line for line in text.splitlines() if line.startswith("| full |") or line.startswith("| bitfit |")]
    assert len(rows) == 2 + 4  # one outcome row each, then id_gain and ood_change relations each
    # the fixture's outcomes are exact linear functions of IIMM: |r| = 1, LODO error 0
    relation = [r for r in rows if "id_gain" in r]
    assert all("| +1.00 |" in r or "| -1.00 |" in r for r in relation)
    assert all(r.rstrip(" |").endswith("0.0") for r in relation)
    assert out_md.read_text(encoding="utf-8").strip() == text.strip()


def test_report_refuses_missing_or_empty_store(tmp_path, capsys):
    assert grid_report.main(["--results", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert grid_report.main(["--results", str(tmp_path)]) == 2
    assert "no successful runs" in capsys.readouterr().err


def test_each_model_gets_its_own_tables_and_the_zero_shot_baseline_none(tmp_path, capsys):
    write_fixture_store(tmp_path, n_datasets=6, methods=("full", "zero_shot"), pretrained="world-v1")
    write_fixture_store(tmp_path, n_datasets=6, methods=("full",), pretrained="other")
    for record in tmp_path.rglob("*.json"):  # the other model gains 10 points more on every dataset
        text = record.read_text(encoding="utf-8")
        if '"other"' in text:
            r = json.loads(text)
            ft = r["ft_acc"] + 10.0
            r.update(ft_acc=ft, **schema.outcome_fields(r["zs_acc"], ft, r["ood_before"], r["ood_after"]))
            record.write_text(json.dumps(r), encoding="utf-8")
    assert grid_report.main(["--results", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "### worldclip-tiny (other)" in text and "### worldclip-tiny (world-v1)" in text
    a, b, _ = LINES["full"]
    mean_gain = a + b * sum(0.2 + 0.05 * k for k in range(6)) / 6
    other, world = text.split("### worldclip-tiny (world-v1)")
    assert f"| full | 6 | {mean_gain + 10:+.1f} ±" in other and f"| full | 6 | {mean_gain:+.1f} ±" in world
    assert "| zero_shot |" not in text
    assert other.count("| full | id_gain |") == 1 and world.count("| full | id_gain |") == 1


def test_report_checks_out_first_and_says_when_iimm_is_not_scored(tmp_path, capsys):
    write_fixture_store(tmp_path / "r", n_datasets=4, methods=("full",))
    (tmp_path / "a-file").write_text("x",
                                     encoding="utf-8")  # a missing folder is made now, as in every job (jobs.cli): a file in the way
    assert grid_report.main(["--results", str(tmp_path / "r"), "--out", str(tmp_path / "a-file" / "r.md")]) == 2
    err = capsys.readouterr()
    assert "a-file is a file, not a folder" in err.err and err.out == ""  # refused before any report
    assert grid_report.main(["--results", str(tmp_path / "r")]) == 0
    assert "not scored: no method has 5 datasets" in capsys.readouterr().out


def test_random_weight_models_are_named_as_such(tmp_path, capsys):
    # the report named models "arch (tag)" only: an untrained network's runs (flagged by their records, under
    # a pretrained tag of their own) read as the pretrained model's, beside a trained model's tables
    write_fixture_store(tmp_path, n_datasets=6, methods=("full",), pretrained="world-v1")
    write_fixture_store(tmp_path, n_datasets=6, methods=("full",), pretrained="their-tag")
    for record in tmp_path.rglob("*.json"):
        r = json.loads(record.read_text(encoding="utf-8"))
        if r["pretrained"] == "their-tag":
            record.write_text(json.dumps({**r, "random_weights": True}), encoding="utf-8")
    assert grid_report.main(["--results", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Model(s): worldclip-tiny (their-tag, RANDOM WEIGHTS), worldclip-tiny (world-v1);")
    assert "### worldclip-tiny (their-tag, RANDOM WEIGHTS)" in text and "### worldclip-tiny (world-v1)\n" in text
    assert "**RANDOM WEIGHTS:** the numbers of worldclip-tiny (their-tag, RANDOM WEIGHTS) come from untrained" in text


def test_the_offline_toy_models_numbers_say_they_are_a_toys(tmp_path, capsys):
    # worldclip-tiny (world-v1), pretrained offline on the generated world, was reported like a real model
    write_fixture_store(tmp_path / "toy", n_datasets=6, methods=("full",))
    write_fixture_store(tmp_path / "real", n_datasets=6, methods=("full",), model="ViT-B-32", pretrained="openai")
    write_fixture_store(tmp_path / "random", n_datasets=6, methods=("full",), pretrained="random")
    said = {}
    for name in ("toy", "real", "random"):
        assert grid_report.main(["--results", str(tmp_path / name)]) == 0
        said[name] = capsys.readouterr().out
    assert "**Toy model:** worldclip-tiny (world-v1) is a tiny model pretrained offline" in said["toy"]
    assert "Toy model" not in said["real"] and "Toy model" not in said["random"]  # random: the RANDOM WEIGHTS line
    assert "worldclip-tiny (random, RANDOM WEIGHTS)" in said["random"]


def test_the_default_store_is_reported_as_the_ranking_shows_it_without_unverified_submissions(tmp_path, monkeypatch,
                                                                                              capsys):
    """Without --results the report read the app's whole store, unverified submissions included, while the
    ranking, jobs.export and jobs.predictors leave them out: one method's gain differed between them."""
    from core import ranking, store

    shipped, local, submitted = tmp_path / "shipped", tmp_path / "local", tmp_path / "submitted"
    shipped.mkdir()
    write_fixture_store(local, n_datasets=6, methods=("full",), seeds=(0,), noise=0.0)
    for path in write_fixture_store(submitted, n_datasets=6, methods=("full",), seeds=(1,), noise=0.0):
        r = json.loads(path.read_text(encoding="utf-8"))  # a stranger's seed 1, claiming 30 points more on every dataset
        ft = min(r["ft_acc"] + 30.0, 100.0)
        r.update(ft_acc=ft, source=store.SUBMITTED_SOURCE,
                 **schema.outcome_fields(r["zs_acc"], ft, r["ood_before"], r["ood_after"]))
        path.write_text(json.dumps(r), encoding="utf-8")
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setenv(store.ENV_VAR, str(local))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(submitted))
    monkeypatch.setenv("IIMM_STORE_INDEX", "off")
    assert len(store.load_runs()) == 12  # both stores are read
    ranked = ranking.method_ranking(store.verified_runs(store.load_runs()))  # what the ranking page shows
    assert grid_report.main([]) == 0
    text = capsys.readouterr().out
    assert "6 successful runs (0 failed), up to 1 seed(s)" in text  # was: 12 runs, 2 seeds
    assert f"| full | 6 | {ranked['id_gain'].iloc[0]:+.1f} ±" in text


def test_a_report_says_when_its_means_average_several_recipes_or_different_data(tmp_path):
    """The ranking warns above its table when a method's runs come from several recipes or one dataset's runs ran
    on different data; the report's markdown, the same means, said neither."""
    from core import store
    from tests.fixtures import make_fixture_records

    write_fixture_store(tmp_path, n_datasets=6, methods=("full", "bitfit"), noise=0.0)
    runs = store.load_runs([tmp_path])
    assert "averaged together" not in grid_report.report(runs)
    smoke = [dict(r, run_id=r["run_id"] + "-smoke", seed=r["seed"] + 5,
                  config={**r["config"], "train": {"max_steps": 12}}, provenance={**r["provenance"], "data_fingerprint": {"train": "new", "test": "same"}})
             for r in make_fixture_records(n_datasets=2, methods=("bitfit",))]
    for record in smoke:
        store.write_record(record, tmp_path / "smoke")
    text = grid_report.report(store.load_runs([tmp_path, tmp_path / "smoke"]))
    assert "**Different experiments are averaged together** for BitFit (2)" in text


def test_a_mean_that_rounds_to_zero_is_written_plus_zero_as_the_pages_write_it(tmp_path):
    """A method forgetting almost nothing (mean OOD change -0.02 points) read '-0.0' in the report, where the
    ranking page, the heatmap and the forecast job write '+0.0' (core.text.signed)."""
    from core import store
    from tests.fixtures import OOD_BEFORE, make_fixture_records

    for record in make_fixture_records(n_datasets=6, methods=("full",)):
        after = {name: value - 0.02 for name, value in OOD_BEFORE.items()}
        record.update(ood_after=after, **schema.outcome_fields(record["zs_acc"], record["ft_acc"], OOD_BEFORE, after))
        store.write_record(schema.validate_record(record), tmp_path)
    (row,) = [line for line in grid_report.report(store.load_runs([tmp_path])).splitlines()
              if line.startswith("| full | 6 |")]
    assert "-0.0 " not in row and "| +0.0 ± 0.0 |" in row, row
