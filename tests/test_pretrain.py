"""jobs.pretrain's command line: a bad --out is refused before training, the real command is recorded,
and a checkpoint of other settings is not thrown away silently."""
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.experiment import cpu_model, cpu_signature, numerics_environment
from core.models import spec_for
from jobs import pretrain

TINY = ["--steps", "2", "--batch", "8", "--warmup", "1", "--threads", "1", "--ckpt-every", "1"]


def _argv(tmp_path, out, *extra):
    return [*TINY, "--work", str(tmp_path / "work"), "--out", str(out), *extra]


def test_the_default_out_is_where_core_models_looks_for_the_weights_now(tmp_path, monkeypatch):
    """jobs.pretrain copied core.models.ASSET_DIR when first imported: imported by a test that had pointed it at a
    temporary folder (tests/test_world_check.py's run with every model's weights missing imports jobs.pretrain for
    its recipes), its default --out stayed in that folder for every later test of the session."""
    from core import models as model_zoo

    monkeypatch.setattr(model_zoo, "ASSET_DIR", tmp_path)
    weights = spec_for("worldclip-v2-a").shipped_weights
    assert pretrain.parse_args(["--model", "worldclip-v2-a"]).out == tmp_path / weights
    monkeypatch.undo()
    assert pretrain.parse_args([]).out == model_zoo.ASSET_DIR / spec_for("worldclip-tiny").shipped_weights


@pytest.mark.parametrize("out, match", [
    ("{tmp}/folder", "is a folder"),
    ("{tmp}/weights.pt", "must end in .safetensors"),
    ("{tmp}/a-file/weights.safetensors", "is a file, not a folder (the weights and their training log go in it)"),
    ("{tmp}/a-file/more/weights.safetensors", "cannot write in"),
    pytest.param("/proc/weights.safetensors", "cannot write in /proc", marks=pytest.mark.skipif(
        not Path("/proc/self").exists(), reason="needs Linux's /proc, unwritable even to root")),
])
def test_a_bad_out_is_refused_before_any_training(tmp_path, capsys, out, match):
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    assert pretrain.main(_argv(tmp_path, out.format(tmp=tmp_path))) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not (tmp_path / "work" / "ckpt.pt").exists(), "it trained before refusing --out"


def test_a_failed_save_keeps_the_training_and_says_how_to_save_it(tmp_path, capsys, caplog, monkeypatch):
    caplog.set_level(logging.INFO, "jobs.pretrain")
    (tmp_path / "folder").mkdir()
    monkeypatch.setattr(pretrain, "check_paths", lambda args: None)  # as if the folder appeared during training
    assert pretrain.main(_argv(tmp_path, tmp_path / "folder")) == 1  # trained first: exit 1, not 2
    err = capsys.readouterr().err
    assert "rerun the same command" in err and "Traceback" not in err
    assert pretrain.main(_argv(tmp_path, tmp_path / "w.safetensors")) == 0
    assert "resuming from step 2" in caplog.text and (tmp_path / "w.safetensors").exists()


def test_the_record_holds_the_command_line_it_was_run_with(tmp_path, monkeypatch):
    out = tmp_path / "my weights.safetensors"
    monkeypatch.setattr(sys, "argv", ["/somewhere/jobs/pretrain.py", *_argv(tmp_path, out)])
    assert pretrain.main() == 0
    command = json.loads(out.with_suffix(".train.json").read_text(encoding="utf-8"))["command"]
    assert command.startswith("python -m jobs.pretrain --steps 2 --batch 8 ")
    assert command.endswith(f"--out '{out}'")


def test_a_checkpoint_of_other_settings_is_named_and_kept(tmp_path, caplog):
    caplog.set_level(logging.INFO, "jobs.pretrain")
    out = tmp_path / "w.safetensors"
    assert pretrain.main(_argv(tmp_path, out)) == 0
    caplog.clear()
    assert pretrain.main(_argv(tmp_path, out, "--steps", "3")) == 0
    assert "not resuming" in caplog.text and "steps 2 -> 3" in caplog.text
    kept = list((tmp_path / "work").glob("ckpt.superseded*.pt"))
    assert len(kept) == 1 and str(kept[0]) in caplog.text
    assert torch.load(kept[0], weights_only=False)["state"]["step"] == 2
    caplog.clear()
    assert pretrain.main(_argv(tmp_path, out, "--steps", "3")) == 0
    assert "resuming from step 3" in caplog.text and "not resuming" not in caplog.text
    assert pretrain.main(_argv(tmp_path, out, "--lr", "2e-3")) == 0  # a second one does not replace the first
    assert sorted(p.name for p in (tmp_path / "work").glob("ckpt.superseded*.pt")) == [
        "ckpt.superseded-2.pt", "ckpt.superseded.pt"]
    assert "lr 0.001 -> 0.002, steps 3 -> 2" in caplog.text


