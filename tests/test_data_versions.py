"""core.data_versions: the data a run names in its provenance, and runs of one dataset name on different data."""
from __future__ import annotations

import json

import pandas as pd

from core import data_versions, store
from core.text import utc_moments
from tests.fixtures import make_fixture_records


def _on(records, train=None, test=None, ood=None, source=None, tag=""):
    """``records`` as if made on data whose splits hash to ``train``/``test``/``ood`` (None: not named)."""
    out = []
    for r in records:
        prints = {k: v for k, v in (("train", train), ("test", test), ("ood", ood)) if v is not None}
        prov = {**r["provenance"], "data_fingerprint": prints} if prints else dict(r["provenance"])
        out.append(dict(r, run_id=r["run_id"] + tag, provenance=prov, source=source or r["source"]))
    return out


def test_split_fingerprints_reads_a_records_provenance_as_text_or_dict():
    prov = {"data_fingerprint": {"train": "aa", "test": "bb", "ood": {"ood-a": "cc", "ood-b": 3}}}
    want = {("set", "train"): "aa", ("set", "test"): "bb", ("ood-a", "test"): "cc"}  # a number is no fingerprint
    assert data_versions.split_fingerprints("set", prov) == want
    assert data_versions.split_fingerprints("set", json.dumps(prov)) == want
    for nothing in (None, "{not json", "[]", json.dumps({"cpu": "A"}), '{"data_fingerprint": [1]}', {}):
        assert data_versions.split_fingerprints("set", nothing) == {}


def test_runs_of_one_dataset_on_different_data_are_named_and_runs_without_fingerprints_never_are():
    """EuroSAT's and SUN397's splits changed on 2026-12-05: new seeds run into an old store were averaged with
    the old ones as one dataset. Only records that both name a fingerprint can be told apart."""
    base = make_fixture_records(n_datasets=2, methods=("bitfit", "lora", "zero_shot"))
    old = _on(base, train="t1", test="s1", ood={"ood-a": "o1", "ood-b": "o2"})
    same = store.records_to_frame(old + _on(base, train="t1", test="s1", ood={"ood-a": "o1"}, tag="-b"))
    assert data_versions.mixed_data(same).empty and data_versions.mixed_data_text(data_versions.mixed_data(same)) == ""
    unnamed = store.records_to_frame(old + _on(base, tag="-old"))  # older records name no data: not blamed
    assert data_versions.mixed_data(unnamed).empty
    lora = [r for r in base if r["method"] == "lora" and r["dataset"] == "fx-set-0"]
    mixed = store.records_to_frame(old + _on(lora, train="t2", test="s1", ood={"ood-a": "o9"},
                                             source="measured:new*grid", tag="-new"))
    found = data_versions.mixed_data(mixed)
    assert found[["dataset", "split", "n_versions"]].values.tolist() == [
        ["fx-set-0", "train", 2], ["ood-a", "test", 2]]  # fx-set-0's test split and ood-b agree
    assert set(found["methods"]) == {"bitfit, lora"} and found["model"].tolist() == ["worldclip-tiny"] * 2
    text = data_versions.mixed_data_text(found)
    assert "Runs on different data" in text and "fx\\-set\\-0: train (2 versions: " in text
    assert r"measured\:new\*grid" in text  # record text escaped, not Markdown
    baseline_only = store.records_to_frame(old + _on([r for r in base if r["method"] == "zero_shot"],
                                                     train="t2", test="s2", tag="-zs"))
    assert data_versions.mixed_data(baseline_only).empty  # the ranking leaves zero-shot out, so does this
    failed = store.records_to_frame(old + [dict(r, status="failed", error="x") for r in _on(lora, train="t2",
                                                                                               tag="-f")])
    assert data_versions.mixed_data(failed).empty  # a failed run feeds no number
    assert data_versions.mixed_data(mixed.drop(columns=["provenance"])).empty


