"""``python -m jobs.reproduce --out CSV``: the differing values as other tools read them."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from jobs import reproduce

SHIPPED = "jobs/results/default/f524b09490248266.json"  # zero_shot on bar-count, seed 0 (world v1)


def test_a_list_that_differs_is_written_as_json_text_not_as_python(tmp_path, monkeypatch):
    """ood_sets that differ were written as Python's repr (['a', 'b']), which jq, R and JavaScript do not read as
    a list: the CSV's cell is now JSON text, as the store's and jobs.export's list cells are."""
    shipped = json.loads(Path(SHIPPED).read_text(encoding="utf-8"))
    claimed = ["scene-kind", "a name, with \"quotes\""]
    monkeypatch.setattr(reproduce, "reproduce", lambda record, **kwargs: json.loads(json.dumps(shipped)))
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**shipped, "ood_sets": claimed}), encoding="utf-8")
    assert reproduce.main([str(path), "--out", str(tmp_path / "d.csv")]) == 1
    (row,) = pd.read_csv(tmp_path / "d.csv").to_dict("records")
    assert row["field"] == "ood_sets"
    assert json.loads(row["recorded"]) == sorted(claimed)  # compared (and listed) in sorted order
    assert json.loads(row["reproduced"]) == sorted(shipped["ood_sets"])


def test_ctrl_c_before_any_record_is_compared_leaves_an_earlier_out_as_it_was(tmp_path, monkeypatch, capsys):
    # it was replaced by the header row alone, what a run where every record reproduces writes
    def again(record, **kw):
        raise KeyboardInterrupt

    earlier = tmp_path / "d.csv"
    earlier.write_text("run_id,field,recorded,reproduced,difference\nr1,iimm,0.1,0.2,0.1\n", encoding="utf-8")
    monkeypatch.setattr(reproduce, "reproduce", again)
    assert reproduce.main([SHIPPED, "--out", str(earlier)]) == 130
    out = capsys.readouterr().out
    assert "interrupted after 0 of 1 records" in out and "nothing compared: --out left as it was" in out
    assert "r1,iimm" in earlier.read_text(encoding="utf-8") and "wrote the differing values" not in out


def test_a_relabelled_name_that_starts_as_a_formula_is_written_as_text(tmp_path, monkeypatch):
    """A host reproduces strangers' submissions: a record whose method claims '=HYPERLINK(…)' was written into the
    CSV as it was, where a spreadsheet runs it; its cell now gets the apostrophe the store's CSV export gives."""
    shipped = json.loads(Path(SHIPPED).read_text(encoding="utf-8"))
    monkeypatch.setattr(reproduce, "reproduce", lambda record, **kwargs: json.loads(json.dumps(shipped)))
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**shipped, "method": '=HYPERLINK("http://x","y")', "iimm": -0.5}), encoding="utf-8")
    assert reproduce.main([str(path), "--out", str(tmp_path / "d.csv")]) == 1
    rows = pd.read_csv(tmp_path / "d.csv").set_index("field")
    assert rows.loc["method", "recorded"] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert rows.loc["method", "reproduced"] == shipped["method"]
    assert float(rows.loc["iimm", "recorded"]) == -0.5  # a number stays a number: no apostrophe before its sign
