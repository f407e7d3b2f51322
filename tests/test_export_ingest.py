"""jobs.export and jobs.ingest end to end, and the reader's tolerance of partial files."""
from __future__ import annotations

import io
import json
import logging
import re

import pandas as pd
import pytest

from core import store
from jobs import export, ingest
from tests.fixtures import make_fixture_records, write_fixture_store

REQUIRED = ["run_id", "model", "pretrained", "method", "dataset", "seed", "status", "zs_acc",
            "ft_acc", "id_gain", "norm_gain", "ood_change", "iimm", "source"]


@pytest.fixture()
def results(tmp_path):
    root = tmp_path / "results"
    write_fixture_store(root, n_datasets=3, methods=("full", "lora"), n_failed=1)
    return root


def test_export_csv_round_trip(results, capsysbinary):
    assert export.main(["--results", str(results), "--format", "csv"]) == 0
    out = pd.read_csv(io.BytesIO(capsysbinary.readouterr().out))
    runs = store.load_runs([results])
    assert list(out.columns[:len(REQUIRED)]) == REQUIRED and len(out) == len(runs) == 6
    merged = out.merge(runs, on="run_id", suffixes=("", "_store"))
    assert merged["id_gain"].equals(merged["id_gain_store"].astype(float))
    assert (out["status"] == "failed").sum() == 1


def test_export_parquet_round_trips_through_ingest(results, tmp_path, capsysbinary):
    assert export.main(["--results", str(results), "--format", "parquet"]) == 0
    data = capsysbinary.readouterr().out
    assert data[:4] == b"PAR1"
    (tmp_path / "export.parquet").write_bytes(data)
    report = store.ingest(tmp_path / "export.parquet", tmp_path / "copy")
    assert len(report.accepted) == 6 and not report.refused
    pd.testing.assert_frame_equal(store.load_runs([results]), store.load_runs([tmp_path / "copy"]))


def test_export_defaults_to_app_store_and_can_compact(results, tmp_path, monkeypatch, capsysbinary):
    shipped = tmp_path / "shipped"
    write_fixture_store(shipped, n_datasets=2, methods=("bitfit",))
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setenv(store.ENV_VAR, str(results))
    assert export.main(["--format", "csv", "--compact"]) == 0
    out = pd.read_csv(io.BytesIO(capsysbinary.readouterr().out))
    assert len(out) == 8 and set(out["method"]) == {"full", "lora", "bitfit"}
    assert not list(results.glob("*.json")) and len(list(results.glob("*.parquet"))) == 1
    assert len(list(shipped.glob("*.json"))) == 2  # the shipped store is not compacted by default


