"""The generated world: deterministic bytes, vocabulary coverage, task suite shape."""
import numpy as np
import pytest

from core.data import world
from core.data.registry import get_dataset, list_datasets, load_split


def test_regenerating_a_task_gives_identical_bytes():
    world.load_world_split.cache_clear()
    first = world.load_world_split("letters", "test").images.copy()
    world.load_world_split.cache_clear()
    second = world.load_world_split("letters", "test").images
    assert first.tobytes() == second.tobytes()
    cached = world.load_world_split("letters", "test").images
    assert cached is second  # the cache hands out the one array ...
    world.load_world_split.cache_clear()
    assert world.load_world_split("letters", "test").images is not cached  # ... until cleared: generated again


def test_pretraining_batches_are_deterministic_and_differ_by_step():
    a_img, a_cap = world.pretraining_batch(3, 7, 64)
    b_img, b_cap = world.pretraining_batch(3, 7, 64)
    c_img, _ = world.pretraining_batch(3, 8, 64)
    assert a_img.tobytes() == b_img.tobytes() and a_cap == b_cap
    assert a_img.tobytes() != c_img.tobytes()
    assert a_img.shape == (64, 32, 32, 3) and a_img.dtype == np.uint8


def test_every_prompt_word_occurs_in_pretraining_captions():
    vocab = world.vocabulary_words()
    missing = set()
    for task in world.TASKS:
        for name in task.class_names:
            prompt = task.template.format(c=name).lower().replace('"', " ").replace(":", " ")
            missing |= {w for w in prompt.split() if w not in vocab}
    assert not missing, f"prompt words never seen in pretraining: {missing}"


def test_suite_has_15_finetune_tasks_and_a_disjoint_ood_panel():
    assert len(world.FINETUNE_TASKS) >= 15
    assert 3 <= len(world.OOD_PANEL) <= 5
    assert not set(world.FINETUNE_TASKS) & set(world.OOD_PANEL)
    families = {world.get_world_task(n).family for n in world.FINETUNE_TASKS}
    assert len(families) >= 5, "tasks must differ in image distribution, not only in prompts"


@pytest.mark.parametrize("name", ["chart-trend", "bar-count", "scene-kind", "stripe-orientation"])
def test_task_labels_cover_all_classes(name):
    data = load_split(name, "train")
    assert len(data) == world.get_world_task(name).n_train
    assert set(np.unique(data.labels)) == set(range(len(data.class_names)))


def test_train_and_test_splits_differ():
    train, test = load_split("shape-kind", "train"), load_split("shape-kind", "test")
    assert train.images[:50].tobytes() != test.images[:50].tobytes()


def test_handwritten_task_never_uses_pretraining_digit_images():
    rng = np.random.default_rng(0)
    _, pre = world.W.render_handwritten(rng, 200, pool="pretrain")
    assert pre["digit"].shape == (200,)
    images, targets = world.W._handwritten()
    # pools are the even (pretraining) and odd (tasks) indices of load_digits
    assert len(images) == len(targets) == 1797


def test_registry_knows_world_and_torchvision_and_rejects_unknown():
    names = {d.name for d in list_datasets()}
    assert {"shape-kind", "scene-kind", "cifar100", "eurosat"} <= names
    assert get_dataset("eurosat").template == "a centered satellite photo of a {c}"
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        get_dataset("nope")
    with pytest.raises(ValueError, match="split must be"):
        load_split("shape-kind", "val")


def test_image_folder_dataset(tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (10, 12), (i * 40, 0, 0)).save(tmp_path / "train" / cls / f"{i}.png")
    data = load_split(f"folder:{tmp_path}", "train")
    assert data.class_names == ["cat", "dog"] and list(data.labels) == [0, 0, 0, 1, 1, 1]


@pytest.fixture
def fake_report(tmp_path, monkeypatch):
    """world_report with cheap fake rows and its asset folder in tmp_path (the real card is never touched)."""
    from core.data.world import OOD_PANEL, TASKS
    from jobs import world_report

    calls = []

    def fake_rows(model):
        calls.append(model)
        return [{"task": t.name, "family": t.family, "classes": 2, "chance": 50.0, "zs_acc": 60.0, "iimm": 0.5,
                 "inter_modal": 0.3, "intra_image": 0.7, "ood_panel": t.name in OOD_PANEL, "template": "{c}",
                 "model": f"{model} (fake)"} for t in TASKS]

    monkeypatch.setattr(world_report, "task_rows", fake_rows)
    monkeypatch.setattr("core.models.ASSET_DIR", tmp_path)  # read by write_card at each call
    return world_report, calls


