"""Augmentation in NumPy (report 000, 2.4): one of shift, flip, rotation or none, equally likely,
then a random change of mean and standard deviation (brightness and contrast), then, when switched
on, random erasing (Zhong et al. 2017).

Images are ``(N, C, H, W)`` in [-0.5, 0.5] with background -0.5. Every transform works on the
whole batch at once through index arithmetic, with one parameter per image; randomness comes only
from the generator passed to :func:`augment_batch`, drawn in a fixed order, so a seed (or a
restored ``rng.bit_generator.state``) fixes every batch bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lablib.params import AugmentConfig

LOW, HIGH = -0.5, 0.5
BACKGROUND = LOW
ERASE_RATIO = 0.3  # random erasing's smallest aspect ratio r_1 (Zhong et al.): ratios lie in [r_1, 1/r_1]


def _gather(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``out[i, :, r, c] = x[i, :, rows[i, r, c], cols[i, r, c]]``, background where that lies outside.

    ``rows`` and ``cols`` are integers broadcasting to ``(N, H, W)``. One background pixel is padded
    around every image and the indices are clipped onto it, so no mask is needed.
    """
    n, channels, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=BACKGROUND)
    rows = np.clip(rows, -1, h) + 1
    cols = np.clip(cols, -1, w) + 1
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(channels)[None, :, None, None]
    return padded[batch, channel, rows[:, None], cols[:, None]]


