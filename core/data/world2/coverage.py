"""How much of each sub-world pretraining sees: the seeded long tail and the uniform control.

Long tail: eight sub-worlds get geometric shares spanning exactly 100x (q = 100^(-1/7), normalised:
48.5, 25.1, 13.0, 6.7, 3.5, 1.8, 0.9, 0.5 %) and two are absent. Which sub-world gets which level is
``numpy.random.default_rng(permutation_seed).permutation(10)`` over the sub-worlds in their fixed
order (``subworlds.SUBWORLDS``): never chosen by hand. Uniform: every sub-world 10 %.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.world2.subworlds import SUBWORLDS
from core.text import did_you_mean

N_PRESENT = 8
LEVELS: tuple[float, ...] = tuple(float(s) for s in
                                  (100.0 ** (-np.arange(N_PRESENT) / (N_PRESENT - 1)))
                                  / (100.0 ** (-np.arange(N_PRESENT) / (N_PRESENT - 1))).sum()) + (0.0, 0.0)


@dataclass(frozen=True)
class CoverageMix:
    """A pretraining mix: sub-world -> share (sums to 1) and coverage level (0 = most common; 8, 9 = absent;
    None for the uniform control)."""

    name: str
    shares: dict[str, float]
    levels: dict[str, int | None]

    def __post_init__(self) -> None:
        if set(self.shares) != {s.name for s in SUBWORLDS}:
            raise ValueError("a coverage mix must give a share to every sub-world")
        if any(v < 0 for v in self.shares.values()) or not np.isclose(sum(self.shares.values()), 1.0):
            raise ValueError("shares must be non-negative and sum to 1")

    def present(self) -> list[str]:
        return [s for s, v in self.shares.items() if v > 0]

    def by_share(self) -> list[str]:
        """Sub-worlds from the most to the least common (ties in the fixed sub-world order)."""
        return sorted(self.shares, key=lambda s: -self.shares[s])


def long_tail(permutation_seed: int) -> CoverageMix:
    """The long-tailed mix whose level assignment is the seeded permutation."""
    if isinstance(permutation_seed, bool) or not isinstance(permutation_seed, int) or permutation_seed < 0:
        raise ValueError(f"permutation_seed must be a non-negative int, got {permutation_seed!r}")
    perm = np.random.default_rng(permutation_seed).permutation(len(SUBWORLDS))
    shares = {s.name: LEVELS[int(level)] for s, level in zip(SUBWORLDS, perm, strict=True)}
    return CoverageMix(f"long-tail-p{permutation_seed}", shares,
                       {s.name: int(lv) for s, lv in zip(SUBWORLDS, perm, strict=True)})


def uniform() -> CoverageMix:
    """The control: every sub-world present with the same share."""
    share = 1.0 / len(SUBWORLDS)
    return CoverageMix("uniform", {s.name: share for s in SUBWORLDS}, {s.name: None for s in SUBWORLDS})


def _closest_mix(name: object) -> str:
    """`` (did you mean 'x'?)`` for a mix name with a typo ('unifrom', 'long-tail-01', 'long_tail_p1'), else ""."""
    digits = "".join(ch for ch in str(name) if ch.isdigit())
    if str(name).casefold().startswith(("long", "tail")) and digits.isascii() and digits:
        return f" (did you mean 'long-tail-p{digits.lstrip('0') or '0'}'?)"  # not int(): 4,300 digits at most
    return did_you_mean(name, ("uniform",))


def mix_by_name(name: str) -> CoverageMix:
    """'uniform' or 'long-tail-p<seed>', the seed in ASCII digits without leading zeros, so that a mix has
    one name (``mix_by_name(name).name == name``): 'long-tail-p01', or a 1 in another script's digits,
    used to give the mix named 'long-tail-p1'."""
    if not isinstance(name, str):
        raise ValueError(f"unknown coverage mix {name!r}{_closest_mix(name)}: use 'uniform' or 'long-tail-p<seed>' (the "
                     "seed in digits 0-9, no leading zeros)")
    if name == "uniform":
        return uniform()
    seed = name.removeprefix("long-tail-p")
    if name.startswith("long-tail-p") and seed.isascii() and seed.isdigit() and str(int(seed)) == seed:
        return long_tail(int(seed))
    raise ValueError(f"unknown coverage mix {name!r}{_closest_mix(name)}: use 'uniform' or 'long-tail-p<seed>' (the "
                     "seed in digits 0-9, no leading zeros)")
