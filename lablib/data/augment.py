"""Augmentation in NumPy (report 000, 2.4): one of shift, flip, rotation or none, equally likely,
then a random change of mean and standard deviation (brightness and contrast).

Images are float32 ``(N, 1, 28, 28)`` in [-0.5, 0.5] with background -0.5. Every transform works
on the whole batch at once through index arithmetic; randomness comes only from the generator
passed in, drawn in a fixed order, so a seed fixes every batch bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lablib.errors import LabError

BACKGROUND = np.float32(-0.5)


class AugmentError(LabError, ValueError):
    """An augmentation setting out of range."""


@dataclass(frozen=True)
class AugmentConfig:
    """Switches and strengths; ``params.yaml``'s ``augment:`` section, key for key."""

    enabled: bool = True
    shift: int = 2  # pixels, in each direction
    flip: bool = True  # horizontal
    rotate: float = 10.0  # degrees, either way
    brightness: float = 0.05  # added to the mean, on the [-0.5, 0.5] scale
    contrast: float = 0.1  # relative change of the standard deviation

    def __post_init__(self) -> None:
        checks = {
            "enabled": isinstance(self.enabled, bool),
            "shift": isinstance(self.shift, int) and not isinstance(self.shift, bool) and 0 <= self.shift <= 13,
            "flip": isinstance(self.flip, bool),
            "rotate": _is_number(self.rotate) and 0 <= self.rotate <= 180,
            "brightness": _is_number(self.brightness) and 0 <= self.brightness <= 1,
            "contrast": _is_number(self.contrast) and 0 <= self.contrast <= 1,
        }
        wanted = {
            "enabled": "true or false",
            "shift": "an integer in 0..13",
            "flip": "true or false",
            "rotate": "degrees in 0..180",
            "brightness": "a number in 0..1",
            "contrast": "a number in 0..1",
        }
        for key, ok in checks.items():
            if not ok:
                raise AugmentError(f"augment.{key} must be {wanted[key]}; got {getattr(self, key)!r}")

    def geometric(self) -> list[str]:
        """The geometric transforms switched on, in drawing order."""
        return [
            name for name, on in (("shift", self.shift > 0), ("flip", self.flip), ("rotate", self.rotate > 0)) if on
        ]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shift(x: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Move image ``i`` right by ``dx[i]`` and down by ``dy[i]`` pixels, filling with background."""
    n, _, h, w = x.shape
    rows = np.arange(h)[None, :] - np.asarray(dy)[:, None]
    cols = np.arange(w)[None, :] - np.asarray(dx)[:, None]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    out = x[np.arange(n)[:, None, None], 0, rows.clip(0, h - 1)[:, :, None], cols.clip(0, w - 1)[:, None, :]]
    return np.where(inside, out, BACKGROUND)[:, None].astype(x.dtype, copy=False)


def hflip(x: np.ndarray) -> np.ndarray:
    """Mirror left to right."""
    return x[..., ::-1].copy()


def rotate(x: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Rotate image ``i`` by ``degrees[i]`` anticlockwise about its centre, bilinear, background fill."""
    n, _, h, w = x.shape
    theta = np.deg2rad(np.asarray(degrees, dtype=np.float64))[:, None, None]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    # Inverse map: the source of each output pixel is the output rotated back.
    cos, sin = np.cos(theta), np.sin(theta)
    src_x = cos * xx - sin * yy + cx
    src_y = sin * xx + cos * yy + cy
    x0, y0 = np.floor(src_x).astype(np.int64), np.floor(src_y).astype(np.int64)
    fx, fy = (src_x - x0).astype(np.float32), (src_y - y0).astype(np.float32)
    batch = np.arange(n)[:, None, None]

    def pixel(yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        return np.where(inside, x[batch, 0, yi.clip(0, h - 1), xi.clip(0, w - 1)], BACKGROUND)

    out = (
        pixel(y0, x0) * (1 - fx) * (1 - fy)
        + pixel(y0, x0 + 1) * fx * (1 - fy)
        + pixel(y0 + 1, x0) * (1 - fx) * fy
        + pixel(y0 + 1, x0 + 1) * fx * fy
    )
    return out[:, None].astype(x.dtype, copy=False)


def adjust(x: np.ndarray, contrast: np.ndarray, brightness: np.ndarray) -> np.ndarray:
    """Scale each image's deviation from its mean by ``contrast`` and add ``brightness``, clipped."""
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    c = np.asarray(contrast, dtype=x.dtype).reshape(-1, 1, 1, 1)
    b = np.asarray(brightness, dtype=x.dtype).reshape(-1, 1, 1, 1)
    return np.clip((x - mean) * c + mean + b, -0.5, 0.5).astype(x.dtype, copy=False)


def augment_batch(x: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """A randomly transformed copy of ``x`` (``x`` itself when augmentation is off)."""
    if not config.enabled:
        return x
    n = len(x)
    kinds = ["none", *config.geometric()]
    choice = rng.integers(len(kinds), size=n)
    dx = rng.integers(-config.shift, config.shift + 1, size=n)
    dy = rng.integers(-config.shift, config.shift + 1, size=n)
    angle = rng.uniform(-config.rotate, config.rotate, size=n)
    contrast = rng.uniform(1 - config.contrast, 1 + config.contrast, size=n)
    brightness = rng.uniform(-config.brightness, config.brightness, size=n)
    out = np.array(x, dtype=x.dtype, copy=True)
    for k, kind in enumerate(kinds):
        chosen = np.flatnonzero(choice == k)
        if kind == "none" or chosen.size == 0:
            continue
        part = out[chosen]
        if kind == "shift":
            out[chosen] = shift(part, dx[chosen], dy[chosen])
        elif kind == "flip":
            out[chosen] = hflip(part)
        else:
            out[chosen] = rotate(part, angle[chosen])
    if config.contrast > 0 or config.brightness > 0:
        out = adjust(out, contrast, brightness)
    return out


def augmentation_examples(
    images: np.ndarray, rng: np.random.Generator, config: AugmentConfig, n_variants: int = 4
) -> dict[str, np.ndarray]:
    """Figure-ready: each image as it is, under each transform at full strength, and under
    ``n_variants`` draws of the whole random pipeline. Every value is ``(N, 28, 28)`` or, for
    ``random``, ``(n_variants, N, 28, 28)``."""
    n = len(images)
    s = max(config.shift, 1)
    strength_c = 1 + max(config.contrast, 0.1)
    examples = {
        "original": images[:, 0],
        f"shift ({s}, {s}) px": shift(images, np.full(n, s), np.full(n, s))[:, 0],
        "flip": hflip(images)[:, 0],
        f"rotate {max(config.rotate, 10):g}°": rotate(images, np.full(n, max(config.rotate, 10.0)))[:, 0],
        "brightness/contrast": adjust(images, np.full(n, strength_c), np.full(n, max(config.brightness, 0.05)))[:, 0],
    }
    full = AugmentConfig(**{**config.__dict__, "enabled": True})
    examples["random"] = np.stack([augment_batch(images, rng, full)[:, 0] for _ in range(n_variants)])
    return examples
