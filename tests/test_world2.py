"""World v2: v1 untouched, seeded coverage, caption rates, prompt words covered, task suite shape."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from core.data import world, world2
from core.data.world2 import coverage, suites
from core.data.world2.subworlds import BY_NAME, CAPTION_RATES, SUBWORLDS, caption_rates

# Pinned before world v2 existed (the v1 commit), so a change to v1's bytes cannot pass unnoticed.
V1_DIGEST = "fc442c2d2df8a86595ce95bc7f86c439caea6d248e6a2fd039fa688f19d411d9"
# Pinned when world v2 was frozen for pretraining: prompts feed the tag pool, so editing a task's
# prompt would silently change the pretraining data of the shipped world-v2 models. The pin is split:
# tag vocabulary, captions and sub-world draws are integer work and pinned exactly. The images go
# through cos/arctan2 and hard thresholds, and a byte digest of them pinned on one machine failed on
# another (same code; numpy 2.2-2.4 alike; this one has no AVX-512, where numpy's sin/cos/arctan2 take
# other code paths): a last-bit difference flips a pixel at a shape's edge. So each image's mean pixel
# value is pinned to 1 level (about four pixels flipped from black to white in a 32 x 32 image).
V2_TEXT_DIGEST = "18e1fca9cea4a20409b68b146f41f0e4619a3fa0029aed5dd22935d7714ba4df"
V2_IMAGE_MEANS = Path(__file__).with_name("world2_frozen.json")


def _digest_v1() -> str:
    h = hashlib.sha256()
    for step in (0, 5):
        images, captions = world.pretraining_batch(0, step, 128)
        h.update(images.tobytes())
        h.update("|".join(captions).encode())
    for task in ("chart-trend", "bar-count", "chart-type", "letters"):
        data = world.load_world_split(task, "test")
        h.update(data.images.tobytes())
        h.update(data.labels.tobytes())
    return h.hexdigest()


def test_world_v1_is_byte_for_byte_unchanged():
    assert _digest_v1() == V1_DIGEST


def test_world_v2_pretraining_data_is_frozen():
    h = hashlib.sha256("|".join(suites.tag_vocabulary()).encode())
    pinned = json.loads(V2_IMAGE_MEANS.read_text(encoding="utf-8"))["image_means"]
    for name, mix in (("long-tail-p0", world2.long_tail(0)), ("long-tail-p1", world2.long_tail(1)),
                      ("uniform", world2.uniform())):
        images, captions, source = world2.pretraining_batch(mix, 0, 3, 64)
        h.update("|".join(captions).encode())
        h.update(source.astype(np.int64).tobytes())
        means = images.reshape(len(images), -1).mean(axis=1)
        assert np.abs(means - np.array(pinned[name])).max() <= 1.0, name
    assert h.hexdigest() == V2_TEXT_DIGEST


def test_long_tail_spans_100x_with_two_absent_and_comes_from_the_seed():
    shares = sorted(coverage.LEVELS, reverse=True)
    present = [s for s in shares if s > 0]
    assert len(present) == 8 and len(shares) - len(present) == 2
    assert present[0] / present[-1] == pytest.approx(100.0)
    assert sum(shares) == pytest.approx(1.0)
    mix = world2.long_tail(0)
    perm = np.random.default_rng(0).permutation(len(SUBWORLDS))
    assert [mix.levels[s.name] for s in SUBWORLDS] == list(perm)
    assert mix.levels != world2.long_tail(1).levels
    assert len(mix.present()) == 8
    assert set(world2.uniform().shares.values()) == {0.1}
    with pytest.raises(ValueError, match="unknown coverage mix"):
        world2.mix_by_name("long-tail")


@pytest.mark.parametrize("typed, meant", [("unifrom", "uniform"), ("Uniform", "uniform"),
                                           ("long-tail-01", "long-tail-p1"), ("long_tail_p2", "long-tail-p2")])
def test_a_misspelt_mix_or_task_is_told_the_closest_name(typed, meant):
    # 'long-tail-p01' and 'unifrom' were only told the two forms; a task typo every one of the 46 task names
    with pytest.raises(ValueError, match=rf"unknown coverage mix '{typed}' \(did you mean '{meant}'\?\): use "
                                         r"'uniform' or 'long-tail-p<seed>' \(the seed in digits 0-9, no leading"):
        world2.mix_by_name(typed)
    with pytest.raises(ValueError, match=r"unknown world-v2 task 'w2-sign-arow' \(did you mean 'w2-sign-arrow'\?\)"):
        world2.get_task("w2-sign-arow")


def test_a_misspelt_long_tail_mix_with_a_long_seed_is_still_named():
    # the suggestion read its digits with int(): past Python's 4,300-digit limit the error became int()'s 'Exceeds
    # the limit (4300 digits) for integer string conversion', naming no mix
    typed = "long_tail_p" + "0" + "9" * 5000
    with pytest.raises(ValueError, match=r"unknown coverage mix 'long_tail_p09{5000}' \(did you mean "
                                         r"'long-tail-p9{5000}'\?\): use 'uniform'"):
        world2.mix_by_name(typed)


@pytest.mark.parametrize("mix", ["uniform", None])
def test_a_batch_of_a_mix_given_by_name_is_told_how_to_make_one(mix):
    # the mix's name failed with "'str' object has no attribute 'shares'"
    with pytest.raises(ValueError, match=rf"mix must be a CoverageMix, got {mix!r}; make one with mix_by_name\("):
        world2.pretraining_batch(mix, 0, 0, 4)


def test_batches_follow_the_mix_and_never_show_an_absent_sub_world():
    mix = world2.long_tail(0)
    absent = {k for k, s in enumerate(SUBWORLDS) if mix.shares[s.name] == 0}
    seen = np.concatenate([world2.pretraining_batch(mix, 1, step, 256)[2] for step in range(8)])
    assert not absent & set(seen.tolist())
    top = max(range(len(SUBWORLDS)), key=lambda k: mix.shares[SUBWORLDS[k].name])
    assert abs(np.mean(seen == top) - mix.shares[SUBWORLDS[top].name]) < 0.05


def test_caption_rates_are_drawn_from_the_four_levels_for_every_attribute():
    rates = caption_rates()
    assert set(rates) == {(s.name, a) for s in SUBWORLDS for a in s.attributes}
    assert set(rates.values()) <= set(CAPTION_RATES)
    assert rates == caption_rates()


@pytest.mark.slow
@pytest.mark.parametrize("mix_name", ["long-tail-p0", "long-tail-p1", "uniform"])
def test_every_prompt_word_occurs_in_pretraining_captions(mix_name):
    mix = world2.mix_by_name(mix_name)
    words: set[str] = set()
    for step in range(60):
        words.update(w for c in world2.pretraining_batch(mix, 0, step, 256)[1] for w in suites.prompt_words(c))
    missing = {w for t in world2.TASKS for c in t.class_names for w in suites.prompt_words(t.template.format(c=c))
               if w not in words}
    assert not missing, f"prompt words never seen in pretraining captions: {sorted(missing)}"


def test_suite_has_40_tasks_4_per_sub_world_with_balanced_class_counts():
    assert len(world2.FINETUNE_TASKS) >= 40
    for sub in SUBWORLDS:
        sizes = [len(t.class_names) for t in suites.FINETUNE if t.subworld == sub.name]
        assert len(sizes) >= 4, sub.name
        assert min(sizes) == 2 and any(4 <= s <= 7 for s in sizes) and max(sizes) >= 10, (sub.name, sizes)
    assert all(t.n_train >= 2000 for t in suites.FINETUNE)


def test_ood_panel_is_six_held_out_tasks_from_model_a_most_common_sub_worlds():
    panel = [world2.get_task(n) for n in world2.OOD_PANEL_TASKS]
    assert len(panel) >= 6 and not set(world2.OOD_PANEL_TASKS) & set(world2.FINETUNE_TASKS)
    top = world2.long_tail(suites.A_PERMUTATION_SEED).by_share()[:6]
    assert [t.subworld for t in panel] == top


def test_compound_and_subset_labels_match_the_rendered_attributes():
    task = world2.get_task("w2-sign-colour-shape")  # 3 colours x 4 shapes, row-major
    images, attrs = BY_NAME["signs"].render(np.random.default_rng(5), 300)
    rows, labels = suites._labels_of(task, attrs)
    for r, label in zip(rows, labels):
        colour, shape = task.class_names[label].split()
        assert BY_NAME["signs"].attributes["colour"][attrs["colour"][r]] == colour
        assert BY_NAME["signs"].attributes["shape"][attrs["shape"][r]] == shape
    kept = {"red", "green", "blue"}
    dropped = [r for r in range(300) if BY_NAME["signs"].attributes["colour"][attrs["colour"][r]] not in kept]
    assert not set(dropped) & set(rows.tolist()) and len(rows) + len(dropped) == 300


def test_task_split_is_deterministic_and_covers_every_class():
    suites.load_split.cache_clear()
    first = world2.load_split("w2-letters-x-o", "test")
    suites.load_split.cache_clear()
    second = world2.load_split("w2-letters-x-o", "test")
    assert world2.load_split("w2-letters-x-o", "test").images is second.images  # cached: the one array ...
    suites.load_split.cache_clear()
    assert world2.load_split("w2-letters-x-o", "test").images is not second.images  # ... until cleared
    assert first.images.tobytes() == second.images.tobytes() and len(first) == 800
    assert set(np.unique(first.labels)) == {0, 1} and first.class_names == ["x", "o"]
    with pytest.raises(ValueError, match="unknown world-v2 task"):
        world2.get_task("letters")
