"""core.data_versions.mixed_data reads fingerprints in DuckDB, each distinct one parsed once in Python: it must
name what parsing every record's provenance with split_fingerprints names, on awkward texts too."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pandas as pd
import pytest

from core import data_versions
from core.ranking import without_baselines


def per_row_prints(ok: pd.DataFrame) -> list[tuple]:
    made = ok["created_at"] if "created_at" in ok.columns else [None] * len(ok)
    return [(m, p, name, split, value, method, source, when)
            for m, p, method, dataset, source, when, prov in zip(ok["model"], ok["pretrained"], ok["method"],
                                                                ok["dataset"], ok["source"], made, ok["provenance"])
            for (name, split), value in data_versions.split_fingerprints(dataset, prov).items()]


def distinct(rows: list[tuple]) -> set[tuple]:
    return {tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row) for row in rows}


def per_row(runs: pd.DataFrame) -> pd.DataFrame:
    """mixed_data as it was first written: every ok run's provenance through split_fingerprints."""
    ok = without_baselines(runs[runs["status"] == "ok"])
    rows = per_row_prints(ok)
    found = pd.DataFrame(rows, columns=["model", "pretrained", "dataset", "split", "fingerprint", "method", "source",
                                        "created_at"])
    out = [{"model": m, "pretrained": p, "dataset": d, "split": s, "n_versions": int(g["fingerprint"].nunique()),
            "methods": ", ".join(sorted(map(str, g["method"].dropna().unique()))),
            "sources": ", ".join(sorted(map(str, g["source"].dropna().unique()))),
            "versions": data_versions._versions_text(g),
            "method_names": tuple(sorted(map(str, g["method"].dropna().unique())))}
           for (m, p, d, s), g in found.groupby(["model", "pretrained", "dataset", "split"], sort=True, dropna=False)
           if g["fingerprint"].nunique() > 1]
    return pd.DataFrame(out, columns=data_versions.MIXED_DATA_COLUMNS)


def fp(train=None, test=None, ood=None, **more) -> str:
    prints = {k: v for k, v in (("train", train), ("test", test), ("ood", ood)) if v is not None}
    return json.dumps({"command": "python -m jobs.grid", **more, "data_fingerprint": prints})


AWKWARD = [
    None, math.nan, "", "{not json", "[]", "3", '"data_fingerprint"', '[{"data_fingerprint": {"train": "in-list"}}]',
    json.dumps({"cpu": "A"}),                                              # no fingerprint
    fp(ood={"ood-a": "o-only"}),                                           # OOD sets only
    fp("t1", "s1", {"ood-a": "o1", "ood-b": "o2"}), fp("t1", "s1", {"ood-a": "o1"}), fp("t2", "s1"),
    fp("t1", "s2", {"set-b": "as-ood"}),                                  # another dataset's test split as OOD
    '{"data_fingerprint": {"train": "first"}, "data_fingerprint": {"train": "last"}}',       # Python: the last
    '{"data_fingerprint": {"train": "lit"}, "data\\u005ffingerprint": {"train": "escaped"}}',
    '{"data\\u005ffingerprint": {"train": "only-escaped"}, "note": {"data_fingerprint": 1}}',
    '{"note": {"data_fingerprint": {"train": "nested"}}}',                # not this record's
    '{"data_fingerprint": {"train": "d1", "train": "d2", "ood": {"o": "x1", "o": "x2"}}}',
    '{"data_fingerprint": {"train": "comma"},}', '{"data_fingerprint": {"train": "nan"}, "x": nan}',
    '{"data_fingerprint": {"train": "NaN-ok"}, "x": NaN}', '{"data_fingerprint": {"train": "inf"}, "x": [-Infinity]}',
    '{"data_fingerprint": {"train": "caf\\u00e9"}}',
    '{"data_fingerprint": {"train": 5, "test": "", "ood": {"o": null, "p": ["x"]}}}',
    '{"data_fingerprint": null}', '{"data_fingerprint": "t1"}', '{"data_fingerprint": ["t1"]}',
    '{"data_fingerprint": {"train": "deep"}, "x": ' + "[" * 100 + "]" * 100 + "}",
    '{"data_fingerprint": {"train": "big"}, "n": 1' + "0" * 400 + "}",
    '{"data_fingerprint": {"train": "t1"}} trailing', '{"data_fingerprint": {"train": "quote\'s \\"q\\""}}',
]