def shift(x: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Move image ``i`` right by ``dx[i]`` and down by ``dy[i]`` whole pixels; what enters is background."""
    _, _, h, w = x.shape
    rows = np.arange(h)[None, :, None] - np.asarray(dy).reshape(-1, 1, 1)
    cols = np.arange(w)[None, None, :] - np.asarray(dx).reshape(-1, 1, 1)
    return _gather(x, rows, cols)


def hflip(x: np.ndarray) -> np.ndarray:
    """Mirror left to right."""
    return x[..., ::-1].copy()


def rotate(x: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Rotate image ``i`` by ``degrees[i]`` anticlockwise about its centre, bilinear, background fill.

    Each output pixel reads the input where rotating it back by the angle lands (inverse mapping),
    so every output pixel gets exactly one value and no holes appear.
    """
    _, _, h, w = x.shape
    theta = np.deg2rad(np.asarray(degrees, dtype=np.float64)).reshape(-1, 1, 1)
    cos, sin = np.cos(theta), np.sin(theta)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y = np.arange(h)[:, None] - cy
    x_ = np.arange(w)[None, :] - cx
    src_x = cos * x_ - sin * y + cx
    src_y = sin * x_ + cos * y + cy
    x0, y0 = np.floor(src_x), np.floor(src_y)
    fx = (src_x - x0).astype(x.dtype)[:, None]
    fy = (src_y - y0).astype(x.dtype)[:, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    top = _lerp(_gather(x, y0, x0), _gather(x, y0, x0 + 1), fx)
    bottom = _lerp(_gather(x, y0 + 1, x0), _gather(x, y0 + 1, x0 + 1), fx)
    # Rounding can step a hair past the range; the clip keeps the [-0.5, 0.5] promise exact.
    return np.clip(_lerp(top, bottom, fy), LOW, HIGH)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``a`` moved the fraction ``t`` of the way to ``b``; equal neighbours (background) stay exact."""
    return a + (b - a) * t


def adjust(x: np.ndarray, contrast: np.ndarray, brightness: np.ndarray) -> np.ndarray:
    """Scale image ``i``'s deviation from its mean by ``contrast[i]``, add ``brightness[i]``, clip.

    ``clip((x - mean) * c + mean + b)``: the standard deviation is multiplied by ``c`` and the mean
    moved by ``b`` (before the clip).
    """
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    c = np.asarray(contrast, dtype=x.dtype).reshape(-1, 1, 1, 1)
    b = np.asarray(brightness, dtype=x.dtype).reshape(-1, 1, 1, 1)
    return np.clip((x - mean) * c + mean + b, LOW, HIGH)


def erase(
    x: np.ndarray, top: np.ndarray, left: np.ndarray, height: np.ndarray, width: np.ndarray, fill: np.ndarray
) -> np.ndarray:
    """Replace the ``height[i] x width[i]`` rectangle at (``top[i]``, ``left[i]``) of image ``i`` by
    the same pixels of ``fill`` (an image-shaped array); a height of 0 leaves the image as it is."""
    _, _, h, w = x.shape
    rows = np.arange(h)[None, :, None] - np.asarray(top).reshape(-1, 1, 1)
    cols = np.arange(w)[None, None, :] - np.asarray(left).reshape(-1, 1, 1)
    in_rows = (rows >= 0) & (rows < np.asarray(height).reshape(-1, 1, 1))
    inside = in_rows & (cols >= 0) & (cols < np.asarray(width).reshape(-1, 1, 1))
    return np.where(inside[:, None], fill, x)


def erasing_rectangles(
    rng: np.random.Generator, n: int, shape: tuple[int, int], probability: float, area: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random erasing's rectangles (Zhong et al. 2017) for ``n`` images of ``shape`` (H, W): each
    image is erased with ``probability``, over an area fraction uniform in ``area`` with an aspect
    ratio ``height / width`` log-uniform in [0.3, 1/0.3], at a uniform position where it fits.

    Returns (top, left, height, width); an image left alone has height 0. A rectangle taller or
    wider than the image is cut to it (where the paper draws again, which no batch-wide draw can).
    Draws, in order and for all ``n`` images: the coin, the area, the ratio, the two positions.
    """
    h, w = shape
    chosen = rng.random(n) < probability
    target = rng.uniform(area[0], area[1], size=n) * h * w
    ratio = np.exp(rng.uniform(np.log(ERASE_RATIO), -np.log(ERASE_RATIO), size=n))
    height = np.clip(np.rint(np.sqrt(target * ratio)), 1, h).astype(np.int64)
    width = np.clip(np.rint(np.sqrt(target / ratio)), 1, w).astype(np.int64)
    top = (rng.random(n) * (h - height + 1)).astype(np.int64)
    left = (rng.random(n) * (w - width + 1)).astype(np.int64)
    return top, left, np.where(chosen, height, 0), width


def augment_batch(x: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """A randomly transformed copy of the batch ``x`` ``(N, C, H, W)``; an unchanged copy when off.

    Draws, in this order and always for all N images (whichever transform each one gets): the
    geometric choice, dx, dy, the angle, the contrast factor and the brightness offset; then, only
    when ``erase`` is above 0, the erased rectangles (:func:`erasing_rectangles`) and their fill,
    uniform noise in [-0.5, 0.5] as in the paper. A batch thus consumes the same amount of
    randomness whatever it draws, and nothing when off.
    """
    if x.ndim != 4:
        raise ValueError(f"augment_batch expects images (N, C, H, W); got shape {x.shape}")
    if not config.enabled:
        return x.copy()
    n = len(x)
    kinds = config.geometric()
    kind = rng.integers(len(kinds), size=n)
    dx = rng.integers(-config.shift, config.shift + 1, size=n)
    dy = rng.integers(-config.shift, config.shift + 1, size=n)
    angle = rng.uniform(-config.rotate, config.rotate, size=n)
    contrast = rng.uniform(1 - config.contrast, 1 + config.contrast, size=n)
    brightness = rng.uniform(-config.brightness, config.brightness, size=n)

    transforms = {
        "shift": lambda i: shift(x[i], dx[i], dy[i]),
        "flip": lambda i: hflip(x[i]),
        "rotate": lambda i: rotate(x[i], angle[i]),
    }
    out = x.copy()
    for k, name in enumerate(kinds):
        chosen = np.flatnonzero(kind == k)
        if name != "none" and chosen.size:
            out[chosen] = transforms[name](chosen)
    if config.contrast > 0 or config.brightness > 0:
        out = adjust(out, contrast, brightness)
    if config.erase > 0:
        rectangles = erasing_rectangles(rng, n, x.shape[2:], config.erase, config.erase_area)
        out = erase(out, *rectangles, rng.uniform(LOW, HIGH, size=x.shape).astype(x.dtype))
    return out


def augmentation_examples(
    images: np.ndarray, rng: np.random.Generator, config: AugmentConfig, n_variants: int = 4
) -> dict[str, np.ndarray]:
    """Figure-ready (report 000, Figure 2): ``images`` ``(N, 1, H, W)`` as they are, under each
    transform ``config`` switches on at its full strength, then ``n_variants`` draws of the whole
    random pipeline (run even when ``config.enabled`` is false, to show what it would do).

    Keys are column titles: ``original``, then e.g. ``shift (2, 2) px``, ``flip``, ``rotate 10°``,
    ``contrast ×1.1`` over ``brightness +0.05`` (two lines), ``erase``, then ``random``. Values are
    ``(N, H, W)``, and ``(n_variants, N, H, W)`` for ``random``.
    """
    n = len(images)
    s, degrees, c, b = config.shift, config.rotate, config.contrast, config.brightness
    examples = {"original": images}
    if s:
        examples[f"shift ({s}, {s}) px"] = shift(images, np.full(n, s), np.full(n, s))
    if config.flip:
        examples["flip"] = hflip(images)
    if degrees:
        examples[f"rotate {degrees:g}°"] = rotate(images, np.full(n, degrees))
    if c or b:
        examples[f"contrast ×{1 + c:g}\nbrightness {b:+g}"] = adjust(images, np.full(n, 1 + c), np.full(n, b))
    if config.erase:
        rectangles = erasing_rectangles(rng, n, images.shape[2:], 1.0, config.erase_area)
        examples["erase"] = erase(images, *rectangles, rng.uniform(LOW, HIGH, size=images.shape).astype(images.dtype))
    switched_on = dataclasses.replace(config, enabled=True)
    examples["random"] = np.stack([augment_batch(images, rng, switched_on) for _ in range(n_variants)])
    return {name: value[..., 0, :, :] for name, value in examples.items()}
