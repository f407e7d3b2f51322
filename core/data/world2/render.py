"""World v2's three new sub-worlds (32x32 RGB, uint8), in the style of ``core.data.world_render``.

``render_<family>(rng, n, **knobs)`` returns ``(images (n, 32, 32, 3) uint8, attrs)`` where attrs maps
each attribute to an int array of indices into the vocabularies below. Everything is drawn from
``rng``, so the same seed gives the same bytes.

* signs: a coloured border (circle, triangle, square or diamond) around a white face with a dark
  arrow, on a cluttered outdoor-like background — a traffic-sign stand-in;
* cells: fluorescent blobs on a dark field (round, long, spiky or ring-shaped, one to six of them,
  small or large) — a microscopy stand-in;
* sketches: thin or thick outline drawings of ten objects on paper — a sketch-domain stand-in.

Also here: ``render_land_weather``, v1's land cover with a captionable clear/hazy attribute.
"""
from __future__ import annotations

import numpy as np

from core.data import world_render as W

SIGN_SHAPES = ("circle", "triangle", "square", "diamond")
_SIGN_MASK_KIND = np.array([0, 2, 1, 5])  # indices into world_render's shape masks
ARROWS = ("left", "right", "up", "down")
CELL_KINDS = ("round", "long", "spiky", "ring")
CELL_COUNTS = ("one", "two", "three", "four", "five", "six")
CELL_SIZES = ("small", "large")
SKETCHES = ("circle", "square", "triangle", "diamond", "cross", "star", "house", "tree", "moon", "heart")
STROKES = ("thin", "thick")
WEATHER = ("clear", "hazy")

_YY, _XX = np.mgrid[0:W.SIZE, 0:W.SIZE].astype(np.float32)


