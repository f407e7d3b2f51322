"""jobs.pretrain's command line: a bad --out is refused before training, the real command is recorded,
and a checkpoint of other settings is not thrown away silently."""
import json
import logging
import sys
from pathlib import Path

import pytest
import torch

from jobs import pretrain

TINY = ["--steps", "2", "--batch", "8", "--warmup", "1", "--threads", "1", "--ckpt-every", "1"]


def _argv(tmp_path, out, *extra):
    return [*TINY, "--work", str(tmp_path / "work"), "--out", str(out), *extra]


@pytest.mark.parametrize("out, match", [
    ("{tmp}/folder", "is a folder"),
    ("{tmp}/weights.pt", "must end in .safetensors"),
    ("{tmp}/a-file/weights.safetensors", "is not a folder"),
    ("{tmp}/a-file/more/weights.safetensors", "cannot write in"),
    pytest.param("/proc/weights.safetensors", "cannot write in /proc", marks=pytest.mark.skipif(
        not Path("/proc/self").exists(), reason="needs Linux's /proc, unwritable even to root")),
])
def test_a_bad_out_is_refused_before_any_training(tmp_path, capsys, out, match):
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    assert pretrain.main(_argv(tmp_path, out.format(tmp=tmp_path))) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not (tmp_path / "work" / "ckpt.pt").exists(), "it trained before refusing --out"


def test_a_failed_save_keeps_the_training_and_says_how_to_save_it(tmp_path, capsys, caplog, monkeypatch):
    caplog.set_level(logging.INFO, "jobs.pretrain")
    (tmp_path / "folder").mkdir()
    monkeypatch.setattr(pretrain, "check_paths", lambda args: None)  # as if the folder appeared during training
    assert pretrain.main(_argv(tmp_path, tmp_path / "folder")) == 2
    err = capsys.readouterr().err
    assert "rerun the same command" in err and "Traceback" not in err
    assert pretrain.main(_argv(tmp_path, tmp_path / "w.safetensors")) == 0
    assert "resuming from step 2" in caplog.text and (tmp_path / "w.safetensors").exists()


def test_the_record_holds_the_command_line_it_was_run_with(tmp_path, monkeypatch):
    out = tmp_path / "my weights.safetensors"
    monkeypatch.setattr(sys, "argv", ["/somewhere/jobs/pretrain.py", *_argv(tmp_path, out)])
    assert pretrain.main() == 0
    command = json.loads(out.with_suffix(".train.json").read_text())["command"]
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
