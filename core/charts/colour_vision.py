"""Colours as people with colour-vision deficiency see them, and how far apart two colours look.

:func:`simulate` applies Machado, Oliveira and Fernandes (2009)'s model at full severity (dichromacy: protanopia,
deuteranopia, tritanopia) to linear sRGB; :func:`lab` converts sRGB to CIELAB (D65); :func:`ciede2000` is the
CIE's 2000 colour difference (Sharma, Wu and Dalal 2005's formulation). :func:`min_difference` is the smallest
difference between any two colours of a set, as each vision sees them: what :data:`core.charts.METHOD_PALETTE` is
checked against.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

#: Machado et al. (2009), severity 1.0: linear RGB -> linear RGB as a dichromat sees it.
CVD_MATRICES = {
    "protanopia": np.array([[0.152286, 1.052583, -0.204868],
                            [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779],
                            [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
VISIONS = ("normal", *CVD_MATRICES)

# sRGB (linear) -> CIE XYZ, D65 white (IEC 61966-2-1)
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_WHITE = _RGB_TO_XYZ @ np.ones(3)


def rgb(colour: str) -> np.ndarray:
    """'#rrggbb' as sRGB in [0, 1]; ValueError for anything else."""
    text = str(colour)
    if len(text) != 7 or text[0] != "#":
        raise ValueError(f"a colour must be written '#rrggbb', got {colour!r}")
    try:
        return np.array([int(text[i:i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255
    except ValueError:
        raise ValueError(f"a colour must be written '#rrggbb', got {colour!r}") from None


def _linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _encoded(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def simulate(colour: str, vision: str) -> np.ndarray:
    """``colour`` ('#rrggbb') as ``vision`` (one of :data:`VISIONS`) sees it, as sRGB in [0, 1]."""
    if vision not in VISIONS:
        raise ValueError(f"unknown vision {vision!r}; use one of {list(VISIONS)}")
    srgb = rgb(colour)
    if vision == "normal":
        return srgb
    return _encoded(CVD_MATRICES[vision] @ _linear(srgb))


def lab(srgb: Sequence[float]) -> np.ndarray:
    """sRGB in [0, 1] as CIELAB (L*, a*, b*), D65 white."""
    xyz = _RGB_TO_XYZ @ _linear(np.asarray(srgb, dtype=float)) / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def ciede2000(lab1: Sequence[float], lab2: Sequence[float]) -> float:
    """The CIEDE2000 difference of two CIELAB colours (kL = kC = kH = 1)."""
    l1, a1, b1 = (float(v) for v in lab1)
    l2, a2, b2 = (float(v) for v in lab2)
    c_mean = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_mean ** 7 / (c_mean ** 7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    dl, dc = l2 - l1, c2p - c1p
    if c1p * c2p == 0:
        dh = 0.0
    elif abs(h2p - h1p) <= 180:
        dh = h2p - h1p
    else:
        dh = h2p - h1p - 360 if h2p > h1p else h2p - h1p + 360
    dh_big = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    l_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hp_mean = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hp_mean = (h1p + h2p) / 2
    else:
        hp_mean = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(hp_mean - 30)) + 0.24 * math.cos(math.radians(2 * hp_mean))
         + 0.32 * math.cos(math.radians(3 * hp_mean + 6)) - 0.20 * math.cos(math.radians(4 * hp_mean - 63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / math.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * cp_mean, 1 + 0.015 * cp_mean * t
    r_t = (-2 * math.sqrt(cp_mean ** 7 / (cp_mean ** 7 + 25 ** 7))
           * math.sin(math.radians(60 * math.exp(-(((hp_mean - 275) / 25) ** 2)))))
    return math.sqrt((dl / s_l) ** 2 + (dc / s_c) ** 2 + (dh_big / s_h) ** 2
                     + r_t * (dc / s_c) * (dh_big / s_h))


def difference(colour1: str, colour2: str, vision: str = "normal") -> float:
    """How far apart two '#rrggbb' colours look to ``vision`` (CIEDE2000 of their simulations)."""
    return ciede2000(lab(simulate(colour1, vision)), lab(simulate(colour2, vision)))


def min_difference(colours: Iterable[str], vision: str = "normal") -> tuple[float, tuple[str, str] | None]:
    """The smallest :func:`difference` between two of ``colours`` as ``vision`` sees them, and that pair
    (inf and None for fewer than two colours)."""
    labs = [(c, lab(simulate(c, vision))) for c in dict.fromkeys(colours)]
    best, pair = math.inf, None
    for i, (c1, l1) in enumerate(labs):
        for c2, l2 in labs[i + 1:]:
            if (d := ciede2000(l1, l2)) < best:
                best, pair = d, (c1, c2)
    return best, pair
