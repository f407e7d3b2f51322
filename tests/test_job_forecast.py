"""``python -m jobs.forecast``: the Forecast page's forecast from the command line, on the fixture store."""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from core import store
from jobs import forecast as job
from tests.app_helpers import embeddings_npz, page, sample_zip, trained_toy_store
from tests.fixtures import make_fixture_records


def _strict_json(text: str) -> dict:
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def _page_forecast(name: str, data: bytes):
    """The Forecast page run on an upload of ``data`` named ``name``: the page and its per-method rows by method."""
    from core import advice

    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value((name, data, "application/octet-stream")).run()
    at.button(key="fc_run").click().run()
    assert not at.exception and not at.error
    return at, advice.forecast_rows(at.session_state["fc_result"][1]).set_index("method")


def _same_verdict(at, printed: str) -> list[str]:
    """The page's verdict (its confidence) and warnings, unescaped, are the job's printed ones; the warnings."""
    said = [element.value.replace("\\", "") for element in (*at.success, *at.info, *at.warning)]
    (box,) = [text for text in said if text.startswith("**Confidence: ")]  # the verdict, its confidence in bold
    assert f"{box.split('**')[1]} " in printed  # 'Confidence: weak. '
    warned = [text for text in (w.value.replace("\\", "") for w in at.warning) if not text.startswith("**")]
    assert warned and [line for line in printed.splitlines() if line.startswith("warning: ")] == [
        f"warning: {text}" for text in warned]  # the verdict's warnings, as the page gives them
    return warned