def test_the_checkpoints_set_aside_are_counted_with_their_size_and_how_to_remove_them(tmp_path, caplog):
    """Every run of other settings keeps one more checkpoint (93 MB for worldclip-tiny), never removed: the
    warning says how much the folder holds and how to free it."""
    caplog.set_level(logging.INFO, "jobs.pretrain")
    out, work = tmp_path / "w.safetensors", tmp_path / "work"
    for seed in ("0", "1", "2"):
        caplog.clear()
        assert pretrain.main(_argv(tmp_path, out, "--seed", seed)) == 0
    size = sum(p.stat().st_size for p in work.glob("ckpt.superseded*.pt"))
    assert f"{work} now holds 2 checkpoint(s) set aside ({size / 1e6:.0f} MB)" in caplog.text
    assert f"(rm {work}/ckpt.superseded*.pt)" in caplog.text


def test_the_rm_the_note_gives_names_only_patterns_that_match(tmp_path):
    """The note gave both patterns whatever the folder held: zsh (macOS's shell) refuses a whole command with a
    pattern that matches nothing ('no matches found'), so the rm freed nothing; bash removed the rest and erred."""
    work = tmp_path / "my work"
    work.mkdir()
    (work / "ckpt.superseded-1.pt").write_bytes(b"x" * 2_000_000)
    assert pretrain.set_aside_note(work).endswith("(2 MB); delete those you will not resume "
                                                   f"(rm '{work}'/ckpt.superseded*.pt)")
    (work / "ckpt.unreadable.pt").write_bytes(b"")
    assert pretrain.set_aside_note(work).endswith(f"(rm '{work}'/ckpt.superseded*.pt '{work}'/ckpt.unreadable*.pt)")


@pytest.mark.parametrize("extra, message", [
    (["--lr", "inf"], "--lr must be a number in (0, 1]"), (["--lr", "1e38"], "--lr must be"),
    (["--lr", "0"], "--lr must be"), (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
    (["--weight-decay", "nan"], "--weight-decay must be"),
])
def test_bad_optimiser_settings_are_refused_before_training(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as stop:
        pretrain.main(_argv(tmp_path, tmp_path / "w.safetensors", *extra))
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def _records(folder):
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("failed-*.train.json"))]


def test_a_diverging_run_is_a_clear_error_with_a_failed_record(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pretrain, "contrastive_loss", lambda *args: torch.tensor(float("nan")))
    out = tmp_path / "w.safetensors"
    assert pretrain.main(_argv(tmp_path, out)) == 2
    err = capsys.readouterr().err
    assert "diverged at step 0 (loss nan); lower --lr (now 0.001)" in err and "Traceback" not in err
    (record,) = _records(tmp_path / "work")
    assert record["status"] == "failed" and record["error"].startswith("Diverged: pretraining diverged")
    assert record["git_revision"] and record["versions"]["torch"] and record["started_at"] <= record["ended_at"]
    assert not out.exists() and not out.with_suffix(".train.json").exists()


