"""The manipulation check's statistics and rule, on hand-made rows and on a tiny real run."""
import re
import shlex

import numpy as np
import pandas as pd
import pytest

from core.data import world2
from jobs import world_check
from jobs import world_v2_report  # noqa: F401  (imported here, before the sandbox patches world_check.SHIPPED, which it copies)
from tests.log_helpers import fresh_process_logging


def _rows(model: str, slope: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mix = world2.long_tail(0)
    tasks = [t for t in world2.TASKS if t.name in world2.FINETUNE_TASKS]
    cov = np.array([mix.shares[t.subworld] for t in tasks])
    return pd.DataFrame({"model": model, "task": [t.name for t in tasks], "subworld": [t.subworld for t in tasks],
                         "coverage": cov, "zs_acc": 50 + slope * 80 * cov + rng.normal(0, 1, len(tasks)),
                         "intra_image": 0.8 - slope * 0.2 * cov + rng.normal(0, 0.005, len(tasks)),
                         "iimm": 0.6 + rng.normal(0, 0.01, len(tasks))})


def test_coverage_that_drives_both_outcomes_passes_and_noise_fails():
    control = _rows("worldclip-v2-c", 0.0, 9).assign(coverage=0.1)
    strong = pd.concat([world_check.coverage_taus(_rows(m, 1.0, i), control=control, n_boot=200)
                        for i, m in enumerate(world_check.MUST_PASS)])
    passed, reasons = world_check.verdict(strong)
    assert passed and len(reasons) == 4
    assert (strong[strong.outcome == "zero-shot accuracy"]["tau"] > 0.3).all()
    assert (strong[strong.outcome == "intra-image"]["tau"] < -0.3).all()
    noise = pd.concat([world_check.coverage_taus(_rows(m, 0.0, i + 5), control=control, n_boot=200)
                       for i, m in enumerate(world_check.MUST_PASS)])
    assert world_check.verdict(noise)[0] is False
    without_control = pd.concat([world_check.coverage_taus(_rows(m, 0.0, i + 5), control=None, n_boot=200)
                                 for i, m in enumerate(world_check.MUST_PASS)])
    assert world_check.verdict(without_control)[0] is None  # form (ii) not measured yet


def test_verdict_waits_for_missing_models_and_control_must_cover_every_task():
    rows = _rows("worldclip-v2-a", 1.0, 0)
    taus = world_check.coverage_taus(rows, control=None, n_boot=50)
    assert world_check.verdict(taus)[0] is None
    with pytest.raises(ValueError, match="every task"):
        world_check.coverage_taus(rows, control=rows.iloc[:5], n_boot=50)
    md = world_check.markdown(rows, taus, ["worldclip-v2-d"], 50)
    assert "NOT DECIDED YET" in md and "worldclip-v2-d" in md


@pytest.mark.slow
def test_task_rows_on_a_real_model(caplog):
    caplog.set_level("INFO", logger="jobs.world_check")
    rows = world_check.task_rows("worldclip-tiny", world2.long_tail(0), ("w2-letters-x-o", "w2-cell-size"),
                                 max_items=64)
    said = [r.getMessage() for r in caplog.records if r.name == "jobs.world_check"]
    assert [line.split(" worldclip-tiny ")[0] for line in said] == ["[1/2]", "[2/2]"]  # how far, per model
    assert list(rows["task"]) == ["w2-letters-x-o", "w2-cell-size"]
    assert rows["coverage"].tolist() == [world2.long_tail(0).shares["letters"], 0.0]
    assert ((rows["zs_acc"] >= 0) & (rows["zs_acc"] <= 100)).all() and rows["iimm"].between(-1, 1).all()


def test_rejects_a_world_v1_model(capsys):
    assert world_check.main(["--models", "worldclip-tiny"]) == 2
    assert "not a world-v2 model" in capsys.readouterr().err


def test_model_card_names_recipe_mix_and_toy_status():
    from jobs.world2_card import card_text

    rows = _rows("worldclip-v2-d", 1.0, 0).assign(classes=2, inter_modal=0.3)
    text = card_text("worldclip-v2-d", rows)
    assert "toy model" in text.lower() and "long-tail-p1" in text and "InfoNCE" in text
    assert "| w2-cell-count |" in text


def test_a_card_reads_the_training_log_beside_the_weights_where_they_now_are(tmp_path, monkeypatch):
    """jobs.world2_card copied core.models.ASSET_DIR at import: with the weights folder moved (jobs.pretrain writes
    the weights and their log to core.models.ASSET_DIR), the card read the old folder's log."""
    import json

    from core import models as model_zoo
    from jobs.world2_card import card_text

    name = model_zoo.spec_for("worldclip-v2-d").shipped_weights
    (tmp_path / name).with_suffix(".train.json").write_text(json.dumps({"loss_curve": [[0, 9.87], [25, 6.54]]}))
    monkeypatch.setattr(model_zoo, "ASSET_DIR", tmp_path)
    text = card_text("worldclip-v2-d", _rows("worldclip-v2-d", 1.0, 0).assign(classes=2, inter_modal=0.3))
    assert "0: 9.87 → 25: 6.54" in text


@pytest.mark.parametrize("spec", __import__("core.models", fromlist=["WORLD_V2_MODELS"]).WORLD_V2_MODELS,
                         ids=lambda s: s.key)
def test_every_world_v2_model_ships_weights_log_and_card(spec):
    import json

    from core.models import ASSET_DIR
    from jobs.world2_card import card_path
    weights = ASSET_DIR / spec.shipped_weights
    assert weights.suffix == ".safetensors" and 0 < weights.stat().st_size <= 25 * 2**20
    log = json.loads(weights.with_suffix(".train.json").read_text(encoding="utf-8"))
    assert log["steps"] == 2000 and log["settings"]["model"] == spec.key  # the same step budget for all four
    assert spec.key in card_path(spec.key).read_text(encoding="utf-8")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """world_check.main with cheap fake rows, run in tmp_path; a copy of the shipped check stands in for it."""
    import shutil
    from pathlib import Path

    shipped = tmp_path / "jobs" / "results" / "world-v2"
    shipped.mkdir(parents=True)
    real = Path(world_check.__file__).resolve().parent / "results" / "world-v2"
    for name in ("manipulation-check.md", "manipulation-check.csv"):
        shutil.copy(real / name, shipped / name)
    monkeypatch.chdir(tmp_path)  # the old default --out was relative to the working directory
    monkeypatch.setattr(world_check, "SHIPPED", shipped, raising=False)
    calls = {"rows": [], "cards": []}

    def fake_rows(key, mix, tasks, *, max_items=None):
        calls["rows"].append((key, max_items))
        return _rows(key, 1.0, len(calls["rows"]))

    monkeypatch.setattr(world_check, "task_rows", fake_rows)
    monkeypatch.setattr("jobs.world2_card.card_text",
                        lambda key, frame, passed=None: calls["cards"].append((key, passed)) or f"card of {key}\n")
    monkeypatch.setattr("jobs.world2_card.card_path", lambda key: tmp_path / "cards" / f"{key}.md")
    return shipped, calls


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("argv", [["--models", "worldclip-v2-a", "--max-items", "20", "--boot", "10"],
                                  ["--max-items", "20"], ["--models", "worldclip-v2-a", "worldclip-v2-d"],
                                  ["--boot", "10"]])
def test_a_quick_or_partial_run_never_overwrites_the_shipped_check(sandbox, capsys, argv):
    shipped, calls = sandbox
    before = _snapshot(shipped)
    assert world_check.main(argv) == 2
    assert "--out" in capsys.readouterr().err
    assert _snapshot(shipped) == before and not calls["rows"]  # refused before any embedding
    assert world_check.main([*argv, "--out", str(shipped)]) == 2  # not even when told to
    assert "pre-registered" in capsys.readouterr().err and _snapshot(shipped) == before


def test_a_quick_look_writes_where_told_and_says_what_it_is(sandbox, tmp_path, capsys):
    shipped, calls = sandbox
    before = _snapshot(shipped)
    assert world_check.main(["--models", "worldclip-v2-a", "--max-items", "20", "--boot", "10",
                             "--out", str(tmp_path / "quick")]) == 0
    md = (tmp_path / "quick" / "manipulation-check.md").read_text(encoding="utf-8")
    assert "NOT DECIDED YET" in md and "not the pre-registered check" in md and "--max-items 20" in md
    assert "worldclip-v2-d has not been checked yet (not in --models)" in md and "weights missing" not in md
    assert _snapshot(shipped) == before and calls["rows"] == [("worldclip-v2-a", 20)]


def test_a_quick_look_names_the_files_it_wrote_on_stderr(sandbox, tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="jobs.world_check")
    quick = tmp_path / "quick"
    with fresh_process_logging(caplog, "jobs.world_check"):  # else the log lines reach no stream here
        assert world_check.main(["--models", "worldclip-v2-a", "--max-items", "20", "--boot", "10", "--out",
                                 str(quick)]) == 0
    said = [r.getMessage() for r in caplog.records if r.name == "jobs.world_check"]
    assert said[-1] == f"wrote {quick / 'manipulation-check.md'} and {quick / 'manipulation-check.csv'}"
    out, err = capsys.readouterr()
    assert out.strip().endswith((quick / "manipulation-check.md").read_text(encoding="utf-8").strip())
    assert "wrote " not in out and err.rstrip().endswith(f" jobs.world_check {said[-1]}"), err


def test_each_model_and_task_says_how_far_the_check_is(sandbox, tmp_path, caplog):
    # minutes per model: the lines named the model and task, not how many were done or how long it had taken
    caplog.set_level("INFO", logger="jobs.world_check")
    argv = ["--models", "worldclip-v2-a", "worldclip-v2-c", "--max-items", "20", "--out", str(tmp_path / "q")]
    assert world_check.main(argv) == 0
    said = [r.getMessage() for r in caplog.records if r.name == "jobs.world_check"]
    n = len(world_check.TASKS)
    assert re.fullmatch(rf"checking worldclip-v2-a, model 1 of 2 \({n} tasks; elapsed \d+s\)", said[0])
    assert re.fullmatch(rf"checking worldclip-v2-c, model 2 of 2 \({n} tasks; elapsed \d+s\)", said[1])


def test_the_full_check_writes_the_shipped_folder_by_default():
    assert world_check.parse_args([]).out.resolve() == world_check.SHIPPED.resolve()


@pytest.mark.parametrize("argv, match", [(["--max-items", "0"], "--max-items must be"),
                                         (["--max-items", "1", "--out", "{tmp}/q"], "--max-items must be at least 2"),
                                         (["--max-items", "-5"], "--max-items must be"),
                                         (["--boot", "0"], "--boot must be"),
                                         (["--max-items", "5", "--out", "{tmp}/q", "--cards"], "--cards")])
def test_bad_numbers_and_quick_cards_are_refused_up_front(sandbox, tmp_path, capsys, argv, match):
    _, calls = sandbox
    assert world_check.main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert match in capsys.readouterr().err
    assert not calls["rows"] and not calls["cards"]


def test_a_run_that_checks_nothing_leaves_no_stale_rows_behind(sandbox, tmp_path, monkeypatch, capsys):
    from jobs import world_v2_report

    shipped, calls = sandbox
    assert world_v2_report.manipulation_verdict(shipped)[0] is False  # the copy of the shipped check
    header = (shipped / "manipulation-check.csv").read_text(encoding="utf-8").splitlines()[0]
    monkeypatch.setattr("core.models.ASSET_DIR", tmp_path / "no-weights")  # every model's weights missing
    assert world_check.main([]) == 0 and not calls["rows"]
    assert "NOT DECIDED YET" in (shipped / "manipulation-check.md").read_text(encoding="utf-8")
    assert (shipped / "manipulation-check.csv").read_text(encoding="utf-8") == header + "\n"  # the header, no stale rows
    passed, sentence = world_v2_report.manipulation_verdict(shipped)
    assert passed is None and "has not checked any model" in sentence


def test_the_csv_columns_are_those_the_shipped_check_has():
    from pathlib import Path

    real = Path(world_check.__file__).resolve().parent / "results" / "world-v2" / "manipulation-check.csv"
    assert real.read_text(encoding="utf-8").splitlines()[0] == ",".join(world_check.COLUMNS)


@pytest.mark.parametrize("where, match", [("file", "is a file, not a folder"), ("under-a-file", "cannot write in")])
def test_an_unusable_out_is_refused_before_any_embedding(sandbox, tmp_path, capsys, where, match):
    _, calls = sandbox
    (tmp_path / "a-file").write_text("not a folder\n", encoding="utf-8")
    out = tmp_path / "a-file" if where == "file" else tmp_path / "a-file" / "quick"
    assert world_check.main(["--models", "worldclip-v2-a", "--max-items", "20", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and match in err and str(out) in err
    assert not calls["rows"] and (tmp_path / "a-file").read_text(encoding="utf-8") == "not a folder\n"


def test_a_full_disk_keeps_the_previous_check_whole(sandbox, tmp_path, capsys, monkeypatch):
    from tests.fixtures import disk_full_from

    out = tmp_path / "quick"
    out.mkdir()
    for name in ("manipulation-check.md", "manipulation-check.csv"):
        (out / name).write_text(f"previous {name}\n", encoding="utf-8")
    disk_full_from(monkeypatch, 2)  # the CSV is written, the report is not
    assert world_check.main(["--models", "worldclip-v2-a", "--max-items", "20", "--boot", "10",
                             "--out", str(out)]) == 1  # the rows were computed: exit 1, not 2
    assert "stopped after its work had begun: [Errno 28] No space left on device" in capsys.readouterr().err
    assert (out / "manipulation-check.md").read_text(encoding="utf-8") == "previous manipulation-check.md\n"
    # was: this run's rows beside the previous report (jobs.world_v2_report's verdict from rows the report lacks)
    assert (out / "manipulation-check.csv").read_text(encoding="utf-8") == "previous manipulation-check.csv\n"
    disk_full_from(monkeypatch, 1)
    assert world_check.main(["--models", "worldclip-v2-a", "--max-items", "20", "--boot", "10",
                             "--out", str(out)]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["manipulation-check.csv", "manipulation-check.md"]
    assert (out / "manipulation-check.md").read_text(encoding="utf-8") == "previous manipulation-check.md\n"


@pytest.mark.parametrize("nth", [2, 4])  # a full disk at the report, or at a card after the check's two files
def test_a_full_disk_keeps_the_old_check_and_cards_together(sandbox, tmp_path, monkeypatch, nth):
    """--cards wrote each card after the check, one file at a time: a full disk (or a Ctrl-C) part-way left a new
    check beside old cards, or some cards stating the new verdict beside others stating the old one."""
    from tests.fixtures import disk_full_from

    shipped, calls = sandbox
    cards = tmp_path / "cards"
    cards.mkdir()
    for key in ("worldclip-v2-a", "worldsiglip-v2-b"):
        (cards / f"{key}.md").write_text("old card\n", encoding="utf-8")
    out = tmp_path / "q"
    out.mkdir()
    for name in ("manipulation-check.md", "manipulation-check.csv"):
        (out / name).write_text("old\n", encoding="utf-8")
    before = {p: p.read_bytes() for folder in (cards, out) for p in folder.iterdir()}
    disk_full_from(monkeypatch, nth)
    assert world_check.main(["--cards", "--models", "worldclip-v2-a,worldsiglip-v2-b", "--boot", "10",
                             "--out", str(out)]) == 1
    assert len(calls["cards"]) == 2  # both cards were made, then the set was written: none of it landed
    assert {p: p.read_bytes() for folder in (cards, out) for p in folder.iterdir()} == before


def test_the_check_records_how_it_was_made(sandbox, tmp_path):
    # manipulation-check.md held tables and a verdict but no command, code revision, package versions, device,
    # bootstrap seed or wall time: nothing said which code and which packages made the shipped check
    from core.experiment import git_revision

    argv = ["--models", "worldclip-v2-a", "--max-items", "20", "--boot", "10", "--out", str(tmp_path / "quick")]
    assert world_check.main(argv) == 0
    md = (tmp_path / "quick" / "manipulation-check.md").read_text(encoding="utf-8")
    prov = md[md.index("## Provenance"):]
    assert f"- command: `python -m jobs.world_check {shlex.join(argv)}`" in prov  # a tmp path may hold a space
    assert f"- git revision: {git_revision()}" in prov and '"torch": ' in prov and "bootstrap seed: 0" in prov
    assert "- device: cpu" in prov and "- wall time: " in prov


def test_the_reports_wall_time_is_not_moved_by_a_clock_step(sandbox, tmp_path, monkeypatch):
    # from the wall clock, a clock set back an hour during the check wrote '- wall time: -3600.0 s' in the report
    import time

    real, rows = time.time, world_check.task_rows

    def rows_then_clock_set_back(*args, **kwargs):
        monkeypatch.setattr(time, "time", lambda: real() - 3600)
        return rows(*args, **kwargs)

    monkeypatch.setattr(world_check, "task_rows", rows_then_clock_set_back)
    argv = ["--models", "worldclip-v2-a", "--max-items", "20", "--boot", "10", "--out", str(tmp_path / "quick")]
    assert world_check.main(argv) == 0
    md = (tmp_path / "quick" / "manipulation-check.md").read_text(encoding="utf-8")
    wall = float(re.search(r"- wall time: (\S+) s", md)[1])
    assert 0 <= wall < 60, f"wall time {wall} s"


def test_a_card_says_its_worlds_check_failed_and_what_that_means():
    from jobs.world2_card import card_text, check_paragraph

    rows = _rows("worldclip-v2-d", 1.0, 0).assign(classes=2, inter_modal=0.3)
    failed = card_text("worldclip-v2-d", rows, passed=False)
    assert "FAILED: world v2 cannot test the claim" in failed and "they do not test whether IIMM predicts" in failed
    assert "manipulation check" not in card_text("worldclip-v2-d", rows)  # not decided: nothing claimed
    assert "PASSED" in check_paragraph(True) and check_paragraph(None) == ""


@pytest.mark.parametrize("spec", __import__("core.models", fromlist=["WORLD_V2_MODELS"]).WORLD_V2_MODELS,
                         ids=lambda s: s.key)
def test_every_shipped_world_v2_card_gives_the_shipped_checks_verdict(spec):
    """The cards said the models exist to test the claim and never that the check failed (a reader of the
    Methods and models page took them for a test)."""
    from pathlib import Path

    from jobs.world2_card import card_path, check_paragraph

    report = (Path(world_check.__file__).resolve().parent / "results" / "world-v2" / "manipulation-check.md").read_text()
    passed = False if "**Verdict: FAILED" in report else True if "**Verdict: PASSED" in report else None
    assert passed is not None and check_paragraph(passed) in card_path(spec.key).read_text(encoding="utf-8")


@pytest.mark.parametrize("key", ["ViT-B-32", "CLIP"])
def test_a_model_without_shipped_weights_has_no_card_and_says_so(key):
    """card_path gave None (typed as a Path) and card_text a TypeError from ``ASSET_DIR / None`` for a model whose
    weights are not shipped; both now refuse it by name."""
    from jobs.world2_card import card_path, card_text

    with pytest.raises(ValueError, match=rf"{key!r} has no shipped weights, so no model card"):
        card_path(key)
    with pytest.raises(ValueError, match=rf"{key!r} has no shipped weights"):
        card_text(key, pd.DataFrame())


@pytest.mark.slow
def test_the_full_check_hands_its_verdict_to_the_cards_and_a_quick_look_the_shipped_one(sandbox, tmp_path):
    shipped, calls = sandbox
    assert world_check.main(["--cards"]) == 0  # the pre-registered run (on the fixture's fake rows)
    report = (shipped / "manipulation-check.md").read_text()
    verdict = False if "**Verdict: FAILED" in report else True if "**Verdict: PASSED" in report else None
    assert verdict is not None and calls["cards"] == [(key, verdict) for key, _ in calls["cards"]]
    assert len(calls["cards"]) == 4
    calls["cards"].clear()
    assert world_check.main(["--cards", "--boot", "10", "--out", str(tmp_path / "q")]) == 0
    assert calls["cards"] and {passed for _, passed in calls["cards"]} == {verdict}  # the shipped check's, not its own


def test_cards_rewritten_by_a_run_that_is_not_the_check_keep_the_shipped_checks_verdict(sandbox, tmp_path):
    """A --cards run of one model (after retraining it) or another --boot decides nothing, so it handed the cards no
    verdict: the rewritten shipped card lost the paragraph saying world v2's pre-registered check failed."""
    shipped, calls = sandbox
    assert "**Verdict: FAILED" in (shipped / "manipulation-check.md").read_text(encoding="utf-8")  # the real one
    assert world_check.main(["--cards", "--models", "worldsiglip-v2-b", "--boot", "10", "--out",
                             str(tmp_path / "q")]) == 0
    assert calls["cards"] == [("worldsiglip-v2-b", False)]
