"""The generated worlds are reproducible data: loading them leaves a caller's random streams alone, a
per-process cache cannot be edited by one caller for the next, and odd arguments get clear errors."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data import registry, world, world2

ROOT = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: the first import of a lazily imported dependency is what is checked,
# and in the test process another test may have imported it already.
_GLOBAL_STREAMS = """
import pickle, random
import numpy as np, torch
random.seed(0); np.random.seed(0); torch.manual_seed(0)
before = (pickle.dumps(random.getstate()), pickle.dumps(np.random.get_state()), torch.get_rng_state().clone())
from core.data import registry, world, world2
registry.load_split("handwritten-digits", "test", max_items=2)
registry.load_split("w2-handwritten-0-1", "test", max_items=2)
world.W.render_letters(np.random.default_rng(0), 2)
world2.pretraining_batch(world2.uniform(), 0, 0, 32)
after = (pickle.dumps(random.getstate()), pickle.dumps(np.random.get_state()), torch.get_rng_state())
print("random", before[0] == after[0], "numpy", before[1] == after[1], "torch", bool(torch.equal(before[2], after[2])))
"""


def test_loading_the_world_leaves_the_global_random_streams_alone():
    out = subprocess.run([sys.executable, "-c", _GLOBAL_STREAMS], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["random", "True", "numpy", "True", "torch", "True"]


@pytest.mark.parametrize("load, name", [(world.load_world_split, "shape-kind"),
                                        (world2.load_split, "w2-letters-x-o")])
def test_a_callers_edit_of_a_cached_split_does_not_reach_the_next_caller(load, name):
    first = load(name, "test")
    labels, classes, meta = first.labels.copy(), list(first.class_names), dict(first.meta)
    first.labels[0] = 1 - first.labels[0]
    first.class_names[0] = "edited"
    first.meta["split"] = "edited"
    again = load(name, "test")
    assert np.array_equal(again.labels, labels) and again.class_names == classes and again.meta == meta
    assert again.prompts[0] != first.template.format(c="edited")
    assert np.array_equal(registry.load_split(name, "test").labels, labels)
    assert not first.images.flags.writeable  # shared between callers, so nobody may write it


@pytest.mark.parametrize("max_items", [0, -1, -600, 2.0, 2.5, "3", True, float("nan")])
def test_load_split_refuses_a_max_items_that_is_not_a_positive_whole_number(max_items):
    # 0 and negative numbers gave an empty split, 2.0 an IndexError, nan the whole split
    with pytest.raises(ValueError, match="max_items must be a positive whole number"):
        registry.load_split("shape-kind", "test", max_items=max_items)


def test_load_split_keeps_max_items_within_and_beyond_the_split():
    assert len(registry.load_split("shape-kind", "test", max_items=np.int64(3))) == 3
    assert len(registry.load_split("shape-kind", "test", max_items=1)) == 1
    assert len(registry.load_split("shape-kind", "test", max_items=10**9)) == 600


@pytest.mark.parametrize("make", [world.pretraining_batch,
                                  lambda *args: world2.pretraining_batch(world2.uniform(), *args)])
@pytest.mark.parametrize("args, arg", [((0, 0, 0), "batch_size"), ((0, 0, 2.5), "batch_size"),
                                       ((0, 0, True), "batch_size"), ((-1, 0, 4), "seed"),
                                       ((0.5, 0, 4), "seed"), ((None, 0, 4), "seed"), ((0, -1, 4), "step")])
def test_pretraining_batches_refuse_odd_arguments_by_name(make, args, arg):
    # v1's batch of 0 raised "need at least one array to concatenate", a batch of 2.5 an AxisError in both
    with pytest.raises(ValueError, match=f"{arg} must be a whole number"):
        make(*args)


def test_pretraining_batches_take_numpy_integers():
    images, captions = world.pretraining_batch(np.int64(0), np.int64(1), np.int64(3))
    assert images.shape == (3, 32, 32, 3) and len(captions) == 3
    assert np.array_equal(images, world.pretraining_batch(0, 1, 3)[0])


@pytest.mark.parametrize("bad", [None, 3, ["shape-kind"], ("train",)])
def test_names_and_splits_that_are_not_strings_get_the_usual_error(bad):
    # these raised AttributeError ('NoneType' has no attribute 'startswith') or, through the per-process
    # cache, TypeError: unhashable type: 'list'
    for call, says in ((lambda: world.load_world_split(bad, "test"), "unknown world task"),
                       (lambda: world2.load_split(bad, "test"), "unknown world-v2 task"),
                       (lambda: world.load_world_split("shape-kind", bad), "split must be"),
                       (lambda: world2.load_split("w2-letters-x-o", bad), "split must be"),
                       (lambda: registry.load_split(bad, "test"), "dataset name must be a string"),
                       (lambda: registry.get_dataset(bad), "dataset name must be a string"),
                       (lambda: world2.mix_by_name(bad), "unknown coverage mix")):
        with pytest.raises(ValueError, match=says):
            call()
    assert registry.train_size(bad) is None


@pytest.mark.parametrize("per_class", [2.5, 2.0, "2", True])
def test_example_zip_refuses_a_per_class_that_is_not_a_whole_number(per_class):
    from core.data.example import example_sample_zip

    # 2.5 raised "slice indices must be integers", "2" a TypeError comparing str and int, True gave 1
    with pytest.raises(ValueError, match="per_class must be at least 1 and a whole number"):
        example_sample_zip(per_class=per_class)


@pytest.mark.parametrize("name", ["long-tail-p01", "long-tail-p\u0661", "long-tail-p+1", "long-tail-p 1",
                                  "long-tail-p\u00b2"])  # a superscript 2: isdigit() but int() refuses it
def test_a_coverage_mix_has_one_name(name):
    # each of these gave the mix named 'long-tail-p1' (or a name that is not its own)
    with pytest.raises(ValueError, match="unknown coverage mix"):
        world2.mix_by_name(name)
    assert world2.mix_by_name("long-tail-p1").name == "long-tail-p1"
    assert world2.mix_by_name("long-tail-p10").name == "long-tail-p10"


def test_long_tail_refuses_a_bool_seed():
    with pytest.raises(ValueError, match="permutation_seed must be a non-negative int"):
        world2.long_tail(True)  # gave a mix named 'long-tail-pTrue'
