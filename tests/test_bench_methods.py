"""jobs.bench_methods: the check of trainable counts on ViT-B/32 against the stated ones."""
from __future__ import annotations

from core.method_info import method_info
from core.methods import METHODS
from jobs import bench_methods


def _rows(counts: dict[str, int]) -> list[dict]:
    return [{"model": "ViT-B-32-random", "method": m, "trainable": n} for m, n in counts.items()]


def test_counts_are_checked_against_the_stated_ones_without_building_a_model(capsys):
    methods = [m for m, e in METHODS.items() if not e.needs_config]
    counts = {m: method_info(m).trainable_vit_b32 or 7 for m in methods}  # the benchmark rows give every count
    counts["bitfit"] = 1  # one count off: called a mismatch
    bench_methods.check_counts(_rows(counts))  # no model loaded: every method has its benchmark row
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:] if line.strip()}
    assert set(lines) == set(methods)
    assert "stated 168,960: MISMATCH" in lines["bitfit"] and "SPEC 168,960: MISMATCH" in lines["bitfit"]
    assert "stated 30,670,848: ok" in lines["attention"] and "SPEC 30,670,848: ok" in lines["attention"]
    assert "stated" not in lines["linear_probe"]  # no fixed number stated for it
