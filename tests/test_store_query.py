"""core.store: parameterised queries over the loaded runs, run details, model metadata and exports."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core import store
from tests.fixtures import make_fixture_records, write_fixture_store


@pytest.fixture()
def runs(tmp_path):
    write_fixture_store(tmp_path, n_datasets=4, methods=("full", "bitfit", "lora"), n_failed=1)
    return store.load_runs([tmp_path])


def test_query_filters_search_sort_limit(runs):
    out = store.query_runs(runs, filters={"method": ["lora", "full"], "status": ["ok"]})
    assert set(out["method"]) == {"lora", "full"} and len(out) == 7
    assert len(store.query_runs(runs, filters={"method": []})) == len(runs)  # empty = no filter
    assert set(store.query_runs(runs, search="  BITF ")["method"]) == {"bitfit"}
    top = store.query_runs(runs, sort_by="id_gain", limit=3)
    assert list(top["id_gain"]) == sorted(runs["id_gain"].dropna(), reverse=True)[:3]
    last = store.query_runs(runs, sort_by="id_gain", descending=False)
    assert pd.isna(last["id_gain"].iloc[-1])  # the failed run's null sorts last
    assert len(store.query_runs(runs, limit=0)) == 0


def test_sorting_by_date_orders_moments_not_text(tmp_path):
    """created_at carries any UTC offset: sorted as text, 10:00+05:00 (05:00 UTC) came out newest."""
    a, b, c = make_fixture_records(n_datasets=3, methods=("lora",))
    for rec, at in ((a, "2025-01-01T10:00:00+05:00"), (b, "2025-01-01T06:00:00+00:00"), (c, "2025-01-01T07:00:00Z")):
        store.write_record(dict(rec, created_at=at), tmp_path)
    runs = store.load_runs([tmp_path])
    newest_first = store.query_runs(runs, sort_by="created_at")["run_id"].tolist()
    assert newest_first == [c["run_id"], b["run_id"], a["run_id"]]
    assert store.query_runs(runs, sort_by="created_at", descending=False)["run_id"].tolist() == newest_first[::-1]


def test_query_treats_user_text_as_data(runs):
    assert store.query_runs(runs, filters={"method": ["x' OR 1=1 --"]}).empty
    assert store.query_runs(runs, search="%").empty  # not a LIKE wildcard
    assert store.query_runs(runs, search="'; DROP TABLE runs; --").empty


@pytest.mark.parametrize("kwargs, match", [
    ({"filters": {"error": ["x"]}}, "unknown filter"),
    ({"sort_by": "id_gain; DROP"}, "cannot sort"),
    ({"sort_by": "config"}, "cannot sort"),
    ({"limit": -1}, "limit"),
])
def test_query_rejects_bad_arguments(runs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        store.query_runs(runs, **kwargs)


def test_run_details_parses_nested_fields(runs):
    run_id = runs["run_id"].iloc[0]
    details = store.run_details(runs, run_id)
    assert details["command"] == f"python -m jobs.grid --only {run_id}"
    assert details["config"]["method"] == details["method"]
    table = {row["set"]: row for row in details["ood_table"]}
    assert set(table) == {"ood-a", "ood-b"}
    assert table["ood-a"]["change"] == pytest.approx(details["ood_change"])
    with pytest.raises(KeyError, match="no run"):
        store.run_details(runs, "missing")


def test_model_metadata_from_provenance(runs):
    meta = store.model_metadata(runs)
    assert len(meta) == 1
    row = meta.iloc[0]
    assert (row["model"], row["total_params"], row["embed_dim"]) == ("worldclip-tiny", 1_000_000, 128)
    assert row["weights_source"] == "synthetic" and not row["random_weights"] and row["n_runs"] == 12


def test_csv_neutralises_formulas_and_parquet_round_trips(runs):
    df = pd.DataFrame({"text": ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "plain"],
                       "num": [-1.5, 2.0, 3.0, 4.0, 5.0]})
    back = pd.read_csv(io.BytesIO(store.to_csv_bytes(df)))
    assert list(back["text"]) == ["'=HYPERLINK(\"x\")", "'+1", "'-2", "'@SUM(A1)", "plain"]
    assert list(back["num"]) == [-1.5, 2.0, 3.0, 4.0, 5.0]
    again = pd.read_parquet(io.BytesIO(store.to_parquet_bytes(runs)))
    assert list(again["run_id"]) == list(runs["run_id"])


def test_query_without_arguments_is_identity_and_handles_empty(runs):
    pd.testing.assert_frame_equal(store.query_runs(runs), runs)
    shuffled = runs.sample(frac=1.0, random_state=0)
    assert list(store.query_runs(shuffled, sort_by="seed")["run_id"]) == list(
        store.query_runs(runs, sort_by="seed")["run_id"])  # input order does not change a sort
    empty = store.query_runs(runs.iloc[0:0], filters={"model": ["m"]}, search="x", sort_by="iimm")
    assert empty.empty and list(empty.columns) == list(runs.columns)


def test_model_metadata_reads_the_newest_runs_provenance():
    """Weights re-described by later runs (a new weights_source, another size): the newest run's words win."""
    records = make_fixture_records(n_datasets=3, methods=("full",))  # created_at one second apart, in order
    records[-1]["provenance"] = dict(records[-1]["provenance"], weights_source="retrained", total_params=2_000_000)
    shuffled = store.records_to_frame(records).iloc[[2, 0, 1]]
    row = store.model_metadata(shuffled).iloc[0]
    assert (row["weights_source"], row["total_params"], row["embed_dim"], row["n_runs"]) == (
        "retrained", 2_000_000, 128, 3)