@pytest.mark.slow
def test_the_job_gives_the_numbers_the_page_gives_for_the_same_sample(fixture_store, tmp_path, capsys):
    """Same sample, model and template: the page (its pooled, seed-0 random network) and the job agree on every
    method's predictions and intervals, and the job says the model is untrained."""
    data = sample_zip()
    at, shown = _page_forecast("sample.zip", data)

    (tmp_path / "sample.zip").write_bytes(data)
    out = tmp_path / "out" / "forecast.csv"
    assert job.main([str(tmp_path / "sample.zip"), "--model", "worldclip-tiny-random", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "RANDOM WEIGHTS" in printed and "Predicted outcome per method" in printed
    written = pd.read_csv(out).set_index("method")
    assert set(written.index) == set(shown.index) and written["random_weights"].all()
    for column in ("id_gain", "id_gain_lo", "id_gain_hi", "ood_change", "ood_change_lo", "ood_change_hi"):
        assert np.allclose(written.loc[shown.index, column], shown[column], rtol=0, atol=1e-9), column
    _same_verdict(at, printed)
    for method in shown.index:  # each method's line, with its gain as the page's table rounds it
        title = shown.loc[method, "method_title"]
        line = next(line for line in printed.splitlines() if line.strip().startswith(title))
        assert f"{shown.loc[method, 'id_gain']:+.1f}" in line, line


def test_a_trained_toy_models_forecast_says_what_the_page_says(tmp_path, monkeypatch, capsys):
    """The same .npz on a trained model (worldclip-tiny): the page's verdict and warnings (its toy-model warning
    included) and numbers are the job's; the comparison above, on an untrained model, could not see the toy flag."""
    trained_toy_store(monkeypatch, tmp_path)
    data = embeddings_npz()
    at, shown = _page_forecast("emb.npz", data)
    (tmp_path / "emb.npz").write_bytes(data)
    assert job.main([str(tmp_path / "emb.npz"), "--model", "worldclip-tiny", "--out", str(tmp_path / "f.csv")]) == 0
    printed = capsys.readouterr().out
    assert "RANDOM WEIGHTS" not in printed and any("toy model" in w for w in _same_verdict(at, printed))
    written = pd.read_csv(tmp_path / "f.csv").set_index("method")
    assert np.allclose(written.loc[shown.index, "id_gain"], shown["id_gain"], rtol=0, atol=1e-9)


@pytest.mark.slow
def test_an_npz_forecast_writes_strict_json_with_its_provenance(fixture_store, tmp_path):
    sample = tmp_path / "emb.npz"
    sample.write_bytes(embeddings_npz())
    out = tmp_path / "f.json"
    assert job.main([str(sample), "--model", "worldclip-tiny-random", "--out", str(out)]) == 0
    written = _strict_json(out.read_text(encoding="utf-8"))  # NaN written as null, never as a bare NaN
    prov, (doc,) = written["provenance"], written["forecasts"]
    assert doc["sample_sha256"] == hashlib.sha256(sample.read_bytes()).hexdigest() and written["refused"] == []
    assert prov["model_key"] == "worldclip-tiny-random" and prov["template"] is None
    assert prov["reference_runs"] == len(store.verified_runs(store.load_runs(store.default_roots())))
    assert "torch" in prov["versions"] and prov["git_revision"]
    assert doc["n_images"] == 30 and doc["enough_runs"] and doc["verdict"]["confidence"] in {"weak", "moderate", "good"}
    runs = store.load_runs(store.default_roots())
    assert {m["method"] for m in doc["methods"]} == set(runs.loc[runs["status"] == "ok", "method"]) - {"zero_shot"}
    chosen = pd.DataFrame(doc["selection"])  # how each forecast was chosen, with the coverage columns
    assert {"method", "outcome", "predictors", "prediction", "lo", "hi", "coverage"} <= set(chosen.columns)
    assert set(chosen["method"]) == {m["method"] for m in doc["methods"]} and (chosen["status"] == "ok").any()
    assert chosen.loc[chosen["status"] == "ok", "prediction"].notna().all()
    from core.forecast_select import DEFAULT_RULE
    assert (chosen["rule"] == DEFAULT_RULE).all()  # the rule its coverage is measured under, as the page says


def test_by_default_the_store_is_read_as_the_page_reads_it_without_unverified_submissions(
        fixture_store, tmp_path, monkeypatch):
    """The page fits on the store less unverified submissions: a submitted method must not be forecast, and the
    provenance counts the runs used (the fixture store had no submission, so leaving the filter out passed)."""
    submitted = tmp_path / "submitted"
    for record in make_fixture_records(pretrained="random", methods=("clip_adapter",)):
        store.write_record(dict(record, source=store.SUBMITTED_SOURCE), submitted)
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(submitted))
    sample, out = tmp_path / "emb.npz", tmp_path / "f.json"
    sample.write_bytes(embeddings_npz())
    assert job.main([str(sample), "--model", "worldclip-tiny-random", "--out", str(out)]) == 0
    written = _strict_json(out.read_text(encoding="utf-8"))
    every = store.load_runs(store.default_roots())
    assert store.submitted_count(every) == 6 and str(submitted) in written["provenance"]["reference_roots"]
    assert written["provenance"]["reference_runs"] == len(every) - 6
    assert "clip_adapter" not in {m["method"] for m in written["forecasts"][0]["methods"]}


def test_a_trained_models_forecast_on_random_weight_runs_is_labelled_as_on_the_page(tmp_path, monkeypatch, capsys):
    """The page labels a forecast whose reference runs record random weights (the model itself trained); the job's
    RANDOM WEIGHTS line and CSV column were tested only with an untrained model, where both flags hold."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(tmp_path / "submitted"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    for record in make_fixture_records(n_datasets=8, pretrained="world-v1", noise=0.5):
        store.write_record(dict(record, random_weights=True), tmp_path / "results")
    sample, out = tmp_path / "emb.npz", tmp_path / "f.csv"
    sample.write_bytes(embeddings_npz())
    assert job.main([str(sample), "--model", "worldclip-tiny", "--out", str(out)]) == 0
    assert "RANDOM WEIGHTS: its reference runs are an untrained network's" in capsys.readouterr().out
    assert pd.read_csv(out)["random_weights"].all()


@pytest.mark.slow
def test_several_samples_get_one_forecast_each_and_a_refused_one_does_not_stop_the_others(
        fixture_store, tmp_path, capsys):
    """One model load for the batch; a sample that cannot be used is named on stderr, the others are forecast and
    written, and the exit is 1 (ran, and part of it failed)."""
    (tmp_path / "a.zip").write_bytes(sample_zip())
    (tmp_path / "b.npz").write_bytes(embeddings_npz())
    (tmp_path / "bad.zip").write_bytes(b"this is not a zip at all")
    out = tmp_path / "all.csv"
    argv = [str(tmp_path / n) for n in ("a.zip", "bad.zip", "b.npz")]
    assert job.main([*argv, "--model", "worldclip-tiny-random", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("Predicted outcome per method") == 2
    assert captured.out.count("\n\n") == 1  # one blank line between the two forecasts
    assert job.main([*argv[1:], "--model", "worldclip-tiny-random"]) == 1  # the refused sample first
    assert capsys.readouterr().out.startswith("b.npz: ")  # not with a blank line, as if a forecast came before
    assert f"error: {tmp_path / 'bad.zip'}:" in captured.err
    table = pd.read_csv(out)
    assert list(table.columns[:1]) == ["sample"] and set(table["sample"]) == {argv[0], argv[2]}
    assert len(table) == 2 * table["method"].nunique()
    assert job.main([*argv[:1], "--model", "worldclip-tiny-random", "--out", str(tmp_path / "all.json")]) == 0
    doc = _strict_json((tmp_path / "all.json").read_text(encoding="utf-8"))
    assert [f["sample"] for f in doc["forecasts"]] == argv[:1] and doc["provenance"]["template"] == "a photo of a {c}"


def test_a_model_without_reference_runs_prints_its_measures_and_the_grid_command_and_exits_3(
        fixture_store, tmp_path, capsys):
    sample = tmp_path / "emb.npz"
    sample.write_bytes(embeddings_npz())
    assert job.main([str(sample), "--model", "worldclip-tiny", "--out", str(tmp_path / "f.json")]) == 3
    printed = capsys.readouterr().out  # (the fixture store holds the random model only)
    assert "IIMM" in printed and "make them with: python -m jobs.grid" in printed
    # the page's warnings hold without a forecast (a toy model, here), and the page shows them: so does the job
    assert "warning: worldclip-tiny (world-v1) is a toy model" in printed and "Confidence:" not in printed
    (written,) = _strict_json((tmp_path / "f.json").read_text(encoding="utf-8"))["forecasts"]
    assert list(written["verdict"]) == ["warnings"] and any("toy model" in w for w in written["verdict"]["warnings"])


def test_with_results_folders_named_the_job_says_to_add_the_grids_folder_to_them(fixture_store, tmp_path, capsys):
    """Forecast against one's own --results folder: the job said 'make them with: python -m jobs.grid … --results
    results/default' and nothing more, so a user who ran it and then the same forecast got exit 3 again."""
    sample = tmp_path / "emb.npz"
    sample.write_bytes(embeddings_npz())
    assert job.main([str(sample), "--model", "worldclip-tiny", "--results", str(fixture_store)]) == 3
    printed = capsys.readouterr().out
    assert "make them with: python -m jobs.grid jobs/configs/default.toml --results results/default" in printed
    assert (f"then add --results results/default to this command: it reads only the --results folders it is "
            f"given ({fixture_store})") in printed


@pytest.mark.parametrize("name, argv, message", [
    ("folder", [], "folder: the folder holds no file"),  # then 'no sample could be used' 
    ("missing.zip", [], "does not exist"),
    ("notes.txt", [], "neither a .zip of labelled images nor an .npz"),
    ("emb.npz", ["--template", "a {c}"], "--template applies to an image sample"),
    ("emb.npz", ["--out", "{tmp}/f.txt"], "name a .csv or .json file"),
    ("a.zip", ["{tmp}/emb.npz", "--template", "a photo", "--out", "{tmp}/f.csv"],
     "--template 'a photo': the prompt template must contain '{c}'"),
    ("emb.npz", ["--out", "{tmp}/dir.json"], "is a folder: name a file"),
    ("emb.npz", ["--model", "no-such-model"], "unknown model 'no-such-model'"),
    ("emb.npz", ["--results", "{tmp}/empty"], "no runs in"),
    ("emb.npz", ["--results", "{tmp}/nowhere"], "nowhere"),
    ("emb.npz", ["--out", "{tmp}/notes.txt/sub/f.csv"], "notes.txt is a file, not a folder"),
    ("emb.npz", ["--device", "cuda:7"], "--device 'cuda:7' is not on this host"),
    ("bad.zip", [], "no sample could be used"),
])
def test_an_unusable_sample_or_option_is_one_line_exit_2_and_writes_nothing(
        fixture_store, tmp_path, capsys, name, argv, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    (tmp_path / "emb.npz").write_bytes(embeddings_npz())
    (tmp_path / "bad.zip").write_bytes(b"this is not a zip at all")
    (tmp_path / "a.zip").write_bytes(sample_zip())
    (tmp_path / "empty").mkdir()
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "empty" / ".iimm-results").write_text("", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert job.main([str(tmp_path / name), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message.lower() in err.lower() and "Traceback" not in err
    assert err.count("error: ") == (2 if name in ("bad.zip", "folder") else 1)  # a bad --template was blamed on each zip
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_printed_rows_write_missing_values_as_a_dash_and_notes_without_a_trailing_separator():
    rows = pd.DataFrame({"method_title": ["A", "B"], "id_gain": [1.04, np.nan], "id_gain_lo": [-0.04, np.nan],
                         "id_gain_hi": [2.0, np.nan], "ood_change": [-0.04, np.nan], "ood_change_lo": [-1.0, np.nan],
                         "ood_change_hi": [1.0, np.nan], "gain_basis": ["IIMM", ""], "gain_lodo": [2.0, np.nan],
                         "n_datasets": [6, 0], "extrapolation": [True, False], "status": ["ok", "too few datasets"]})
    shown = job.printed_rows(rows)
    assert list(shown["gain"]) == ["+1.0", "—"] and list(shown["OOD change"]) == ["+0.0", "—"]
    assert list(shown["LODO error"]) == ["2.0", "—"]
    assert list(shown["note"]) == ["extrapolates", "too few datasets"]


def test_a_folder_is_forecast_as_its_zip_would_be(fixture_store, tmp_path, capsys):
    import zipfile

    data = sample_zip()
    (tmp_path / "sample.zip").write_bytes(data)
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path / "folder")
    outs = {}
    for name in ("sample.zip", "folder"):
        outs[name] = tmp_path / f"{name}.json"
        assert job.main([str(tmp_path / name), "--model", "worldclip-tiny-random", "--out", str(outs[name])]) == 0
    (zipped,), (folder,) = (_strict_json(outs[n].read_text(encoding="utf-8"))["forecasts"] for n in ("sample.zip", "folder"))
    assert folder["methods"] == zipped["methods"] and folder["iimm"] == zipped["iimm"]
    from core.upload import DEFAULT_LIMITS, folder_as_zip

    assert folder["sample_sha256"] == hashlib.sha256(
        folder_as_zip(tmp_path / "folder", limits=DEFAULT_LIMITS).getvalue()).hexdigest()


def test_folder_as_zip_is_deterministic_leaves_links_out_and_stops_at_the_caps(tmp_path):
    import dataclasses
    import os
    import zipfile

    from core.upload import DEFAULT_LIMITS, UploadError, folder_as_zip

    (tmp_path / "f" / "b").mkdir(parents=True)
    (tmp_path / "f" / "b" / "2.png").write_bytes(b"two")
    (tmp_path / "f" / "a.png").write_bytes(b"one")
    os.symlink(tmp_path / "f" / "a.png", tmp_path / "f" / "link.png")
    first = folder_as_zip(tmp_path / "f", limits=DEFAULT_LIMITS).getvalue()
    os.utime(tmp_path / "f" / "a.png", (0, 0))  # another date on disk: the same bytes
    assert folder_as_zip(tmp_path / "f", limits=DEFAULT_LIMITS).getvalue() == first
    assert zipfile.ZipFile(io.BytesIO(first)).namelist() == ["a.png", "b/2.png"]
    with pytest.raises(UploadError, match="more than 1 files"):
        folder_as_zip(tmp_path / "f", limits=dataclasses.replace(DEFAULT_LIMITS, max_members=1))
    with pytest.raises(UploadError, match=r"more than 3.8147e-06 MiB"):
        folder_as_zip(tmp_path / "f", limits=dataclasses.replace(DEFAULT_LIMITS, max_archive_bytes=4))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UploadError, match="holds no file") as refused:
        folder_as_zip(tmp_path / "empty", limits=DEFAULT_LIMITS)
    assert str(tmp_path) not in str(refused.value)  # the caller names the sample: 'error: PATH: the folder ...'
    with pytest.raises(UploadError, match="is not a folder"):
        folder_as_zip(tmp_path / "f" / "a.png", limits=DEFAULT_LIMITS)


def test_an_unreadable_sample_is_refused_as_a_sample_and_the_others_still_forecast(fixture_store, tmp_path, capsys,
                                                                                  monkeypatch):
    """Reading a sample happens after the job's checks: an unreadable file (permissions) was a system error that
    stopped the whole job (exit 1, 'stopped after its work had begun'); it is now that sample's refusal."""
    from pathlib import Path

    (tmp_path / "a.npz").write_bytes(embeddings_npz())
    (tmp_path / "locked.npz").write_bytes(embeddings_npz())
    real = Path.read_bytes

    def read_bytes(path):
        if path.name == "locked.npz":
            raise PermissionError(13, "Permission denied")
        return real(path)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    argv = [str(tmp_path / "locked.npz"), str(tmp_path / "a.npz"), "--model", "worldclip-tiny-random"]
    assert job.main(argv) == 1
    captured = capsys.readouterr()
    assert f"error: {tmp_path / 'locked.npz'}: cannot be read (Permission denied)" in captured.err
    assert captured.out.count("Predicted outcome per method") == 1


def test_a_model_that_cannot_load_refuses_the_image_samples_and_keeps_the_npz_forecasts(fixture_store, tmp_path,
                                                                                     capsys, monkeypatch):
    """A batch of an .npz and a zip with a model whose weights are not here: the .npz forecast was printed, then the
    model's error ended the job with exit 2 and no --out. The zip is now refused (tried once), the .npz written."""
    import core.models

    def unavailable(key, **kwargs):
        tries.append(key)
        raise core.models.ModelUnavailableError("weights not available offline")
    tries: list[str] = []
    monkeypatch.setattr(core.models, "load_model", unavailable)
    (tmp_path / "a.npz").write_bytes(embeddings_npz())
    for name in ("b.zip", "c.zip"):
        (tmp_path / name).write_bytes(sample_zip())
    out = tmp_path / "f.json"
    argv = [str(tmp_path / n) for n in ("a.npz", "b.zip", "c.zip")]
    assert job.main([*argv, "--model", "worldclip-tiny-random", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("needs the model to embed its images: weights not available offline") == 2 and len(tries) == 1
    written = _strict_json(out.read_text(encoding="utf-8"))
    assert [f["sample"] for f in written["forecasts"]] == argv[:1] and len(written["refused"]) == 2


def test_folder_as_zip_names_what_it_cannot_read_and_leaves_it_out(tmp_path, monkeypatch, caplog):
    """A file or subfolder that cannot be read was either the whole sample's refusal (a file) or dropped without a
    word (os.walk skips a subfolder it cannot list): both are now left out and named in one warning."""
    import os
    import zipfile
    from pathlib import Path

    from core.upload import DEFAULT_LIMITS, UploadError, folder_as_zip

    (tmp_path / "f" / "locked").mkdir(parents=True)
    for name in ("a.png", "b.png", "locked/c.png"):
        (tmp_path / "f" / name).write_bytes(b"x")
    real_read, real_scandir = Path.read_bytes, os.scandir

    def read_bytes(path):
        if path.name == "b.png":
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    def scandir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level("WARNING", logger="core.upload"):
        archive = folder_as_zip(tmp_path / "f", limits=DEFAULT_LIMITS)
    assert zipfile.ZipFile(archive).namelist() == ["a.png"]
    (said,) = [r.getMessage() for r in caplog.records]
    assert "left out 2" in said and "b.png (Permission denied)" in said and "locked/ (Permission denied)" in said
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "b.png").write_bytes(b"x")
    with pytest.raises(UploadError, match="holds no file that can be read"):
        folder_as_zip(tmp_path / "g", limits=DEFAULT_LIMITS)


def _repeating_npz() -> bytes:
    """The 30-row .npz upload with its row 5 repeated as row 6 (under another class): the page says so under it."""
    arrays = dict(np.load(io.BytesIO(embeddings_npz())))
    arrays["image_embeddings"][6] = arrays["image_embeddings"][5]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _duplicating_zip() -> bytes:
    """The image sample with one file repeated byte for byte under its own class."""
    import zipfile

    buf = io.BytesIO(sample_zip())
    with zipfile.ZipFile(buf) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("red/copy.png", members["red/000.png"])
    return out.getvalue()


@pytest.mark.parametrize("name, data, said", [
    ("emb.npz", _repeating_npz, "1 image embedding(s) repeat an earlier row exactly, 1 of them under another class"),
    ("sample.zip", _duplicating_zip, "1 image(s) repeat an earlier file byte for byte")])
def test_the_uploads_warnings_travel_with_the_written_forecast(fixture_store, tmp_path, name, data, said):
    """The page shows an upload's warnings (repeated images, which IIMM's image-image term counts as identical pairs)
    under it, and the job on stderr; a saved forecast read without either kept none of them: the JSON now has them
    per sample (``upload_warnings``), the CSV in a column of each row, after the columns it had."""
    sample = tmp_path / name
    sample.write_bytes(data())
    for suffix in ("json", "csv"):
        assert job.main([str(sample), "--model", "worldclip-tiny-random", "--out", str(tmp_path / f"f.{suffix}")]) == 0
    (doc,) = _strict_json((tmp_path / "f.json").read_text(encoding="utf-8"))["forecasts"]
    assert doc["upload_warnings"] == [said]
    written = pd.read_csv(tmp_path / "f.csv", keep_default_na=False)
    columns = list(written.columns)
    assert (written["upload_warnings"] == said).all() and columns.index("upload_warnings") > columns.index("not_checked")
    assert list(written.columns)[:2] == ["sample", "method"]


def test_a_clean_uploads_written_forecast_says_it_has_no_warnings(fixture_store, tmp_path):
    sample = tmp_path / "emb.npz"
    sample.write_bytes(embeddings_npz())
    assert job.main([str(sample), "--model", "worldclip-tiny-random", "--out", str(tmp_path / "f.json")]) == 0
    (doc,) = _strict_json((tmp_path / "f.json").read_text(encoding="utf-8"))["forecasts"]
    assert doc["upload_warnings"] == []


def test_the_written_csv_keeps_the_verdicts_warnings_and_the_forecasts_notes(tmp_path, monkeypatch):
    """A trained toy model's forecast: the page and the printout warn it is a toy and note the baselines left out of
    the choice; the CSV (one row per method) said neither. Its last two columns now hold them, as the JSON does."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(tmp_path / "submitted"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    for record in make_fixture_records(n_datasets=8, pretrained="world-v1", noise=0.5):
        store.write_record(record, tmp_path / "results")
    (tmp_path / "emb.npz").write_bytes(embeddings_npz())
    for suffix in ("csv", "json"):
        out = tmp_path / f"f.{suffix}"
        assert job.main([str(tmp_path / "emb.npz"), "--model", "worldclip-tiny", "--out", str(out)]) == 0
    (doc,) = _strict_json((tmp_path / "f.json").read_text(encoding="utf-8"))["forecasts"]
    written = pd.read_csv(tmp_path / "f.csv", keep_default_na=False)
    assert list(written.columns)[-2:] == ["warnings", "notes"]
    assert any("toy model" in w for w in doc["verdict"]["warnings"]) and doc["notes"]
    assert (written["warnings"] == " | ".join(doc["verdict"]["warnings"])).all()
    assert (written["notes"] == " | ".join(doc["notes"])).all()