def awkward_runs() -> pd.DataFrame:
    rows = []
    for i, prov in enumerate(AWKWARD):
        for model in ("m-1", "m-2"):
            for method in ("lora", "full", "zero_shot"):
                rows.append({"status": "ok" if i % 7 else "failed", "model": model, "pretrained": "p",
                             "method": method, "dataset": "set-a" if i % 3 else "set-b",
                             "source": None if i % 5 == 0 else f"src-{i % 4}", "provenance": prov})
    m3 = dict(rows[-1], status="ok", model="m-3", method="lora", provenance=fp("t9", "s9"), source="measured:new*grid")
    rows += [m3, dict(m3, provenance=fp("t8", "s9"), method="bitfit")]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("dtype", ["str", object])
def test_the_duckdb_path_names_what_parsing_each_record_names(dtype):
    runs = awkward_runs().astype({"provenance": dtype})
    want = per_row(runs)
    assert len(want) > 6 and {"m-1", "m-2", "m-3"} <= set(want["model"])  # the cases reach the warning
    pd.testing.assert_frame_equal(data_versions.mixed_data(runs), want)
    dated = runs.assign(created_at=[f"2026-12-0{1 + i % 5}T10:00:0{i % 3}+00:00" for i in range(len(runs))])
    assert "2026-12-01 10:00:00 – " in " ".join(data_versions.mixed_data(dated)["versions"])  # each version's dates
    pd.testing.assert_frame_equal(data_versions.mixed_data(dated), per_row(dated))
    ok = runs.assign(status="ok")
    for text in AWKWARD:  # each text's fingerprints, not only how many differ
        one = ok[ok["provenance"].map(lambda p, t=text: p is t or p == t)]
        assert distinct(list(data_versions._fingerprint_rows(one).itertuples(index=False, name=None))) == distinct(per_row_prints(one)), text


def test_dict_provenance_beside_text_is_read_as_it_is():
    runs = awkward_runs().astype({"provenance": object})
    runs.loc[runs.index[:20], "provenance"] = [{"data_fingerprint": {"train": f"dict-{i % 3}"}} for i in range(20)]
    pd.testing.assert_frame_equal(data_versions.mixed_data(runs), per_row(runs))
    assert "dict" not in str(data_versions.mixed_data(runs.iloc[:0]))


def test_each_distinct_fingerprint_object_is_parsed_once_not_each_record(monkeypatch):
    """At 100,000 runs (jobs.bench_app) parsing every record's provenance in Python cost the landing page 0.5 s or
    more for one model's 25,000 runs: its first view went over the 1 s goal once every record named its data."""
    calls = []
    real = json.loads
    monkeypatch.setattr(data_versions, "json", SimpleNamespace(
        loads=lambda text: calls.append(text) or real(text), JSONDecodeError=json.JSONDecodeError))
    runs = pd.DataFrame([{"status": "ok", "model": "m", "pretrained": "p", "method": ("lora", "full")[i % 2],
                          "dataset": "set", "source": "grid", "provenance": fp("t1" if i % 10 else "t2", "s1",
                                                                               {"o": "o1"}, wall_time_s=i)}
                         for i in range(2000)])
    found = data_versions.mixed_data(runs)
    assert found[["dataset", "split", "n_versions"]].values.tolist() == [["set", "train", 2]]
    assert len(calls) <= 4, f"{len(calls)} texts parsed in Python"


@pytest.mark.parametrize("tail", ["[" * 5000 + "]" * 5000, "1" + "0" * 5000])
def test_text_python_cannot_read_fails_as_it_did(tail):
    """Nesting past Python's recursion limit and an integer longer than it reads: DuckDB reads both, so such text
    is left to Python, which raises as before (the store never loads it: core.store.validate)."""
    runs = awkward_runs().iloc[:2].assign(status="ok", provenance='{"data_fingerprint": {"train": "t"}, "x": ' + tail + "}")
    for find in (data_versions.mixed_data, per_row):
        with pytest.raises((RecursionError, ValueError), match="recursion|digits|Exceeds"):
            find(runs)


def test_the_benchmark_store_names_its_data_as_grid_records_do():
    """jobs.bench_app/bench_store measure the store every record of which names its data (since 2026-12-06):
    without it the landing page's 100,000-run figure left this warning's cost out."""
    from core import store
    from jobs.bench_store import synthetic_records

    records = synthetic_records(400)
    prints = data_versions.split_fingerprints(records[0]["dataset"], records[0]["provenance"])
    assert {split for _, split in prints} == {"train", "test"} and len(prints) == 2 + len(records[0]["ood_sets"])
    runs = store.records_to_frame(records)
    assert runs["provenance"].str.contains('"data_fingerprint"').all() and data_versions.mixed_data(runs).empty
