"""Vectorised renderers of the generated world's sub-worlds (32x32 RGB, uint8).

Each ``render_<family>(rng, n, **knobs)`` returns ``(images, attrs)``: images of shape
(n, 32, 32, 3) uint8 and a dict of integer attribute arrays (indices into the vocabularies
below). Knobs (clutter, noise, contrast, ...) shift the image distribution of a task away
from pretraining, which is how task difficulty is set. Everything is drawn from ``rng``
only, so the same seed gives the same bytes.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

SIZE = 32
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
RGB = np.array([(215, 40, 40), (40, 165, 60), (45, 75, 215), (235, 205, 40), (140, 55, 180), (245, 135, 30)],
               dtype=np.float32)
SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
SIZES = ("small", "large")
COUNTS = ("one", "two", "three", "four")
POSITIONS = ("left", "right", "top", "bottom")
PATTERNS = ("striped", "checkered", "dotted", "grid", "wavy", "zigzag")
ORIENTATIONS = ("horizontal", "vertical", "diagonal")
SCALES = ("fine", "coarse")
LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
DIGITS = tuple("0123456789")
LANDS = ("forest", "lake", "river", "desert", "farmland", "city", "snowfield")
CHARTS = ("bar chart", "line chart", "pie chart", "scatter plot")
TRENDS = ("up", "down")
BAR_COUNTS = ("three", "four", "five", "six")

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
#: What every renderer returns: images (n, 32, 32, 3) uint8 and attribute name -> int64 indices, shape (n,).
Rendered = tuple[np.ndarray, dict[str, np.ndarray]]


def _jitter_colour(rng: np.random.Generator, idx: np.ndarray, amount: float = 25.0) -> np.ndarray:
    return np.clip(RGB[idx] + rng.normal(0, amount, (len(idx), 3)), 0, 255).astype(np.float32)


def _finish(canvas: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    if noise > 0:
        canvas = canvas + rng.normal(0, noise, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).round().astype(np.uint8)


def _shape_mask(kind: np.ndarray, cx, cy, r) -> np.ndarray:
    """(n, 32, 32) bool masks for per-image shape kind, centre and radius."""
    dx = _XX[None] - cx[:, None, None]
    dy = _YY[None] - cy[:, None, None]
    r = r[:, None, None]
    dist2 = dx * dx + dy * dy
    masks = np.stack([
        dist2 <= r * r,
        np.maximum(abs(dx), abs(dy)) <= r * 0.85,
        (dy <= r * 0.8) & (dy >= -r) & (abs(dx) <= (dy + r) * 0.6),
        ((abs(dx) <= r * 0.33) & (abs(dy) <= r)) | ((abs(dy) <= r * 0.33) & (abs(dx) <= r)),
        (dist2 <= r * r) & (dist2 >= (0.55 * r) ** 2),
        abs(dx) + abs(dy) <= r,
    ])
    return masks[kind, np.arange(len(kind))]


def render_shapes(rng: np.random.Generator, n: int, *, clutter: float = 0.0, noise: float = 6.0,
                  max_count: int = 4, single: bool = False, occlusion: float = 0.0,
                  small_r: tuple[float, float] = (3.5, 5.0),
                  large_r: tuple[float, float] = (8.5, 11.0)) -> Rendered:
    """Object scenes: 1-4 copies of one shape in one colour on a light, slightly noisy canvas.

    Returns images (n, 32, 32, 3) uint8 and attrs shape, colour, size, count, position, each int64 of shape (n,).
    """
    shape = rng.integers(0, len(SHAPES), n)
    colour = rng.integers(0, len(COLOURS), n)
    size = rng.integers(0, 2, n)
    count = np.zeros(n, int) if single else rng.integers(0, max_count, n)
    position = rng.integers(0, len(POSITIONS), n)
    bg = rng.uniform(185, 245, (n, 1, 1, 1)) * rng.uniform(0.92, 1.0, (n, 1, 1, 3))
    canvas = np.broadcast_to(bg, (n, SIZE, SIZE, 3)).astype(np.float32).copy()
    radius = np.where(size == 1, rng.uniform(*large_r, n), rng.uniform(*small_r, n)).astype(np.float32)
    fg = _jitter_colour(rng, colour)
    # single objects sit left/right/top/bottom; several objects take distinct quadrants
    anchors = np.array([(8, 16), (24, 16), (16, 8), (16, 24)], np.float32)
    quads = np.array([(9, 9), (23, 9), (9, 23), (23, 23)], np.float32)
    order = np.argsort(rng.random((n, 4)), axis=1)
    for slot in range(4):
        active = count >= slot
        many = count > 0
        centre = np.where(many[:, None], quads[order[:, slot]], anchors[position])
        centre = centre + rng.uniform(-2, 2, (n, 2)).astype(np.float32)
        r = np.where(many, np.minimum(radius, 6.0), radius)
        mask = _shape_mask(shape, centre[:, 0], centre[:, 1], r) & active[:, None, None]
        canvas[mask] = np.repeat(fg, mask.reshape(n, -1).sum(1), axis=0)
    if clutter > 0:
        dots = rng.random((n, SIZE, SIZE)) < clutter * 0.08
        canvas[dots] = rng.uniform(0, 255, (int(dots.sum()), 3))
    if occlusion > 0:
        bar = rng.random(n) < occlusion
        x0 = rng.integers(6, 22, n)[:, None, None]
        cover = bar[:, None, None] & (abs(_XX[None] - x0) < 3)
        canvas[cover] = 120.0
    attrs = {"shape": shape, "colour": colour, "size": size, "count": count, "position": position}
    return _finish(canvas, rng, noise), attrs


def render_textures(rng: np.random.Generator, n: int, *, noise: float = 5.0, contrast: float = 1.0,
                    patterns: tuple[int, ...] | None = None) -> Rendered:
    """Repeating patterns in two colours, at a fine or coarse scale and one of three orientations.

    Returns images (n, 32, 32, 3) uint8 and attrs pattern, orientation, scale, colour, each int64 of shape (n,).
    """
    pattern = rng.choice(patterns, n) if patterns else rng.integers(0, len(PATTERNS), n)
    orient = rng.integers(0, 3, n)
    scale = rng.integers(0, 2, n)
    colour = rng.integers(0, len(COLOURS), n)
    period = np.where(scale == 1, rng.uniform(10, 14, n), rng.uniform(4, 6, n)).astype(np.float32)[:, None, None]
    theta = (np.array([0.0, np.pi / 2, np.pi / 4], np.float32)[orient] + rng.uniform(-0.1, 0.1, n))[:, None, None]
    phase = rng.uniform(0, 1, n).astype(np.float32)[:, None, None]
    u = (_XX[None] * np.cos(theta) + _YY[None] * np.sin(theta)) / period + phase
    v = (-_XX[None] * np.sin(theta) + _YY[None] * np.cos(theta)) / period
    fu, fv = u - np.floor(u), v - np.floor(v)
    layers = np.stack([
        fu < 0.5,
        (np.floor(u) + np.floor(v)) % 2 == 0,
        (fu - 0.5) ** 2 + (fv - 0.5) ** 2 < 0.09,
        (fu < 0.22) | (fv < 0.22),
        ((u + 0.25 * np.sin(2 * np.pi * v * 0.7)) % 1.0) < 0.5,
        ((u + np.abs((v % 1.0) - 0.5)) % 1.0) < 0.5,
    ])
    on = layers[pattern, np.arange(n)].astype(np.float32)[..., None]
    fg = _jitter_colour(rng, colour)[:, None, None, :]
    bg = rng.uniform(20, 235, (n, 1, 1, 1)).astype(np.float32)
    bg = bg + (fg - bg) * (1 - contrast) * 0.5
    canvas = on * fg + (1 - on) * bg
    attrs = {"pattern": pattern, "orientation": orient, "scale": scale, "colour": colour}
    return _finish(canvas, rng, noise), attrs


@lru_cache(maxsize=4)
def _glyph_masks(chars: str, size: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    out = np.zeros((len(chars), SIZE, SIZE), np.float32)
    for i, ch in enumerate(chars):
        im = Image.new("L", (SIZE, SIZE))
        ImageDraw.Draw(im).text((SIZE / 2, SIZE / 2), ch, font=font, fill=255, anchor="mm")
        out[i] = np.asarray(im, np.float32) / 255.0
    return out


def _warp(masks: np.ndarray, rng: np.random.Generator, *, scale=(0.8, 1.1), shift=3.0, rot=0.25) -> np.ndarray:
    """Random affine warp of (n, 32, 32) float masks, vectorised with torch grid_sample."""
    import torch
    import torch.nn.functional as F

    n = len(masks)
    s = rng.uniform(*scale, n)
    a = rng.uniform(-rot, rot, n)
    t = rng.uniform(-shift, shift, (n, 2)) / (SIZE / 2)
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 0, 1] = np.cos(a) / s, -np.sin(a) / s
    theta[:, 1, 0], theta[:, 1, 1] = np.sin(a) / s, np.cos(a) / s
    theta[:, :, 2] = t
    grid = F.affine_grid(torch.from_numpy(theta), (n, 1, SIZE, SIZE), align_corners=False)
    out = F.grid_sample(torch.from_numpy(masks[:, None]), grid, align_corners=False)
    return out[:, 0].numpy()


def _paint(masks: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    m = masks[..., None]
    return m * fg[:, None, None, :] + (1 - m) * bg[:, None, None, :]


def render_letters(rng: np.random.Generator, n: int, *, noise: float = 6.0, font_size: int = 22,
                   scale: tuple[float, float] = (0.8, 1.1)) -> Rendered:
    """Upper-case glyphs of the bundled font, warped, in a colour on a contrasting canvas.

    Returns images (n, 32, 32, 3) uint8 and attrs letter, colour, each int64 of shape (n,).
    """
    letter = rng.integers(0, len(LETTERS), n)
    masks = _warp(_glyph_masks("".join(LETTERS).upper(), font_size)[letter], rng, scale=scale)
    colour = rng.integers(0, len(COLOURS), n)
    dark = rng.random(n) < 0.5
    bg = np.where(dark[:, None], rng.uniform(0, 60, (n, 3)), rng.uniform(200, 255, (n, 3))).astype(np.float32)
    canvas = _paint(masks, _jitter_colour(rng, colour), bg)
    return _finish(canvas, rng, noise), {"letter": letter, "colour": colour}


def render_printed_digits(rng: np.random.Generator, n: int, *, noise: float = 8.0,
                          distractors: float = 1.0) -> Rendered:
    """House-number style: a centred printed digit, cut-off neighbour digits at the edges.

    Returns images (n, 32, 32, 3) uint8 and attrs digit, int64 of shape (n,).
    """
    digit = rng.integers(0, 10, n)
    glyphs = _glyph_masks("0123456789", 24)
    masks = _warp(glyphs[digit], rng, scale=(0.85, 1.1), shift=1.5, rot=0.12)
    if distractors > 0:
        for side in (-1, 1):
            other = _warp(glyphs[rng.integers(0, 10, n)], rng, scale=(0.85, 1.1), shift=1.0, rot=0.1)
            other = np.roll(other, side * 20, axis=2)
            keep = (rng.random(n) < distractors)[:, None, None]
            masks = np.maximum(masks, other * keep)
    fg = rng.uniform(0, 255, (n, 3)).astype(np.float32)
    bg = np.clip(255 - fg + rng.normal(0, 40, (n, 3)), 0, 255).astype(np.float32)
    return _finish(_paint(masks, fg, bg), rng, noise), {"digit": digit}


@lru_cache(maxsize=1)
def _handwritten() -> tuple[np.ndarray, np.ndarray]:
    import random

    # Importing sklearn.datasets draws from Python's global random stream (it imports rich, whose
    # rich.style calls random.getrandbits at import): put the stream back, so that the first
    # handwritten image a process renders does not move a caller's seeded ``random``.
    state = random.getstate()
    try:
        from sklearn.datasets import load_digits
    finally:
        random.setstate(state)
    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


def render_handwritten(rng: np.random.Generator, n: int, *, pool: str = "pretrain",
                       noise: float = 10.0) -> Rendered:
    """scikit-learn's real 8x8 handwritten digits, upscaled and warped, light stroke on dark.

    pool 'pretrain' draws from the even-indexed images, 'task' from the odd ones, so the digit
    tasks never show a digit image the model was pretrained on (the scene-kind OOD task draws from
    'pretrain': jobs/results/WORLD-FINDINGS-2026-12-05.md). Returns images (n, 32, 32, 3) uint8 and
    attrs digit, int64 of shape (n,).
    """
    import torch
    import torch.nn.functional as F

    images, targets = _handwritten()
    offset = 0 if pool == "pretrain" else 1
    idx = rng.integers(0, len(images) // 2, n) * 2 + offset
    idx = np.minimum(idx, len(images) - 1)
    small = torch.from_numpy(images[idx][:, None])
    big = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)[:, 0].numpy()
    masks = np.zeros((n, SIZE, SIZE), np.float32)
    masks[:, 6:26, 6:26] = big
    masks = _warp(masks, rng, scale=(0.85, 1.15), shift=2.5, rot=0.2)
    fg = rng.uniform(200, 255, (n, 3)).astype(np.float32)
    bg = rng.uniform(0, 40, (n, 3)).astype(np.float32)
    return _finish(_paint(masks, fg, bg), rng, noise), {"digit": targets[idx]}


def _smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    low = torch.from_numpy(rng.random((n, 1, cells, cells)).astype(np.float32))
    return F.interpolate(low, size=(SIZE, SIZE), mode="bicubic", align_corners=False)[:, 0].numpy()


def render_land(rng: np.random.Generator, n: int, *, haze: float = 0.0, noise: float = 4.0) -> Rendered:
    """Satellite-like land cover from smooth noise fields: forest, lake, river, desert, ...

    Returns images (n, 32, 32, 3) uint8 and attrs land, int64 of shape (n,).
    """
    land = rng.integers(0, len(LANDS), n)
    coarse, fine = _smooth_noise(rng, n, 4), _smooth_noise(rng, n, 12)
    palette = np.array([(35, 85, 40), (50, 120, 60), (55, 130, 65), (205, 180, 120), (150, 170, 70),
                        (125, 125, 130), (235, 238, 245)], np.float32)
    base = palette[land][:, None, None, :] * (0.8 + 0.4 * fine[..., None])
    water = np.array((40, 80, 160), np.float32)
    theta = rng.uniform(0, np.pi, n)[:, None, None]
    off = rng.uniform(-6, 6, n)[:, None, None]
    across = (_XX[None] - 16) * np.cos(theta) + (_YY[None] - 16) * np.sin(theta)
    along = -(_XX[None] - 16) * np.sin(theta) + (_YY[None] - 16) * np.cos(theta)
    river = abs(across - off - 3 * np.sin(along / 4)) < 2.5
    lake = ((_XX[None] - 16) ** 2 + (_YY[None] - 16) ** 2) < (70 + 60 * coarse) * (1 + 0.3 * fine)
    rows = ((along / rng.uniform(3, 5, n)[:, None, None]) % 2) < 1
    blocks = ((_XX[None] % 6) < 4) & ((_YY[None] % 6) < 4)
    wet = np.where(land[:, None, None] == 1, lake, np.where(land[:, None, None] == 2, river, False))
    canvas = np.where(wet[..., None], water, base)
    crop = np.array((200, 190, 60), np.float32)
    canvas = np.where(((land == 4)[:, None, None] & rows)[..., None], crop, canvas)
    roof = np.array((185, 180, 175), np.float32)
    canvas = np.where(((land == 5)[:, None, None] & blocks)[..., None], roof, canvas)
    if haze > 0:
        cloud = _smooth_noise(rng, n, 3)[..., None] * haze
        canvas = canvas * (1 - cloud) + 235 * cloud
    return _finish(canvas, rng, noise), {"land": land}


def render_charts(rng: np.random.Generator, n: int, *, noise: float = 3.0, slope: float = 0.6,
                  contrast: float = 1.0) -> Rendered:
    """Simple charts on white: bars, a line, a pie or a scatter, rising or falling.

    Returns images (n, 32, 32, 3) uint8 and attrs chart, trend, bars, colour, each int64 of shape (n,).
    """
    kind = rng.integers(0, len(CHARTS), n)
    trend = rng.integers(0, 2, n)
    bars = rng.integers(0, len(BAR_COUNTS), n)
    canvas = np.full((n, SIZE, SIZE, 3), 250.0, np.float32)
    colour_idx = rng.integers(0, len(COLOURS), n)  # drawn exactly where v1 drew it: same bytes
    colour = _jitter_colour(rng, colour_idx)
    sign = np.where(trend == 0, 1.0, -1.0)[:, None, None]
    height = 16 + sign * (_XX[None] - 16) * slope + rng.normal(0, 1.0, (n, 1, SIZE))  # rising/falling
    nbar = (bars + 3)[:, None, None]
    slot = np.floor((_XX[None] - 4) / (26 / nbar))
    centre_x = 4 + (slot + 0.5) * 26 / nbar
    bar_h = 16 + sign * (centre_x - 16) * slope
    bar_mask = (_XX[None] >= 4) & (_XX[None] < 30) & (((_XX[None] - 4) % (26 / nbar)) < (26 / nbar) * 0.7) \
        & (_YY[None] >= 29 - bar_h)
    line_mask = abs(_YY[None] - (29 - height)) < 1.2
    pts = rng.uniform(5, 29, (n, 10))
    pys = 29 - (16 + sign[:, :, 0] * (pts - 16) * slope + rng.normal(0, 2.5, (n, 10)))
    scatter = np.zeros((n, SIZE, SIZE), bool)
    for k in range(10):
        scatter |= (abs(_XX[None] - pts[:, k, None, None]) < 1.3) & (abs(_YY[None] - pys[:, k, None, None]) < 1.3)
    ang = np.arctan2(_YY[None] - 16, _XX[None] - 16)
    pie_r = ((_XX[None] - 16) ** 2 + (_YY[None] - 16) ** 2) < 110
    split = rng.uniform(-np.pi, np.pi, (n, 1, 1))
    masks = np.stack([bar_mask, line_mask & (_XX[None] > 3), pie_r & (ang < split), scatter])
    chosen = masks[kind, np.arange(n)]
    canvas[chosen] = np.repeat(colour, chosen.reshape(n, -1).sum(1), axis=0)
    pie_rest = (kind == 2)[:, None, None] & pie_r & ~(ang < split)
    canvas[pie_rest] = np.array((90, 90, 90), np.float32)
    axes = ((abs(_XX[None] - 3) < 0.6) | (abs(_YY[None] - 29) < 0.6)) & (kind != 2)[:, None, None]
    canvas[np.broadcast_to(axes, (n, SIZE, SIZE))] = 20.0
    if contrast != 1.0:  # fade every mark toward the white page
        canvas = 250.0 + (canvas - 250.0) * contrast
    return _finish(canvas, rng, noise), {"chart": kind, "trend": trend, "bars": bars, "colour": colour_idx}
