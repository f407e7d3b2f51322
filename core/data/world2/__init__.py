"""World v2: a long-tailed generated world for testing whether IIMM tracks distance from pretraining.

Ten sub-worlds (``subworlds``: v1's seven + signs, cells, sketches), a pretraining mix whose coverage of
each sub-world is set by a seeded permutation of long-tail levels or is uniform (``coverage``), per
attribute caption rates drawn once for the world, and a suite of 40 fine-tuning tasks plus a six-task
out-of-domain panel (``suites``). world-v1 (``core.data.world``) is untouched and stays reproducible.
"""
from __future__ import annotations

import numpy as np

from core.data.world import check_batch_args
from core.data.world2.coverage import CoverageMix, long_tail, mix_by_name, uniform
from core.data.world2.subworlds import BY_NAME, SUBWORLDS, caption_rates, write_captions
from core.data.world2.suites import (FINETUNE_TASKS, OOD_PANEL_TASKS, TASKS, get_task,
                                     load_split, tag_vocabulary)

__all__ = ["CoverageMix", "FINETUNE_TASKS", "OOD_PANEL_TASKS", "SUBWORLDS", "TASKS", "get_task", "load_split",
           "long_tail", "mix_by_name", "pretraining_batch", "uniform"]


def pretraining_batch(mix: CoverageMix, seed: int, step: int, batch_size: int,
                      ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """One batch of (images (B, 32, 32, 3) uint8, captions, sub-world index (B,)), deterministic in
    (mix, seed, step). Sub-world counts are multinomial in the mix's shares. ValueError for a mix that is no
    CoverageMix, a negative or fractional seed or step, or a batch_size below 1."""
    if not isinstance(mix, CoverageMix):  # its name ('uniform') failed on "'str' object has no attribute 'shares'"
        raise ValueError(f"mix must be a CoverageMix, got {mix!r}; make one with mix_by_name('uniform' or "
                         "'long-tail-p<seed>'), long_tail(seed) or uniform()")
    check_batch_args(seed, step, batch_size)
    rng = np.random.default_rng([seed, step])
    rates = caption_rates()
    counts = rng.multinomial(batch_size, [mix.shares[s.name] for s in SUBWORLDS])
    images, captions, source = [], [], []
    for k, (sub, n) in enumerate(zip(SUBWORLDS, counts, strict=True)):
        if n == 0:
            continue
        im, attrs = sub.render(rng, int(n), **sub.pretrain_knobs(rng))
        images.append(im)
        captions.extend(write_captions(sub, attrs, rng, rates, tag_vocabulary()))
        source.append(np.full(int(n), k))
    order = rng.permutation(batch_size)
    return (np.concatenate(images)[order], [captions[i] for i in order], np.concatenate(source)[order])