@pytest.mark.parametrize("model", ["worldclip-v2-a", "worldclip-tiny-random"])
def test_world_report_card_is_only_worldclip_tinys(fake_report, tmp_path, capsys, model):
    world_report, calls = fake_report
    assert world_report.main(["--model", model, "--card"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --card writes the card of worldclip-tiny") and model in err
    assert not calls and not list(tmp_path.iterdir())  # refused before any embedding, nothing written
    with pytest.raises(ValueError, match="worldclip-tiny"):
        world_report.write_card(world_report.task_rows(model), model)
    assert not list(tmp_path.iterdir())


def test_world_report_card_of_worldclip_tiny_still_written(fake_report, tmp_path):
    world_report, calls = fake_report
    assert world_report.main(["--model", "worldclip-tiny", "--card"]) == 0 and calls == ["worldclip-tiny"]
    assert "# Model card: worldclip-tiny" in (tmp_path / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert (tmp_path / "worldclip-tiny_world-v1.tasks.json").is_file()


@pytest.mark.parametrize("nth", [1, 2])
def test_world_report_card_and_task_json_survive_a_full_disk(fake_report, tmp_path, monkeypatch, nth):
    from tests.fixtures import disk_full_from

    world_report, _ = fake_report
    card, tasks = tmp_path / "MODEL_CARD.md", tmp_path / "worldclip-tiny_world-v1.tasks.json"
    card.write_text("old card\n", encoding="utf-8")
    tasks.write_text("[]\n", encoding="utf-8")
    disk_full_from(monkeypatch, nth)  # 1: the card's write fails; 2: the card is staged, the task JSON's fails
    assert world_report.main(["--model", "worldclip-tiny", "--card"]) == 1  # the table was made: exit 1, not 2
    assert tasks.read_text(encoding="utf-8") == "[]\n" and sorted(p.name for p in tmp_path.iterdir()) == sorted([card.name, tasks.name])
    assert card.read_text(encoding="utf-8") == "old card\n"  # was, at 2: a new card beside the old rows


@pytest.mark.parametrize("model, says", [("worldclip-tiny-random", "RANDOM WEIGHTS"),
                                         ("worldclip-tiny", "trained by jobs.pretrain on the generated world")])
def test_world_report_table_names_its_model_and_its_weights(fake_report, capsys, model, says):
    # the printed table of zero-shot accuracy and IIMM named no model: a random-weight model's numbers
    # read like the shipped model's
    world_report, _ = fake_report
    assert world_report.main(["--model", model]) == 0
    out = capsys.readouterr().out
    head = out[:out.index("| task |")]
    assert f"Model: {model}, worldclip-tiny (" in head and says in head


def test_the_card_reads_the_training_log_where_the_weights_folder_now_is(tmp_path, monkeypatch):
    """jobs.pretrain writes its weights and training log to core.models.ASSET_DIR (its --out default), read at each
    call as core.embed and jobs.world2_card read it; jobs.world_report copied it at import, so with the folder moved
    the card gave the old folder's loss curve and was written there."""
    import json

    from core import models as model_zoo
    from core.data.world import TASKS
    from jobs import world_report

    monkeypatch.setattr(model_zoo, "ASSET_DIR", tmp_path)
    (tmp_path / "worldclip-tiny_world-v1.train.json").write_text(json.dumps(
        {"loss_curve": [[0, 9.87], [200, 6.54]], "steps": 200}), encoding="utf-8")
    written = {}
    monkeypatch.setattr(world_report, "write_files_together", written.update)  # nothing written, wherever
    rows = [{"task": t.name, "family": t.family, "classes": 2, "chance": 50.0, "zs_acc": 60.0, "iimm": 0.5,
             "inter_modal": 0.3, "intra_image": 0.7, "ood_panel": False, "template": "{c}",
             "model": "worldclip-tiny (fake)"} for t in TASKS]
    assert world_report.write_card(rows, "worldclip-tiny") == tmp_path / "MODEL_CARD.md"
    assert set(written) == {tmp_path / "MODEL_CARD.md", tmp_path / "worldclip-tiny_world-v1.tasks.json"}
    assert "0: 9.87 → 200: 6.54" in written[tmp_path / "MODEL_CARD.md"]


def test_a_misspelt_dataset_world_task_or_source_is_told_the_closest_name():
    # the errors listed every known name (some fifty datasets) but not the one meant
    for typed, meant in (("shape-knd", "shape-kind"), ("CIFAR100", "cifar100"), ("cifar-100", "cifar100")):
        with pytest.raises(ValueError, match=rf"unknown dataset '{typed}' \(did you mean '{meant}'\?\); known: "):
            get_dataset(typed)
    with pytest.raises(ValueError, match=r"unknown world task 'shape_kind' \(did you mean 'shape-kind'\?\); known: "):
        world.get_world_task("shape_kind")
    with pytest.raises(ValueError, match=r"unknown dataset source 'World' \(did you mean 'world'\?\); use one of"):
        list_datasets("World")
    with pytest.raises(ValueError, match=r"unknown dataset 'zzzz'; known: "):
        get_dataset("zzzz")  # nothing close: no guess


def test_a_world_task_with_a_misspelt_knob_is_refused_when_it_is_made():
    # 'clutterr' passed and failed when the task was first drawn: "render_shapes() got an unexpected keyword argument"
    with pytest.raises(ValueError, match=r"world task 'x': family 'shapes' has no knob 'clutterr' \(did you mean "
                                         r"'clutter'\?\); its renderer takes clutter, noise"):
        world.WorldTask("x", "shapes", "shape", ("a", "b"), "a {c}", {"clutterr": 1.0})