@pytest.mark.parametrize("content", [b"garbage\n", "foreign", "cut"])
def test_an_unreadable_checkpoint_is_kept_aside_and_training_starts_over(tmp_path, caplog, content):
    caplog.set_level(logging.INFO, "jobs.pretrain")
    out = tmp_path / "w.safetensors"
    work = tmp_path / "work"
    work.mkdir()
    if content == "foreign":
        torch.save({"x": 1}, work / "ckpt.pt")
    elif content == "cut":
        assert pretrain.main(_argv(tmp_path, out)) == 0
        data = (work / "ckpt.pt").read_bytes()
        (work / "ckpt.pt").write_bytes(data[:len(data) // 2])
    else:
        (work / "ckpt.pt").write_bytes(content)
    caplog.clear()
    assert pretrain.main(_argv(tmp_path, out)) == 0
    assert "cannot be resumed" in caplog.text and "starting from step 0" in caplog.text
    assert (work / "ckpt.unreadable.pt").exists()
    assert torch.load(work / "ckpt.pt", weights_only=False)["state"]["step"] == 2


def test_ctrl_c_says_which_step_is_kept_and_how_to_resume(tmp_path, monkeypatch, caplog, capsys):
    real_batch = pretrain.batch_for

    def ctrl_c_at(stop):
        def batch(args, step):
            if step == stop:
                raise KeyboardInterrupt
            return real_batch(args, step)
        return batch

    argv = [*_argv(tmp_path, tmp_path / "w.safetensors"), "--steps", "9", "--ckpt-every", "3"]
    monkeypatch.setattr(pretrain, "batch_for", ctrl_c_at(1))  # before the first checkpoint
    assert pretrain.main(argv) == 130
    assert (f"stopped before the first checkpoint of these settings (one every 3 steps, in {tmp_path / 'work'}): "
            "rerun the same command to start again") in caplog.text
    caplog.clear()
    monkeypatch.setattr(pretrain, "batch_for", ctrl_c_at(7))
    assert pretrain.main(argv) == 130
    assert (f"the checkpoint {tmp_path / 'work' / 'ckpt.pt'} holds step 6 of 9: rerun the same command to resume "
            "from there") in caplog.text
    assert capsys.readouterr().err.strip().endswith("interrupted")


def test_the_last_line_names_the_weights_and_their_training_log(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="jobs.pretrain")
    out = tmp_path / "w.safetensors"
    assert pretrain.main(_argv(tmp_path, out)) == 0
    last = [r.getMessage() for r in caplog.records if r.name == "jobs.pretrain"][-1]
    assert last.startswith(f"saved {out} (") and f"and its training log {tmp_path / 'w.train.json'} in " in last


@pytest.mark.slow
def test_a_resumed_run_logs_the_same_loss_curve_and_a_full_record(tmp_path, monkeypatch):
    steps = ["--steps", "27", "--ckpt-every", "5"]
    whole = tmp_path / "whole"
    assert pretrain.main([*_argv(whole, whole / "w.safetensors"), *steps]) == 0
    broken = tmp_path / "broken"
    real_batch = pretrain.batch_for

    def crash_at_12(args, step):
        if step == 12:
            raise KeyboardInterrupt
        return real_batch(args, step)

    monkeypatch.setattr(pretrain, "batch_for", crash_at_12)
    stamps = iter(f"2026-12-07T0{hour}:00:00+00:00" for hour in range(10))  # each session's start its own hour
    monkeypatch.setattr(pretrain, "_utc_now", lambda: next(stamps))
    assert pretrain.main([*_argv(broken, broken / "w.safetensors"), *steps]) == 130
    assert [r["status"] for r in _records(broken / "work")] == ["failed"]
    monkeypatch.setattr(pretrain, "batch_for", real_batch)
    assert pretrain.main([*_argv(broken, broken / "w.safetensors"), *steps]) == 0
    a, b = (json.loads((d / "w.train.json").read_text(encoding="utf-8")) for d in (whole, broken))
    # the record spans both sessions, as its wall_time_s does (started_at was the last session's)
    assert b["started_at"] == "2026-12-07T00:00:00+00:00" and b["ended_at"] == "2026-12-07T03:00:00+00:00"
    assert b["sessions_started_at"] == ["2026-12-07T00:00:00+00:00", "2026-12-07T02:00:00+00:00"]
    assert b["resumed_from_step"] == 10 and a["resumed_from_step"] == 0 and len(a["sessions_started_at"]) == 1
    assert [s for s, _ in a["loss_curve"]] == [25, 27]  # the last 2 steps are a point of their own
    assert np.allclose(a["loss_curve"], b["loss_curve"], atol=1e-6)  # was: the pre-crash steps dropped
    assert a["status"] == "ok" and a["git_revision"] and a["host_cpu"] and a["started_at"] <= a["ended_at"]
    # the machine named as grid records name it: a model trained on other kernels can round differently
    assert a["cpu"] == cpu_model() and a["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert a["cpu_signature"] == cpu_signature() and a["numerics_env"] == numerics_environment()


@pytest.mark.parametrize("failure, code, said", [
    (OSError(28, "No space left on device"), 1, "could not write"),  # trained first: exit 1, not 2
    (KeyboardInterrupt(), 130, "interrupted"),  # a Ctrl-C as the log is written
])
def test_a_failed_log_write_never_leaves_an_older_log_beside_new_weights(tmp_path, monkeypatch, capsys, failure, code,
                                                                         said):
    out = tmp_path / "w.safetensors"
    assert pretrain.main(_argv(tmp_path, out)) == 0
    real = pretrain.write_file_atomic

    def log_fails(path, data):
        if str(path).endswith(".train.json"):
            raise failure
        return real(path, data)

    monkeypatch.setattr(pretrain, "write_file_atomic", log_fails)
    assert pretrain.main(_argv(tmp_path, out, "--seed", "7")) == code
    assert said in capsys.readouterr().err
    assert out.exists() and not out.with_suffix(".train.json").exists()  # was: seed 0's log beside seed 7's weights


def test_a_run_that_fails_before_training_records_its_settings_and_seed(tmp_path, capsys, monkeypatch):
    # the settings (seed, steps, lr...) went into the record only once the model had loaded: a run whose model
    # failed to build left a failed record without its seed or config
    def no_model(*args, **kwargs):
        raise RuntimeError("no model config")

    monkeypatch.setattr(pretrain, "load_model", no_model)
    with pytest.raises(RuntimeError):
        pretrain.main(_argv(tmp_path, tmp_path / "w.safetensors", "--seed", "7"))
    (record,) = _records(tmp_path / "work")
    assert record["status"] == "failed" and record["error"] == "RuntimeError: no model config"
    assert record["settings"]["seed"] == 7 and {"steps", "batch", "lr", "warmup", "weight_decay"} <= set(record["settings"])


class _RunsCode:
    """A pickle that calls os.mkdir(path) as it loads: what an untrusted checkpoint can hold."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os
        return os.mkdir, (self.path,)


def test_a_checkpoint_that_would_run_code_is_refused_unrun(tmp_path, caplog):
    work, ran = tmp_path / "work", tmp_path / "code-ran"
    work.mkdir()
    torch.save({"settings": {}, "model": {}, "opt": {}, "state": {}, "x": _RunsCode(ran)}, work / "ckpt.pt")
    assert pretrain.load_checkpoint(work / "ckpt.pt") == {"why": "unreadable: UnpicklingError"}
    assert not ran.exists(), "loading the checkpoint ran the code in it"


def test_the_default_checkpoint_folder_is_the_repositorys_from_any_working_folder(tmp_path, monkeypatch):
    # it was relative to the working folder while the weights go to the repository's core/assets: a run
    # interrupted and started again from another folder found no checkpoint and trained from step 0
    from jobs import pretrain

    repo = Path(pretrain.__file__).resolve().parent.parent
    monkeypatch.chdir(tmp_path)
    assert pretrain.default_work("worldclip-tiny") == repo / ".cache" / "pretrain"
    assert pretrain.default_work("worldclip-v2-a") == repo / "jobs" / "checkpoints" / "worldclip-v2-a"


def test_ctrl_c_while_a_checkpoint_is_saved_leaves_no_cut_file_beside_the_last_one(tmp_path, monkeypatch, capsys):
    real, saves = torch.save, []

    def cut_at_the_second(obj, path):
        saves.append(path)
        if len(saves) == 2:
            Path(path).write_bytes(b"cut")  # part of the checkpoint reached the disk
            raise KeyboardInterrupt
        return real(obj, path)

    monkeypatch.setattr(pretrain.torch, "save", cut_at_the_second)
    assert pretrain.main(_argv(tmp_path, tmp_path / "w.safetensors")) == 130
    names = sorted(p.name for p in (tmp_path / "work").iterdir() if not p.name.startswith("failed-"))
    assert names == ["ckpt.pt"]  # was: a cut ckpt.tmp, as large as a checkpoint, beside it


def test_sigterm_ends_a_run_as_ctrl_c_does(tmp_path, monkeypatch, caplog, capsys):
    # a cluster's time limit sends SIGTERM: Python's default ended the run at once (exit 143) with no failed-run
    # record and no word of the checkpoint it could resume from, where Ctrl-C leaves both
    import os
    import signal

    class Unhandled(Exception):
        pass

    def unhandled(signum, frame):  # what the test sees if the job leaves SIGTERM to the handler it found
        raise Unhandled

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        real_batch = pretrain.batch_for

        def term_at_step_4(args, step):
            if step == 4:
                os.kill(os.getpid(), signal.SIGTERM)
            return real_batch(args, step)

        monkeypatch.setattr(pretrain, "batch_for", term_at_step_4)
        argv = [*_argv(tmp_path, tmp_path / "w.safetensors"), "--steps", "9", "--ckpt-every", "3"]
        assert pretrain.main(argv) == 130
        assert signal.getsignal(signal.SIGTERM) is unhandled  # the handler it found is back
    finally:
        signal.signal(signal.SIGTERM, previous)
    (record,) = _records(tmp_path / "work")
    assert record["status"] == "failed" and record["error"].startswith("KeyboardInterrupt")
    assert "holds step 3 of 9: rerun the same command to resume from there" in caplog.text
