"""jobs.reproduce: a stored record's cell run again here, its measured values compared."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from jobs import reproduce


def _record(**changes):
    rec = {"run_id": "r1", "zs_acc": 50.0, "ft_acc": 70.0, "id_gain": 20.0, "norm_gain": 0.4, "ood_change": -1.0,
           "iimm": 0.5, "inter_modal": 0.3, "intra_image": 0.7, "ood_before": {"b": 60.0, "a": 40.0},
           "ood_after": {"a": 39.0, "b": 59.0}}
    rec.update(changes)
    return rec


def test_compare_lists_what_differs_beyond_each_tolerance():
    again = _record(ft_acc=70.125, id_gain=20.125, iimm=0.5 + 1e-8, inter_modal=0.3 + 1e-5,
                    ood_after={"a": 39.0, "b": 58.0}, intra_image=None)
    table = reproduce.compare(_record(), again)
    rows = {r["field"]: r for r in table.to_dict("records")}
    assert list(rows) == ["ft_acc", "id_gain", "inter_modal", "intra_image", "ood_after[b]"]
    assert rows["ft_acc"]["difference"] == pytest.approx(0.125) and rows["ood_after[b]"]["difference"] == -1.0
    assert math.isnan(rows["intra_image"]["difference"]) and pd.isna(rows["intra_image"]["reproduced"])
    loose = reproduce.compare(_record(), again, tolerance=1.0, measure_tolerance=1e-4)
    assert list(loose["field"]) == ["intra_image"]  # a value present in one record only is always listed


def test_an_identical_record_reproduces_and_a_new_ood_set_is_listed():
    assert reproduce.compare(_record(), _record()).empty
    extra = reproduce.compare(_record(), _record(ood_before={"a": 40.0, "b": 60.0, "c": 1.0}))
    assert list(extra["field"]) == ["ood_before[c]"] and extra["recorded"].isna().all()


def test_float_rounding_of_a_derived_outcome_is_not_a_difference():
    # ood_change is a mean of differences: summed in another order it came back -1.0000000000000036 and was listed
    again = _record(ood_change=-1.0 - 3.6e-15, norm_gain=0.4 + 1e-16)
    assert reproduce.compare(_record(), again).empty
    real = reproduce.compare(_record(), _record(ood_change=-1.0 - 1e-6))  # far below 100/N, still a difference
    assert list(real["field"]) == ["ood_change"]


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, True, "0"])
def test_a_bad_tolerance_is_refused(value):
    with pytest.raises(ValueError, match="tolerance must be a finite number >= 0"):
        reproduce.compare(_record(), _record(), tolerance=value)


@pytest.mark.parametrize("content, match", [
    (None, "is not a file"),
    ("{not json", "is not a JSON record"),
    ('{"run_id": "x"}', "missing required field"),
])
def test_a_file_that_is_no_record_is_refused_before_any_cell_runs(tmp_path, capsys, content, match):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert reproduce.main([str(path)]) == 2
    assert match in capsys.readouterr().err


def test_a_record_without_a_cell_is_refused(tmp_path, capsys):
    from tests.fixtures import make_fixture_records

    rec = make_fixture_records(n_datasets=1, methods=("full",))[0]
    rec["config"] = {"note": "hand-made"}
    (tmp_path / "r.json").write_text(json.dumps(rec), encoding="utf-8")
    assert reproduce.main([str(tmp_path / "r.json"), "--threads", "1"]) == 2
    assert "its config is not a grid cell" in capsys.readouterr().err
    assert reproduce.main([str(tmp_path / "r.json"), "--threads", "0"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_a_fresh_record_reproduces_and_an_edited_one_does_not(tmp_path, capsys):
    from core.experiment import run_cell
    from core.schema import outcome_fields

    cell = {"model": "worldclip-tiny", "dataset": "shape-size", "method": "linear_probe", "seed": 0,
            "ood": ["scene-kind"], "method_config": {}, "train": {"max_steps": 4, "eval_every": 2}, "source": "test"}
    record = run_cell(cell, cache_dir=tmp_path / "cache")
    assert record["status"] == "ok", record["error"]
    path = tmp_path / f"{record['run_id']}.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    args = [str(path), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "d.csv")]
    assert reproduce.main(args) == 0
    assert "1 of 1 records reproduce" in capsys.readouterr().out
    edited = {**record, "ft_acc": record["ft_acc"] - 0.5}
    edited.update(outcome_fields(edited["zs_acc"], edited["ft_acc"], edited["ood_before"], edited["ood_after"]))
    path.write_text(json.dumps(edited), encoding="utf-8")
    assert reproduce.main(args) == 1
    out = capsys.readouterr().out
    assert "0 of 1 records reproduce" in out and "values differ" in out

    assert set(pd.read_csv(tmp_path / "d.csv")["field"]) == {"ft_acc", "id_gain", "norm_gain"}


def test_notes_name_a_config_that_is_not_the_run_id_and_other_hardware():
    from core.experiment import cell_id

    cell = {"model": "m", "dataset": "d", "method": "lora", "seed": 0}
    record = {"run_id": cell_id(cell), "config": cell, "provenance": {"versions": {"torch": "2.14.1"}, "device": "cpu",
                                                                     "cpu": "A", "cpu_capability": "AVX512",
                                                                     "torch_threads": 2}}
    same = {"provenance": {"versions": {"torch": "2.14.1"}, "device": "cpu", "cpu": "A", "cpu_capability": "AVX512",
                           "torch_threads": 2}}
    assert reproduce.notes(record, same) == []
    other = {"provenance": {"versions": {"torch": "2.15.0"}, "device": "cpu", "cpu": "B", "cpu_capability": "AVX2",
                            "torch_threads": 1}}
    said = " | ".join(reproduce.notes({**record, "run_id": "edited"}, other))
    assert "does not hash to its run_id" in said and "torch 2.14.1" in said and "CPU A" in said
    assert "torch threads 2, reproduced with 1" in said and "CPU kernels AVX512, reproduced with AVX2" in said
    # same CPU name, other kernels: the one difference a generic virtual-CPU name hides
    hidden = {"provenance": {**same["provenance"], "cpu_capability": "AVX2"}}
    assert reproduce.notes(record, hidden) == ["recorded with CPU kernels AVX512, reproduced with AVX2: rounding may differ"]
    # same name and kernels, other caches or stepping: what the signature tells apart
    signed = {**record, "provenance": {**record["provenance"], "cpu_signature": "6/167/1; L2 2048K"}}
    other_host = {"provenance": {**same["provenance"], "cpu_signature": "6/143/8; L2 2048K"}}
    assert reproduce.notes(signed, other_host) == [
        "recorded with CPU signature 6/167/1; L2 2048K, reproduced with 6/143/8; L2 2048K: rounding may differ"]
    on_gpu = {**record, "provenance": {**record["provenance"], "device": "cuda:0", "gpu": "NVIDIA A100-SXM4-80GB"}}
    other_gpu = {"provenance": {**on_gpu["provenance"], "gpu": "NVIDIA H100 80GB HBM3"}}
    assert reproduce.notes(on_gpu, other_gpu) == [
        "recorded with GPU NVIDIA A100-SXM4-80GB, reproduced with NVIDIA H100 80GB HBM3: rounding may differ"]
    assert reproduce.notes(record, other_host) == []  # an older record names none: nothing to compare
    # kernel settings in the environment: forcing MKL onto AVX2 kernels changed a shipped cell's accuracy
    settled = {**record, "provenance": {**record["provenance"], "numerics_env": {}}}
    forced = {"provenance": {**same["provenance"], "numerics_env": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}}}
    assert reproduce.notes(settled, forced) == ["recorded with kernel settings (none set), reproduced with "
                                                "MKL_ENABLE_INSTRUCTIONS=AVX2: rounding may differ"]
    assert reproduce.notes(record, forced) == [] and reproduce.notes(settled, {"provenance": {
        **same["provenance"], "numerics_env": {}}}) == []
    # BLAS threads as the library counted them: an unset OPENBLAS_NUM_THREADS names no count in numerics_env
    two = {**record, "provenance": {**record["provenance"], "blas_threads": {"libscipy_openblas": 2}}}
    one = {"provenance": {**same["provenance"], "blas_threads": {"libscipy_openblas": 1}}}
    assert reproduce.notes(two, one) == ["recorded with BLAS threads libscipy_openblas 2, reproduced with "
                                         "libscipy_openblas 1: rounding may differ"]
    assert reproduce.notes(record, one) == [] and reproduce.notes(two, {"provenance": {
        **same["provenance"], "blas_threads": {}}}) == []  # a record made before it was kept, or no BLAS seen


def test_numerics_environment_keeps_only_the_kernel_settings_that_are_set():
    from core.experiment import numerics_environment

    assert numerics_environment({"PATH": "/bin", "MKL_CBWR": "AVX2", "OMP_NUM_THREADS": "1"}) == {
        "MKL_CBWR": "AVX2", "OMP_NUM_THREADS": "1"}
    assert numerics_environment({"HOME": "/root"}) == {}


def test_numpys_blas_threads_are_named_as_they_change_the_transferability_baselines():
    from core.experiment import numerics_environment

    assert numerics_environment({"OPENBLAS_NUM_THREADS": "1", "PATH": "/bin"}) == {"OPENBLAS_NUM_THREADS": "1"}


def test_cpu_signature_names_model_caches_and_a_flags_hash(tmp_path):
    from core.experiment import cpu_signature

    info = tmp_path / "cpuinfo"
    block = "processor\t: {}\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Processor\n" \
            "stepping\t: 8\nflags\t\t: {}\n\n"
    info.write_text(block.format(0, "sse avx2 fpu") + block.format(1, "other flags of a second processor"),
                    encoding="utf-8")
    caches = tmp_path / "cache"
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K")]):
        (caches / f"index{index}").mkdir(parents=True)
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (caches / f"index{index}" / name).write_text(f"{value}\n", encoding="utf-8")
    signature = cpu_signature(str(info), str(caches))
    model, cache_sizes, flags = signature.split("; ")
    assert (model, cache_sizes) == ("6/143/8", "L1d 48K L1i 32K L2 2048K")
    # the first processor's flags, in any order
    info.write_text(block.format(0, "fpu sse avx2"), encoding="utf-8")
    assert cpu_signature(str(info), str(caches)).endswith(flags) and flags.startswith("flags ") and len(flags) == 14
    info.write_text(block.format(0, "fpu sse"), encoding="utf-8")
    assert not cpu_signature(str(info), str(caches)).endswith(flags)
    assert cpu_signature(str(tmp_path / "none"), str(tmp_path / "none")) == "unknown"
    assert cpu_signature(str(tmp_path / "none"), str(caches)) == "L1d 48K L1i 32K L2 2048K"


SHIPPED = "jobs/results/default/f524b09490248266.json"  # zero_shot on bar-count, seed 0 (world v1)


def test_a_record_that_claims_another_cell_than_its_config_runs_does_not_reproduce(tmp_path, monkeypatch, capsys):
    # a submission relabelled: its fields say LoRA, seed 3, while its config (and run_id) is a zero-shot cell;
    # running the config gives the record's numbers, but they are not the numbers of the run it claims to be
    shipped = json.loads(Path(SHIPPED).read_text(encoding="utf-8"))
    monkeypatch.setattr(reproduce, "reproduce", lambda record, **kwargs: json.loads(json.dumps(shipped)))
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**shipped, "method": "lora", "seed": 3}), encoding="utf-8")
    assert reproduce.main([str(path), "--out", str(tmp_path / "d.csv")]) == 1
    out = capsys.readouterr().out
    assert "0 of 1 records reproduce" in out and "2 values differ" in out and "nan" not in out
    assert set(pd.read_csv(tmp_path / "d.csv")["field"]) == {"method", "seed"}
    path.write_text(json.dumps(shipped), encoding="utf-8")  # the record as it is
    assert reproduce.main([str(path)]) == 0


def test_record_files_are_read_by_the_store_rules(tmp_path, monkeypatch, capsys):
    # JSON nested 100,000 deep ended in a RecursionError traceback; a 2 MiB file was read whole; a record with a
    # UTF-8 byte-order mark, which the store loads, was refused
    deep, big, bom = tmp_path / "deep.json", tmp_path / "big.json", tmp_path / "bom.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    big.write_text(json.dumps({"run_id": "x", "pad": "a" * (2 << 20)}), encoding="utf-8")
    shipped = Path(SHIPPED).read_bytes()
    bom.write_bytes(b"\xef\xbb\xbf" + shipped)
    for path, match in ((deep, "nested 100000 levels deep"), (big, "the limit is 1048576")):
        assert reproduce.main([str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}") and match in err and "Traceback" not in err
    monkeypatch.setattr(reproduce, "reproduce", lambda record, **kwargs: json.loads(shipped))
    assert reproduce.main([str(bom)]) == 0


def test_a_model_this_machine_cannot_load_is_refused_before_any_cell_runs(tmp_path, monkeypatch, capsys):
    # the second record's model needs a download and this machine is offline: the first cell ran (up to 30 s
    # each), then the second was counted as not reproducing, exit 1, though nothing here could say
    from core import models
    from core.experiment import cell_id

    shipped = json.loads(Path(SHIPPED).read_text(encoding="utf-8"))
    cell = {**shipped["config"], "model": "ViT-B-32:openai"}
    (tmp_path / "a.json").write_text(json.dumps(shipped), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({**shipped, "config": cell, "run_id": cell_id(cell)}), encoding="utf-8")
    monkeypatch.setattr(models, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(reproduce, "reproduce", lambda *a, **k: pytest.fail("a cell ran"))
    assert reproduce.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'b.json'}: model 'ViT-B-32:openai'") and "offline" in err


SHIPPED = "jobs/results/default/019e672e1de9c379.json"  # a world-v1 zero-shot record (worldclip-tiny)


def test_a_status_that_differs_is_a_row_of_the_csv(tmp_path, monkeypatch, capsys):
    recorded = json.loads(Path(SHIPPED).read_text(encoding="utf-8"))
    monkeypatch.setattr(reproduce, "reproduce", lambda record, **kw: {**record, "status": "failed", "error": "boom"})
    assert reproduce.main([SHIPPED, "--out", str(tmp_path / "d.csv")]) == 1
    table = pd.read_csv(tmp_path / "d.csv")
    (row,) = table.to_dict("records")
    assert (row["run_id"], row["field"], row["recorded"], row["reproduced"]) == (recorded["run_id"], "status", "ok",
                                                                                  "failed")
    assert math.isnan(row["difference"])
    assert "recorded ok, here failed (boom)" in capsys.readouterr().out


def test_ctrl_c_still_reports_and_writes_what_was_compared(tmp_path, monkeypatch, capsys):
    calls = []

    def again(record, **kw):
        calls.append(record["run_id"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {**record, "iimm": record["iimm"] + 0.01}

    monkeypatch.setattr(reproduce, "reproduce", again)
    assert reproduce.main([SHIPPED, SHIPPED, "--out", str(tmp_path / "d.csv")]) == 130
    out = capsys.readouterr().out
    assert "interrupted after 1 of 2 records" in out and "0 of 1 records reproduce" in out
    assert out.splitlines()[-1] == f"wrote the differing values to {tmp_path / 'd.csv'}"  # the CSV was not named
    assert list(pd.read_csv(tmp_path / "d.csv")["field"]) == ["iimm"]


def test_each_record_says_on_stderr_that_its_cell_is_running(tmp_path, monkeypatch, capsys):
    # a cell takes up to half a minute: the job was silent until the first one was compared
    def again(record, **kw):
        assert capsys.readouterr().err.endswith(f"{record['run_id']} (zero_shot on land-cover-hazy, seed 0): running its "
                                                "cell again\n"), "not said before the cell ran"
        return dict(record)

    monkeypatch.setattr(reproduce, "reproduce", again)
    assert reproduce.main([SHIPPED, SHIPPED]) == 0
    assert "[2/2] " in capsys.readouterr().out


def test_a_file_as_cache_is_refused_before_any_cell_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce, "reproduce", lambda *a, **k: pytest.fail("a cell ran"))
    (tmp_path / "cache").write_text("x", encoding="utf-8")
    assert reproduce.main([SHIPPED, "--cache", str(tmp_path / "cache")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_an_out_that_is_one_of_the_records_is_refused_before_any_cell_runs(tmp_path, monkeypatch, capsys):
    # '--out r.json' (the record itself): after the cell ran, the CSV of differences replaced the record
    path = tmp_path / "r.json"
    path.write_text(Path(SHIPPED).read_text(encoding="utf-8"), encoding="utf-8")
    before = path.read_bytes()
    monkeypatch.setattr(reproduce, "reproduce", lambda record, **kw: pytest.fail("a cell ran"))
    assert reproduce.main([str(path), "--out", str(tmp_path / "." / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --out {tmp_path / '.' / 'r.json'} is one of the records to reproduce: name another file"
    assert path.read_bytes() == before


def test_a_record_that_ran_on_other_data_than_its_rerun_is_pointed_out(tmp_path, monkeypatch, capsys):
    """A folder's, EuroSAT's and SUN397's splits changed on 2026-12-05: a record re-run on the new split differed
    and nothing said why. Splits both records fingerprint are compared; a record naming none is not blamed."""
    shipped = json.loads(Path(SHIPPED).read_text(encoding="utf-8"))  # made before 2026-12-06: names no data
    data = {"train": "a" * 24, "test": "b" * 24, "ood": {"scene-kind": "c" * 24, "letters": "d" * 24}}
    again = {**shipped, "provenance": {**shipped["provenance"], "data_fingerprint": data}}
    assert reproduce.notes(shipped, again) == []
    recorded = {**shipped, "provenance": {**shipped["provenance"], "data_fingerprint": {
        "train": "e" * 24, "test": "b" * 24, "ood": {"scene-kind": "f" * 24}}}}
    assert reproduce.notes(recorded, again) == [
        f"ran on other data: land-cover-hazy train (recorded {'e' * 24}, here {'a' * 24}); scene-kind test "
        f"(recorded {'f' * 24}, here {'c' * 24}): the values may differ for that alone"]
    assert reproduce.notes(recorded, {**recorded, "dataset": "relabelled"}) == []  # the same data
    path = tmp_path / "r.json"
    path.write_text(json.dumps(recorded), encoding="utf-8")
    monkeypatch.setattr(reproduce, "reproduce", lambda record, **kw: json.loads(json.dumps(again)))
    assert reproduce.main([str(path)]) == 0  # the values agree here; the note says what else differs
    assert "; note: ran on other data: land-cover-hazy train" in capsys.readouterr().out


def test_every_library_version_that_differs_is_pointed_out():
    # the docstring promised any provenance.versions difference is pointed out; only torch's was: a record made
    # with another peft (the code of every peft_* method) or NumPy came back different and nothing said why
    versions = {"python": "3.11.7", "torch": "2.14.1", "open_clip_torch": "3.3.0", "peft": "0.21.2",
                "numpy": "2.4.6", "torchvision": "0.29.1"}
    record = {"run_id": "r", "config": {}, "provenance": {"versions": versions}}
    assert reproduce.notes({**record, "run_id": _cell_id({})}, {"provenance": {"versions": dict(versions)}}) == []
    other = {"provenance": {"versions": {**versions, "peft": "0.22.0", "numpy": "2.5.0", "torch": "2.15.0"}}}
    said = reproduce.notes({**record, "run_id": _cell_id({})}, other)
    assert said == ["recorded with torch 2.14.1, reproduced with 2.15.0: rounding may differ",
                    "recorded with numpy 2.4.6, reproduced with 2.5.0: the values may differ for that alone",
                    "recorded with peft 0.21.2, reproduced with 0.22.0: the values may differ for that alone"]
    # a library one record does not name is not blamed (older records name fewer)
    fewer = {**record, "run_id": _cell_id({}), "provenance": {"versions": {"torch": "2.14.1"}}}
    assert reproduce.notes(fewer, other) == ["recorded with torch 2.14.1, reproduced with 2.15.0: rounding may differ"]
    odd = {**fewer, "provenance": {"versions": ["torch 2.14.1"]}}  # provenance is free-form: not a mapping here
    assert reproduce.notes(odd, other) == []


def _cell_id(cell):
    from core.experiment import cell_id

    return cell_id(cell)


def test_a_method_this_installation_lacks_is_refused_before_any_cell_runs(tmp_path, monkeypatch, capsys):
    """A submission of a user's own method: its cell failed here with 'unknown fine-tuning method', and the run
    was reported as not reproducing (recorded ok, here failed; exit 1), though nothing here could say. Once the
    method is registered (here by monkeypatching the registry) its cell runs."""
    import dataclasses

    from core.experiment import cell_id
    from core.methods import METHODS

    shipped = json.loads(Path(SHIPPED).read_text(encoding="utf-8"))
    cell = {**shipped["config"], "method": "my_ln_only"}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({**shipped, "config": cell, "method": "my_ln_only", "run_id": cell_id(cell)}),
                    encoding="utf-8")
    monkeypatch.setattr(reproduce, "reproduce", lambda *a, **k: pytest.fail("a cell ran"))
    assert reproduce.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: method 'my_ln_only' cannot be run here") and "registry" in err
    monkeypatch.setitem(METHODS, "my_ln_only", dataclasses.replace(METHODS["bitfit"], name="my_ln_only"))
    ran = []
    monkeypatch.setattr(reproduce, "reproduce", lambda record, **k: ran.append(record) or dict(record))
    assert reproduce.main([str(path)]) == 0 and len(ran) == 1


def test_data_that_is_not_on_this_machine_is_refused_before_any_cell_runs(tmp_path, monkeypatch, capsys):
    """A submission on a user's own image folder (or a dataset this installation does not know): its cell failed
    here with DatasetUnavailableError and the run was reported as not reproducing (exit 1)."""
    from core.experiment import cell_id

    shipped = json.loads(Path(SHIPPED).read_text(encoding="utf-8"))
    monkeypatch.setattr(reproduce, "reproduce", lambda *a, **k: pytest.fail("a cell ran"))
    for field, name, says in (("dataset", f"folder:{tmp_path / 'gone'}", "is not on this machine"),
                              ("ood", ["my-own-set"], "unknown dataset 'my-own-set'")):
        cell = {**shipped["config"], field: name}
        path = tmp_path / "theirs.json"
        path.write_text(json.dumps({**shipped, "config": cell, "run_id": cell_id(cell)}), encoding="utf-8")
        assert reproduce.main([str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: dataset ") and "cannot be run here" in err and says in err


def test_a_record_whose_config_names_its_method_by_no_string_is_refused_not_a_traceback(tmp_path, capsys):
    """A hand-edited submission whose config's method is a list: the registry check ended the job in
    'TypeError: unhashable type: list' (a traceback, exit 1) instead of naming the file (exit 2)."""
    from core.experiment import cell_id

    shipped = json.loads(Path(SHIPPED).read_text(encoding="utf-8"))
    cell = {**shipped["config"], "method": ["lora"]}
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({**shipped, "config": cell, "run_id": cell_id(cell)}), encoding="utf-8")
    assert reproduce.main([str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: method ['lora'] cannot be run here")