def test_an_export_to_a_file_says_which_file(results, tmp_path, capsysbinary):
    target = tmp_path / "sub" / "runs.csv"
    assert export.main(["--results", str(results), "-o", str(target)]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out == b"" and captured.err.decode().strip() == f"exported 6 runs as csv to {target}"
    assert len(pd.read_csv(target)) == 6


def test_compact_alone_does_not_print_the_store(results, capsysbinary):
    assert export.main(["--results", str(results), "--compact"]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out == b"" and b"compacted" in captured.err and b"exported" not in captured.err
    assert not list(results.glob("*.json")) and len(list(results.glob("*.parquet"))) == 1


def test_export_leaves_submitted_runs_and_local_paths_out_unless_asked(results, tmp_path, monkeypatch, capsysbinary):
    import pyarrow.parquet as pq

    submitted = tmp_path / "submitted"
    store.write_record({**make_fixture_records(n_datasets=1, methods=("bitfit",))[0], "run_id": "sub-1",
                        "source": store.SUBMITTED_SOURCE}, submitted)
    (results / "secret-name.json").write_text("{not json",
                                              encoding="utf-8")  # skipped by the loader, named with its path
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setenv(store.ENV_VAR, str(results))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(submitted))
    assert export.main(["--format", "parquet", "-o", str(tmp_path / "a.parquet")]) == 0
    table = pq.read_table(tmp_path / "a.parquet")
    assert "sub-1" not in table.column("run_id").to_pylist() and table.num_rows == 6  # as the app shows by default
    assert b"secret-name" not in b"".join(table.schema.metadata.values())  # was in PANDAS_ATTRS
    assert export.main(["--format", "csv", "--include-submitted"]) == 0
    assert "sub-1" in set(pd.read_csv(io.BytesIO(capsysbinary.readouterr().out))["run_id"])


def test_a_failed_export_never_leaves_a_cut_file_in_place(results, tmp_path, monkeypatch, capsys):
    import errno

    from core.store import records

    out = tmp_path / "runs.csv"
    assert export.main(["--results", str(results), "-o", str(out)]) == 0
    good = out.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records.os, "fsync", disk_full)
    assert export.main(["--results", str(results), "-o", str(out)]) == 1  # the work had begun: not exit 2
    assert "error: the job stopped after its work had begun: " in capsys.readouterr().err
    assert out.read_bytes() == good and [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
    monkeypatch.undo()
    assert export.main(["--results", str(results), "--compact", "-o", "/dev/null"]) == 2  # not a regular file
    assert "is not a regular file" in capsys.readouterr().err and list(results.glob("*.json"))  # nothing compacted


def test_export_missing_results_dir(tmp_path, capsys):
    assert export.main(["--results", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err


def test_ingest_is_idempotent_and_refuses_changed_duplicates(results, tmp_path, capsys):
    target = tmp_path / "mine"
    assert ingest.main([str(results), "--into", str(target)]) == 0
    assert "6 accepted, 0 refused" in capsys.readouterr().out
    assert ingest.main([str(results), "--into", str(target)]) == 0  # same content: a no-op
    assert "0 accepted, 6 already stored (unchanged), 0 refused" in capsys.readouterr().out
    changed = json.loads(next(results.glob("*.json")).read_text(encoding="utf-8"))
    changed["ft_acc"], changed["id_gain"], changed["norm_gain"] = 99.9, None, None
    (tmp_path / "changed.json").write_text(json.dumps(changed), encoding="utf-8")
    before = (target / f"{changed['run_id']}.json").read_bytes()
    assert ingest.main([str(tmp_path / "changed.json"), "--into", str(target)]) == 1
    captured = capsys.readouterr()
    assert "0 accepted, 1 refused" in captured.out and "different content" in captured.out
    assert "none of the 1 record(s)" in captured.err and "no valid record" not in captured.err  # it was valid
    assert (target / f"{changed['run_id']}.json").read_bytes() == before  # never overwritten


def test_ingest_jsonl_reports_each_problem(tmp_path):
    good = make_fixture_records(n_datasets=2, methods=("full",))
    bad = dict(good[0], run_id="bad-1", status="weird")
    lines = [json.dumps(good[0]), json.dumps(good[1]), json.dumps(good[0]), "{oops", json.dumps(bad), ""]
    (tmp_path / "in.jsonl").write_text("\n".join(lines), encoding="utf-8")
    report = store.ingest(tmp_path / "in.jsonl", tmp_path / "store")
    assert report.accepted == [good[0]["run_id"], good[1]["run_id"]]
    reasons = dict(report.refused)
    assert "repeats" in reasons[f"{tmp_path / 'in.jsonl'}:3"]
    assert "invalid JSON" in reasons[f"{tmp_path / 'in.jsonl'}:4"]
    assert "status" in reasons[f"{tmp_path / 'in.jsonl'}:5"]
    assert len(store.load_runs([tmp_path / "store"])) == 2


def test_a_folder_ingest_reads_a_jsonl_batch_over_a_records_size(tmp_path):
    batch = tmp_path / "in" / "batch.jsonl"
    batch.parent.mkdir()
    records = make_fixture_records(n_datasets=10, methods=("full", "lora", "bitfit"), seeds=tuple(range(40)))
    batch.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    assert batch.stat().st_size > store.MAX_RECORD_BYTES  # a batch, not one record
    report = store.ingest(batch.parent, tmp_path / "out")
    assert len(report.accepted) == len(records) and not report.refused  # was: refused as one oversized file


def test_ingest_bad_inputs_give_one_clear_message(tmp_path, capsys):
    assert ingest.main([str(tmp_path / "missing.json"), "--into", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    assert ingest.main([str(tmp_path / "notes.txt"), "--into", str(tmp_path / "s")]) == 2
    assert ".jsonl" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert ingest.main([str(tmp_path / "empty"), "--into", str(tmp_path / "s")]) == 2  # was 1: see jobs.cli
    assert f"error: no record in {tmp_path / 'empty'}: name a folder of" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # exit 2, nothing written: --into was made, with its marker and lock file


def test_load_runs_ignores_partial_and_corrupt_files(results, caplog):
    (results / ".tmp-abc123.json").write_text('{"run_id": "half-writ', encoding="utf-8")  # a writer mid-way
    (results / "corrupt.json").write_text('{"run_id": "x", ', encoding="utf-8")
    (results / "invalid.json").write_text(json.dumps({"run_id": "y", "status": "ok"}), encoding="utf-8")
    (results / "broken.parquet").write_bytes(b"PAR1 not really")
    with caplog.at_level(logging.WARNING, logger="core.store"):
        df = store.load_runs([results])
    assert len(df) == 6 and not {"x", "y"} & set(df["run_id"])
    logged = caplog.text
    assert "corrupt.json" in logged and "invalid.json" in logged and "broken.parquet" in logged
    assert ".tmp-abc123" not in logged  # temp files are not even looked at


def test_bench_store_runs_small(capsys):
    from jobs import bench_store

    assert bench_store.main(["--runs", "40", "--json-files", "3"]) == 0
    out = capsys.readouterr().out
    assert "built 40 runs" in out and "load_runs (cold)" in out and "(43 rows)" in out
    assert bench_store.main(["--runs", "0"]) == 2


def test_export_compact_refuses_a_default_store_that_is_not_a_results_folder(tmp_path, monkeypatch, capsys):
    tree = tmp_path / "project"  # IIMM_RESULTS pointed at a source tree by mistake
    write_fixture_store(tree / "jobs" / "results", n_datasets=2, methods=("full",))
    (tree / "setup.py").write_text("# not a record\n", encoding="utf-8")
    monkeypatch.setenv(store.ENV_VAR, str(tree))
    before = sorted(tree.rglob("*.json"))
    assert export.main(["--compact", "--format", "csv"]) == 2
    assert "not compacting" in capsys.readouterr().err and sorted(tree.rglob("*.json")) == before
    with pytest.raises(ValueError, match="does not look like a results folder"):
        store.compact(tree)
    assert sorted(tree.rglob("*.json")) == before


@pytest.mark.parametrize("bad", ["missing-results", "output-under-a-file"])
def test_export_checks_every_option_before_compacting_anything(results, tmp_path, capsys, bad):
    # an output's missing folder is made now, as in every job (jobs.cli): a file in its way is refused instead
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    extra = (["--results", str(tmp_path / "nope")] if bad == "missing-results"
             else ["-o", str(tmp_path / "a-file" / "out.csv")])
    before = sorted(results.glob("*.json"))
    assert export.main(["--results", str(results), "--compact", *extra]) == 2
    assert sorted(results.glob("*.json")) == before and not list(results.glob("*.parquet"))
    assert "error:" in capsys.readouterr().err


def test_run_ids_differing_only_in_case_are_refused_as_one_file_on_macos_and_windows(tmp_path):
    """On a case-insensitive file system 'Run-1.json' and 'run-1.json' are one file: the second overwrote the
    first while the report said both were accepted."""
    first, second, third = make_fixture_records(n_datasets=3, methods=("full",))[:3]
    lines = [json.dumps(dict(first, run_id="Run-1")), json.dumps(dict(second, run_id="run-1")),
             json.dumps(dict(third, run_id="run-3"))]
    (tmp_path / "in.jsonl").write_text("\n".join(lines), encoding="utf-8")
    report = store.ingest(tmp_path / "in.jsonl", tmp_path / "store")
    assert report.accepted == ["Run-1", "run-3"]
    [(where, why)] = report.refused
    assert where.endswith(":2") and re.search(r"'run-1' differs only in case from 'Run-1' \(.*:1\): on macOS", why)
    (tmp_path / "more.jsonl").write_text(json.dumps(dict(third, run_id="RUN-3")), encoding="utf-8")
    later = store.ingest(tmp_path / "more.jsonl", tmp_path / "store")  # against a run already stored
    assert later.accepted == [] and "differs only in case from the stored run 'run-3'" in later.refused[0][1]
    assert sorted(store.load_runs([tmp_path / "store"])["run_id"]) == ["Run-1", "run-3"]


@pytest.mark.parametrize("run_id", ["nul", "CON", "com1.a", "Lpt9"])
def test_a_run_id_windows_keeps_for_a_device_is_refused(tmp_path, run_id):
    """'nul.json' and its kin cannot be written or copied on Windows: a store holding one could not be cloned there."""
    record = dict(make_fixture_records(n_datasets=2, methods=("full",))[0], run_id=run_id)
    (tmp_path / "in.jsonl").write_text(json.dumps(record) + "\n" + json.dumps(dict(record, run_id="nullable")),
                                       encoding="utf-8")
    report = store.ingest(tmp_path / "in.jsonl", tmp_path / "store")
    assert report.accepted == ["nullable"]
    assert re.search(rf"run_id '{re.escape(run_id)}' names a device on Windows", report.refused[0][1])


def test_a_parquet_file_that_unpacks_past_a_record_a_row_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """A 31 KB zstd file of one 1 GB text cell took ingest to a 4 GB peak before its row was refused: the row
    groups' own sizes now refuse it unread (here 3 MiB in one row, past the 1 MiB a record may take)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    bomb = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"run_id": ["a"], "error": ["x" * (3 << 20)]}), bomb, compression="zstd")
    assert bomb.stat().st_size < 64 << 10  # small on disk

    def never(*args, **kwargs):
        raise AssertionError("the table was read")

    monkeypatch.setattr(pq, "read_table", never)
    report = store.ingest(bomb, tmp_path / "store")
    assert not report.accepted and [where for where, _ in report.refused] == [str(bomb)]
    assert re.fullmatch(r"row group 0 unpacks to 3,1\d\d,\d{3} bytes for 1 row\(s\): more than 1,048,576 bytes a row, "
                        r"the most a record may take", report.refused[0][1])


def test_a_parquet_row_just_past_a_record_says_by_how_much(tmp_path):
    """1.3 MiB in one row was refused as 'unpacks to 1 MiB for 1 rows; a record is at most 1 MiB': a figure
    rounded to the limit it broke. Now in bytes, as a record file's size is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"run_id": ["a"], "error": ["x" * int(1.3 * 2**20)]}), path, compression="zstd")
    (reason,) = [reason for _, reason in store.ingest(path, tmp_path / "store").refused]
    size = pq.ParquetFile(path).metadata.row_group(0).total_byte_size
    assert 1.3 * 2**20 < size < 1.31 * 2**20
    assert reason == (f"row group 0 unpacks to {size:,} bytes for 1 row(s): more than 1,048,576 bytes a row, the most "
                      "a record may take")


def test_a_parquet_file_refused_by_its_own_sizes_is_not_called_unreadable(tmp_path, monkeypatch):
    """The row-group size and row-count checks ran inside the read's except ValueError, and RecordError is a
    ValueError: a readable file of too many rows was refused as 'unreadable parquet: holds 3 rows...'."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import importlib

    ingest_module = importlib.import_module("core.store.ingest")
    path = tmp_path / "many.parquet"
    pq.write_table(pa.table({"run_id": ["a", "b", "c"]}), path)
    monkeypatch.setattr(ingest_module, "MAX_INPUT_RECORDS", 2)
    report = store.ingest(path, tmp_path / "store")
    assert [reason for _, reason in report.refused] == ["holds 3 rows; the limit is 2"]
    damaged = tmp_path / "cut.parquet"
    damaged.write_bytes(path.read_bytes()[:-20])  # a damaged file is still called unreadable
    assert store.ingest(damaged, tmp_path / "store").refused[0][1].startswith("unreadable parquet: ")