def _arrow_mask(direction: np.ndarray, cx: np.ndarray, cy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(n, 32, 32) arrows of half-length r pointing left/right/up/down (image y grows downwards)."""
    dx = (_XX[None] - cx[:, None, None]) / r[:, None, None]
    dy = (_YY[None] - cy[:, None, None]) / r[:, None, None]
    # rotate each image's frame so that the arrow always points along +u
    along = np.select([direction[:, None, None] == k for k in range(4)], [-dx, dx, -dy, dy])
    across = np.select([direction[:, None, None] == k for k in range(4)], [dy, dy, dx, dx])
    shaft = (along > -0.9) & (along < 0.15) & (np.abs(across) < 0.2)
    head = (along >= 0.0) & (along < 0.9) & (np.abs(across) < 0.6 * (0.9 - along))
    return shaft | head


def render_signs(rng: np.random.Generator, n: int, *, noise: float = 6.0, clutter: float = 0.5) -> W.Rendered:
    """Sign-like glyphs: coloured border shape, white face, dark arrow, busy background.

    Returns images (n, 32, 32, 3) uint8 and attrs shape, colour, arrow, each int64 of shape (n,).
    """
    shape = rng.integers(0, len(SIGN_SHAPES), n)
    colour = rng.integers(0, len(W.COLOURS), n)
    arrow = rng.integers(0, len(ARROWS), n)
    sky = rng.uniform(60, 200, (n, 1, 1, 3)).astype(np.float32)
    canvas = np.broadcast_to(sky, (n, W.SIZE, W.SIZE, 3)).copy()
    if clutter > 0:  # soft blobs behind the sign, like foliage or buildings
        field = W._smooth_noise(rng, n, 6)[..., None]
        canvas = canvas * (1 - clutter * 0.5) + field * rng.uniform(40, 220, (n, 1, 1, 3)) * clutter * 0.5
    cx, cy = rng.uniform(14, 18, n).astype(np.float32), rng.uniform(14, 18, n).astype(np.float32)
    r = rng.uniform(11, 14, n).astype(np.float32)
    kind = _SIGN_MASK_KIND[shape]
    outer = W._shape_mask(kind, cx, cy, r)
    face = W._shape_mask(kind, cx, cy, r * 0.68)
    canvas[outer] = np.repeat(W._jitter_colour(rng, colour, 20.0), outer.reshape(n, -1).sum(1), axis=0)
    canvas[face] = 245.0
    # triangles' faces sit low: put the arrow at the face's centroid
    ay = np.where(shape == 1, cy + r * 0.15, cy).astype(np.float32)
    mark = _arrow_mask(arrow, cx, ay, np.where(shape == 1, r * 0.33, r * 0.45).astype(np.float32)) & face
    canvas[mark] = 25.0
    return W._finish(canvas, rng, noise), {"shape": shape, "colour": colour, "arrow": arrow}


def _cell_mask(kind: np.ndarray, cx, cy, r, angle) -> np.ndarray:
    """(n, 32, 32) masks of one cell per image: round, long (ellipse), spiky or ring."""
    dx, dy = _XX[None] - cx[:, None, None], _YY[None] - cy[:, None, None]
    a = angle[:, None, None]
    u, v = dx * np.cos(a) + dy * np.sin(a), -dx * np.sin(a) + dy * np.cos(a)
    rr = r[:, None, None]
    rho2 = dx * dx + dy * dy
    theta = np.arctan2(dy, dx) + a
    masks = np.stack([
        rho2 <= rr * rr,
        (u / (rr * 1.6)) ** 2 + (v / (rr * 0.55)) ** 2 <= 1,
        np.sqrt(rho2) <= rr * (0.75 + 0.4 * np.maximum(0, np.cos(5 * theta)) ** 3),
        (rho2 <= rr * rr) & (rho2 >= (0.55 * rr) ** 2),
    ])
    return masks[kind, np.arange(len(kind))]


def render_cells(rng: np.random.Generator, n: int, *, noise: float = 8.0, blur: float = 0.0) -> W.Rendered:
    """Microscopy-like fields: 1-6 stained cells of one kind and size on a dark background.

    Returns images (n, 32, 32, 3) uint8 and attrs kind, count, size, colour, each int64 of shape (n,).
    """
    kind = rng.integers(0, len(CELL_KINDS), n)
    count = rng.integers(0, len(CELL_COUNTS), n)
    size = rng.integers(0, len(CELL_SIZES), n)
    colour = rng.integers(0, len(W.COLOURS), n)
    canvas = np.broadcast_to(rng.uniform(0, 35, (n, 1, 1, 3)), (n, W.SIZE, W.SIZE, 3)).astype(np.float32).copy()
    base_r = np.where(size == 1, rng.uniform(3.8, 4.4, n), rng.uniform(2.6, 3.0, n)).astype(np.float32)
    # a 3x3 lattice of sites, one cell per site, so cells never merge and can be counted
    sites = np.array([(x, y) for y in (6, 16, 26) for x in (6, 16, 26)], np.float32)
    order = np.argsort(rng.random((n, 9)), axis=1)
    fg = W._jitter_colour(rng, colour, 20.0)
    for slot in range(len(CELL_COUNTS)):
        active = count >= slot
        centre = sites[order[:, slot]] + rng.uniform(-1.0, 1.0, (n, 2)).astype(np.float32)
        mask = _cell_mask(kind, centre[:, 0], centre[:, 1], base_r, rng.uniform(0, np.pi, n)) & active[:, None, None]
        glow = fg * rng.uniform(0.8, 1.0, (n, 1)).astype(np.float32)
        canvas[mask] = np.repeat(glow, mask.reshape(n, -1).sum(1), axis=0)
    if blur > 0:
        import torch
        import torch.nn.functional as F

        t = torch.from_numpy(canvas).permute(0, 3, 1, 2)
        k = torch.tensor([blur, 1.0, blur]) / (1 + 2 * blur)
        t = F.conv2d(F.pad(t, (1, 1, 1, 1), mode="replicate").reshape(-1, 1, 34, 34),
                     (k[:, None] * k[None, :])[None, None]).reshape(n, 3, 32, 32)
        canvas = t.permute(0, 2, 3, 1).numpy()
    return W._finish(canvas, rng, noise), {"kind": kind, "count": count, "size": size, "colour": colour}


def _sketch_fill(kind: np.ndarray, cx, cy, r) -> np.ndarray:
    """(n, 32, 32) filled silhouettes of the ten sketch objects (outlines are taken from these)."""
    dx = (_XX[None] - cx[:, None, None]) / r[:, None, None]
    dy = (_YY[None] - cy[:, None, None]) / r[:, None, None]
    rho2 = dx * dx + dy * dy
    ang = np.arctan2(dy, dx)
    masks = np.stack([
        rho2 <= 1,                                                                   # circle
        np.maximum(abs(dx), abs(dy)) <= 0.8,                                         # square
        (dy <= 0.8) & (dy >= -0.9) & (abs(dx) <= (dy + 0.9) * 0.6),                  # triangle
        abs(dx) + abs(dy) <= 1,                                                      # diamond
        ((abs(dx) <= 0.3) & (abs(dy) <= 1)) | ((abs(dy) <= 0.3) & (abs(dx) <= 1)),   # cross
        np.sqrt(rho2) <= 0.45 + 0.55 * (0.5 + 0.5 * np.cos(5 * (ang + np.pi / 2))) ** 2,  # star
        ((abs(dx) <= 0.7) & (dy >= -0.1) & (dy <= 0.9))
        | ((dy < -0.1) & (dy >= -1) & (abs(dx) <= (dy + 1) * 0.95)),                 # house
        ((dy <= 0.5) & (dy >= -1) & (abs(dx) <= (dy + 1) * 0.55))
        | ((abs(dx) <= 0.15) & (dy > 0.5) & (dy <= 1)),                              # tree
        (rho2 <= 1) & ((dx - 0.45) ** 2 + (dy + 0.2) ** 2 > 0.7),                    # moon
        ((dx * dx + (-dy + 0.2) ** 2 - 0.6) ** 3 - dx * dx * (-dy + 0.2) ** 3 * 1.2) <= 0,  # heart
    ])
    return masks[kind, np.arange(len(kind))]


def render_sketches(rng: np.random.Generator, n: int, *, noise: float = 5.0) -> W.Rendered:
    """Outline drawings of ten objects in one ink colour, thin or thick strokes, on off-white paper.

    Returns images (n, 32, 32, 3) uint8 and attrs kind, stroke, colour, each int64 of shape (n,).
    """
    kind = rng.integers(0, len(SKETCHES), n)
    stroke = rng.integers(0, len(STROKES), n)
    colour = rng.integers(0, len(W.COLOURS), n)
    canvas = np.broadcast_to(rng.uniform(225, 252, (n, 1, 1, 1)), (n, W.SIZE, W.SIZE, 3)).astype(np.float32).copy()
    cx, cy = rng.uniform(14, 18, n).astype(np.float32), rng.uniform(14, 18, n).astype(np.float32)
    r = rng.uniform(10, 13, n).astype(np.float32)
    width = np.where(stroke == 1, rng.uniform(2.6, 3.2, n), rng.uniform(1.4, 1.7, n)).astype(np.float32)
    outline = _sketch_fill(kind, cx, cy, r) & ~_sketch_fill(kind, cx, cy, r - width)
    ink = W._jitter_colour(rng, colour, 20.0) * 0.8
    canvas[outline] = np.repeat(ink, outline.reshape(n, -1).sum(1), axis=0)
    return W._finish(canvas, rng, noise), {"kind": kind, "stroke": stroke, "colour": colour}


def render_land_weather(rng: np.random.Generator, n: int, *, noise: float = 4.0,
                        hazy_amount: float = 0.6) -> W.Rendered:
    """v1's land cover, with a captionable weather attribute: clear (no haze) or hazy.

    Returns images (n, 32, 32, 3) uint8 and attrs land, weather, each int64 of shape (n,).
    """
    weather = rng.integers(0, len(WEATHER), n)
    images = np.empty((n, W.SIZE, W.SIZE, 3), np.uint8)
    land = np.empty(n, np.int64)
    for value, haze in ((0, 0.0), (1, hazy_amount)):
        rows = np.flatnonzero(weather == value)
        if len(rows):
            images[rows], got = W.render_land(rng, len(rows), haze=haze, noise=noise)
            land[rows] = got["land"]
    return images, {"land": land, "weather": weather}
