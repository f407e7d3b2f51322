"""jobs.grid_report: per-method outcomes and IIMM's relation to them, from stored records."""
from jobs import grid_report
from tests.fixtures import write_fixture_store


def test_report_tables_from_a_fixture_store(tmp_path, capsys):
    write_fixture_store(tmp_path, n_datasets=6, methods=("full", "bitfit"), seeds=(0, 1), noise=0.0)
    out_md = tmp_path / "report.md"
    assert grid_report.main(["--results", str(tmp_path), "--out", str(out_md)]) == 0
    text = capsys.readouterr().out
    assert "6 datasets, 24 successful runs (0 failed), up to 2 seed(s)" in text
    rows = [line for line in text.splitlines() if line.startswith("| full |") or line.startswith("| bitfit |")]
    assert len(rows) == 2 + 4  # one outcome row each, then id_gain and ood_change relations each
    # the fixture's outcomes are exact linear functions of IIMM: |r| = 1, LODO error 0
    relation = [r for r in rows if "id_gain" in r]
    assert all("| +1.00 |" in r or "| -1.00 |" in r for r in relation)
    assert all(r.rstrip(" |").endswith("0.0") for r in relation)
    assert out_md.read_text().strip() == text.strip()


def test_report_refuses_missing_or_empty_store(tmp_path, capsys):
    assert grid_report.main(["--results", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert grid_report.main(["--results", str(tmp_path)]) == 2
    assert "no successful runs" in capsys.readouterr().err