def test_the_warning_tells_which_runs_ran_on_which_data_and_that_a_grid_will_not_run_them_again():
    """A user's folder changed between seeds: the warning said '2 versions' and 'move the runs … or run them
    again', but named no run, and running the grid again skips every cell that has a record."""
    base = [r for r in make_fixture_records(n_datasets=1, methods=("bitfit", "lora")) if r["seed"] == 0]
    old = [dict(r, created_at="2026-12-06T10:00:05+00:00") for r in _on(base, train="t1", test="s1", tag="-a")]
    old[1]["created_at"] = "2026-12-06T10:02:00+00:00"
    new = [dict(r, created_at="2026-12-06T11:30:00+00:00") for r in _on(base[:1], train="t2", test="s1", tag="-b")]
    found = data_versions.mixed_data(store.records_to_frame(new + old))
    assert found["versions"].tolist() == ["2 runs made 2026-12-06 10:00:05 – 2026-12-06 10:02:00 UTC, "
                                          "1 run made 2026-12-06 11:30:00 UTC"]  # oldest version first
    text = data_versions.mixed_data_text(found)
    assert "train (2 versions: 2 runs made 2026\\-12\\-06 10\\:00\\:05" in text
    assert "or run them again" not in text and "move their records out first, then run the grid again" in text


def test_dates_from_other_time_zones_are_ordered_and_shown_as_the_moments_they_name():
    """Runs recorded on hosts with other UTC offsets: the versions text sorted their local times as text and
    dropped the offsets, '2 runs made 2026-12-06 10:45:00 – 2026-12-06 16:00:00' for runs 15 minutes apart."""
    base = [r for r in make_fixture_records(n_datasets=1, methods=("bitfit", "lora")) if r["seed"] == 0]
    old = [dict(r, created_at="2026-12-06T11:00:00+01:00") for r in _on(base[:1], train="t1", tag="-a")]  # 10:00Z
    new = [dict(r) for r in _on(base, train="t2", tag="-b")]
    new[0]["created_at"], new[1]["created_at"] = "2026-12-06T16:00:00+05:30", "2026-12-06T02:45:00-08:00"
    found = data_versions.mixed_data(store.records_to_frame(new + old))
    assert found["versions"].tolist() == ["1 run made 2026-12-06 10:00:00 UTC, "
                                          "2 runs made 2026-12-06 10:30:00 – 2026-12-06 10:45:00 UTC"]
    missing = utc_moments(pd.Series(["2026-12-06T10:00Z", None, "not a time"]))
    assert data_versions._when(missing) == " made 2026-12-06 10:00:00 UTC"


def test_versions_are_listed_oldest_first_whatever_their_fingerprints_are():
    """The version made first is named first even where its fingerprint sorts last ('zz' before 'aa' in time);
    a version whose runs name no time comes first."""
    base = [r for r in make_fixture_records(n_datasets=1, methods=("bitfit", "lora")) if r["seed"] == 0]
    old = [dict(r, created_at="2026-12-06T10:00:00+00:00") for r in _on(base[:1], train="zz", tag="-z")]
    new = [dict(r, created_at="2026-12-06T09:00:00-08:00") for r in _on(base[1:], train="aa", tag="-a")]  # 17:00Z
    found = data_versions.mixed_data(store.records_to_frame(new + old))
    assert found["versions"].tolist() == ["1 run made 2026-12-06 10:00:00 UTC, 1 run made 2026-12-06 17:00:00 UTC"]
    undated = [dict(r, created_at=None) for r in _on(base[1:], train="aa", tag="-a")]
    frame = store.records_to_frame(undated + old)
    assert data_versions.mixed_data(frame)["versions"].tolist() == ["1 run, 1 run made 2026-12-06 10:00:00 UTC"]


def test_a_method_whose_name_holds_a_comma_keeps_its_averaged_words():
    """A submitted method may be named 'lora, r=8': read back from the ', '-joined methods text, its runs on
    different data were said of 'lora' and 'r=8', methods with no such runs, and its own row said nothing."""
    base = make_fixture_records(n_datasets=1, methods=("bitfit", "lora"))
    named = [dict(r, method="lora, r=8") if r["method"] == "lora" else r for r in base]
    old = _on(named, train="t1", test="s1")
    runs = store.records_to_frame(old + _on([r for r in named if r["method"] == "lora, r=8"], train="t2",
                                            test="s1", tag="-new"))
    per_method = data_versions.mixed_data_methods(data_versions.mixed_data(runs))
    said = "runs on different data: fx-set-0 train"  # bitfit's runs name the split too, as before
    assert per_method == {"bitfit": said, "lora, r=8": said}
    assert data_versions.averaged_caveats(runs)[1] == {"bitfit": said, "lora, r=8": said}