def test_model_metadata_takes_the_newest_run_by_the_moment_not_the_text():
    """Runs recorded on hosts in other time zones: '…T16:00:00+05:30' (10:30 UTC) sorted after
    '…T11:00:00+00:00' as text, so the older run's words won."""
    records = make_fixture_records(n_datasets=2, methods=("full",))
    records[0].update(created_at="2026-12-06T11:00:00+00:00")
    records[0]["provenance"] = dict(records[0]["provenance"], weights_source="retrained")
    records[1].update(created_at="2026-12-06T16:00:00+05:30")
    records[1]["provenance"] = dict(records[1]["provenance"], weights_source="first")
    row = store.model_metadata(store.records_to_frame(records)).iloc[0]
    assert row["weights_source"] == "retrained"


def test_query_search_finds_a_run_id_and_limit_refuses_a_bool(runs):
    run_id = runs["run_id"].iloc[5]
    assert list(store.query_runs(runs, search=run_id.upper())["run_id"]) == [run_id]
    with pytest.raises(ValueError, match="limit"):
        store.query_runs(runs, limit=True)
    assert len(store.query_runs(runs, limit=3)) == 3
    # a numpy integer is a non-negative integer too (np.int64(3) was refused as a bad limit)
    assert len(store.query_runs(runs, limit=np.int64(3))) == 3
    with pytest.raises(ValueError, match="limit"):
        store.query_runs(runs, limit=np.bool_(True))


def test_parquet_export_does_not_carry_the_loaders_local_paths(tmp_path, runs):
    runs.attrs["skipped"] = [store.Skipped(str(tmp_path / "secret-folder" / "bad.json"), "invalid")]
    data = store.to_parquet_bytes(runs)
    assert b"secret-folder" not in data
    assert len(pd.read_parquet(io.BytesIO(data))) == len(runs)


def test_no_runs_text_names_the_toggle_that_includes_the_submissions():
    advice = "No runs yet: add some."
    assert store.no_runs_text(pd.DataFrame(), advice) == advice  # no source column: the advice
    verified = pd.DataFrame({"source": ["grid", "grid"]})
    assert store.no_runs_text(verified, advice) == advice
    text = store.no_runs_text(pd.DataFrame({"source": [store.SUBMITTED_SOURCE] * 3}), advice)
    assert "only 3 submitted, unverified run(s)" in text and "No runs yet" not in text
    assert "*include 3 submitted, unverified runs*" in text  # the toggle's own label (app.source_controls)


def test_matching_runs_with_chosen_columns_equals_the_full_rows_cut_to_them(tmp_path):
    """The All runs page takes only the columns it shows before any row is taken; the rows, their order and
    values must be those of the full query (fast path against the naive one), one model's or all."""
    frames = [make_fixture_records(n_datasets=5, pretrained=tag, seeds=(0, 1), noise=1.0, seed=i)
              for i, tag in enumerate(("world-v1", "other"))]
    runs = pd.concat([store.records_to_frame(f) for f in frames], ignore_index=True)
    columns = ["run_id", "method", "dataset", "id_gain", "created_at"]
    for kwargs in ({}, {"model": ("worldclip-tiny", "other")}, {"filters": {"method": ["lora", "full"]}},
                   {"search": "SET-3", "sort_by": "id_gain", "descending": False}, {"sort_by": "created_at"}):
        full = store.matching_runs(runs, **kwargs)
        assert "extra" not in full.columns and len(full) > 0, kwargs
        pd.testing.assert_frame_equal(store.matching_runs(runs, columns=columns, **kwargs), full[columns])
    with pytest.raises(KeyError, match=r"no column\(s\) \['nope'\]"):
        store.matching_runs(runs, columns=["run_id", "nope"])
    for bad in ("worldclip-tiny", ("worldclip-tiny",)):  # pandas' 'Unable to coerce to Series, length must be 2'
        with pytest.raises(ValueError, match=r"model must be a \(model, pretrained\) pair, got "):
            store.matching_runs(runs, model=bad)


def test_model_metadata_takes_a_run_dated_past_year_9999_in_utc_as_the_newest():
    """'9999-12-31T23:59:59-08:00' (the schema allows it) is in year 10000 in UTC: the moments went through an
    object array, which pandas read back as 1972, so the newest run's words lost to an older run's."""
    records = make_fixture_records(n_datasets=2, methods=("full",))
    records[0].update(created_at="9999-12-31T23:59:59-08:00")
    records[0]["provenance"] = dict(records[0]["provenance"], weights_source="newest")
    records[1].update(created_at="2026-12-06T16:00:00+05:30")
    records[1]["provenance"] = dict(records[1]["provenance"], weights_source="older")
    frame = store.records_to_frame(records)
    for runs in (frame, frame.set_axis(frame.index[::-1] + 10)):  # also where the frame's index is not 0..n-1
        assert store.model_metadata(runs).iloc[0]["weights_source"] == "newest"
