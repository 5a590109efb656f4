"""Augmentation: each transform against an independent reference (np.roll, np.rot90, torch's
grid_sample), the random pipeline's determinism and its choice frequencies, config validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lablib.data.augment import (
    adjust,
    augment_batch,
    augmentation_examples,
    erase,
    erasing_rectangles,
    hflip,
    rotate,
    shift,
)
from lablib.params import AugmentConfig, ParamsError


def images(
    n: int = 8, h: int = 28, w: int = 28, dtype: type = np.float32, border: int = 4, seed: int = 0
) -> np.ndarray:
    """Random pixels in [-0.5, 0.5] inside a background ``border``, like a centred garment; with no
    border the edges carry content, so reading past them must give background, not the edge."""
    x = np.full((n, 1, h, w), -0.5, dtype=dtype)
    x[:, :, border : h - border, border : w - border] = np.random.default_rng(seed).uniform(
        -0.5, 0.5, (n, 1, h - 2 * border, w - 2 * border)
    )
    return x


TRANSFORMS = {
    "shift": lambda x: shift(x, np.arange(len(x)) % 7 - 3, np.arange(len(x)) % 5 - 2),
    "hflip": hflip,
    "rotate": lambda x: rotate(x, np.linspace(-40, 40, len(x))),
    "adjust": lambda x: adjust(x, np.linspace(0.5, 2.0, len(x)), np.linspace(-0.3, 0.3, len(x))),
}


@pytest.mark.parametrize("name", TRANSFORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_keeps_shape_dtype_range_and_input(name, dtype):
    x = images(dtype=dtype)
    before = x.copy()
    out = TRANSFORMS[name](x)
    assert out.shape == x.shape and out.dtype == dtype
    assert out.min() >= -0.5 and out.max() <= 0.5
    assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)


def test_identities():
    x = images()
    n = len(x)
    np.testing.assert_array_equal(hflip(hflip(x)), x)
    np.testing.assert_array_equal(hflip(x), x[..., ::-1])
    np.testing.assert_array_equal(shift(x, np.zeros(n, int), np.zeros(n, int)), x)
    np.testing.assert_array_equal(rotate(x, np.zeros(n)), x)
    np.testing.assert_allclose(adjust(x, np.ones(n), np.zeros(n)), x, atol=1e-7)  # (x - mean) + mean rounds


def test_shift_moves_each_image_by_its_own_offset_exactly():
    x = images(n=6, h=12, w=10, border=0)
    dx, dy = np.array([0, 1, -2, 3, -9, 12]), np.array([2, 0, -1, -3, 4, 0])
    out = shift(x, dx, dy)
    _, _, h, w = x.shape
    for i in range(len(x)):
        for r in range(h):
            for c in range(w):
                inside = 0 <= r - dy[i] < h and 0 <= c - dx[i] < w
                assert out[i, 0, r, c] == (x[i, 0, r - dy[i], c - dx[i]] if inside else -0.5)
    # Right by one is np.roll plus a background column where the pixels came in.
    rolled = np.roll(x[1], 1, axis=-1)
    rolled[..., 0] = -0.5
    np.testing.assert_array_equal(out[1], rolled)
    assert np.all(out[5] == -0.5)


def test_rotate_quarter_and_half_turns_match_rot90():
    x = images(n=3, border=0)
    np.testing.assert_allclose(rotate(x, np.full(3, 90.0)), np.rot90(x, 1, axes=(2, 3)), atol=1e-6)
    np.testing.assert_allclose(rotate(x, np.full(3, -90.0)), np.rot90(x, -1, axes=(2, 3)), atol=1e-6)
    np.testing.assert_allclose(rotate(x, np.full(3, 180.0)), x[..., ::-1, ::-1], atol=1e-6)


@pytest.mark.parametrize("shape", [(28, 28), (20, 28)])
def test_rotate_matches_torch_grid_sample(shape):
    """Bilinear, about the centre, zero-padded once the background is moved to 0."""
    h, w = shape
    x = images(n=6, h=h, w=w, dtype=np.float64, border=0)
    degrees = np.array([-33.0, -10.0, -0.5, 7.0, 15.0, 71.0])
    t = np.deg2rad(degrees)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    # affine_grid maps normalised output (x, y) to normalised input; pixel = centre + normalised * half-size.
    theta = np.zeros((len(x), 2, 3))
    theta[:, 0, 0], theta[:, 0, 1] = np.cos(t), -np.sin(t) * cy / cx
    theta[:, 1, 0], theta[:, 1, 1] = np.sin(t) * cx / cy, np.cos(t)
    grid = F.affine_grid(torch.from_numpy(theta), [len(x), 1, h, w], align_corners=True)
    expected = F.grid_sample(torch.from_numpy(x + 0.5), grid, align_corners=True).numpy() - 0.5
    np.testing.assert_allclose(rotate(x, degrees), expected, atol=1e-10)


def test_rotate_turns_anticlockwise():
    x = np.full((1, 1, 9, 9), -0.5, np.float32)
    x[0, 0, 4, 8] = 0.5  # right of the centre
    out = rotate(x, np.array([90.0]))
    assert np.unravel_index(out.argmax(), out.shape)[2:] == (0, 4)  # above it


def test_adjust_scales_std_and_moves_mean():
    x = images(n=4) * 0.3  # far from the clip
    c, b = np.array([0.8, 1.0, 1.2, 1.1]), np.array([0.05, -0.05, 0.0, 0.02])
    out = adjust(x, c, b)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)) + b, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), x.std(axis=(1, 2, 3)) * c, rtol=1e-5)


def test_transforms_accept_an_empty_batch():
    x = images(n=0)
    for transform in TRANSFORMS.values():
        assert transform(x).shape == x.shape


def test_disabled_returns_an_unchanged_copy_and_draws_nothing():
    x = images()
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    out = augment_batch(x, rng, AugmentConfig(enabled=False))
    np.testing.assert_array_equal(out, x)
    assert out is not x and rng.bit_generator.state == state


def test_strongest_settings_stay_in_range():
    config = AugmentConfig(shift=13, rotate=180.0, brightness=1.0, contrast=1.0)
    out = augment_batch(images(n=64), np.random.default_rng(1), config)
    assert out.dtype == np.float32 and out.min() >= -0.5 and out.max() <= 0.5


def test_same_seed_same_batch_other_seed_other_batch():
    x, config = images(n=32), AugmentConfig()
    a = augment_batch(x, np.random.default_rng(7), config)
    np.testing.assert_array_equal(a, augment_batch(x, np.random.default_rng(7), config))
    assert not np.array_equal(a, augment_batch(x, np.random.default_rng(8), config))


def test_restored_generator_state_replays_the_next_batches():
    x, config = images(n=16), AugmentConfig()
    rng = np.random.default_rng(3)
    augment_batch(x, rng, config)
    saved = rng.bit_generator.state
    first = [augment_batch(x, rng, config) for _ in range(2)]
    resumed = np.random.default_rng(99)
    resumed.bit_generator.state = saved
    for expected in first:
        np.testing.assert_array_equal(augment_batch(x, resumed, config), expected)


def classify(x: np.ndarray, out: np.ndarray, max_shift: int) -> list[str]:
    """Which geometric transform turned each image of ``x`` into ``out`` (no photometric step)."""
    n = len(x)
    offsets = [(dx, dy) for dx in range(-max_shift, max_shift + 1) for dy in range(-max_shift, max_shift + 1)]
    shifted = [shift(x, np.full(n, dx), np.full(n, dy)) for dx, dy in offsets if (dx, dy) != (0, 0)]
    kinds = []
    for i in range(n):
        if np.array_equal(out[i], x[i]):
            kinds.append("none")
        elif np.array_equal(out[i], x[i, :, :, ::-1]):
            kinds.append("flip")
        elif any(np.array_equal(out[i], s[i]) for s in shifted):
            kinds.append("shift")
        else:
            kinds.append("rotate")
    return kinds


def test_geometric_choices_are_equally_likely():
    """4 choices, 1/4 each; a shift that draws (0, 0) (1 in 25 at shift 2) looks like none."""
    n = 2000
    x = images(n=n, h=12, w=12)
    config = AugmentConfig(shift=2, rotate=20.0, brightness=0.0, contrast=0.0)
    kinds = classify(x, augment_batch(x, np.random.default_rng(0), config), max_shift=2)
    observed = np.array([kinds.count(k) for k in ("none", "shift", "flip", "rotate")])
    expected = n * np.array([0.25 + 0.25 / 25, 0.25 - 0.25 / 25, 0.25, 0.25])
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < 16.27, (observed, expected)  # p = 0.001 with 3 degrees of freedom


def test_only_enabled_transforms_are_drawn():
    n = 400
    x = images(n=n, h=12, w=12)
    config = AugmentConfig(shift=0, rotate=0.0, flip=True, brightness=0.0, contrast=0.0)
    kinds = classify(x, augment_batch(x, np.random.default_rng(0), config), max_shift=0)
    assert set(kinds) == {"none", "flip"}
    assert abs(kinds.count("flip") - n / 2) < 3.3 * np.sqrt(n / 4)


def test_photometric_step_changes_every_image():
    x = images(n=20)
    config = AugmentConfig(shift=0, flip=False, rotate=0.0, brightness=0.1, contrast=0.2)
    out = augment_batch(x, np.random.default_rng(0), config)
    assert all(not np.array_equal(o, i) for o, i in zip(out, x, strict=True))
    shift_of_mean = out.mean(axis=(1, 2, 3)) - x.mean(axis=(1, 2, 3))
    assert np.all(np.abs(shift_of_mean) <= 0.1 + 1e-6)


def test_augmentation_examples_are_figure_ready():
    x = images(n=3)
    examples = augmentation_examples(x, np.random.default_rng(0), AugmentConfig(), n_variants=2)
    assert list(examples) == [
        "original",
        "shift (2, 2) px",
        "flip",
        "rotate 10°",
        "contrast ×1.1\nbrightness +0.05",
        "random",
    ]
    assert examples["random"].shape == (2, 3, 28, 28)
    assert all(v.shape == (3, 28, 28) for k, v in examples.items() if k != "random")
    np.testing.assert_array_equal(examples["original"], x[:, 0])
    np.testing.assert_array_equal(examples["flip"], x[:, 0, :, ::-1])
    np.testing.assert_array_equal(examples["shift (2, 2) px"], shift(x, np.full(3, 2), np.full(3, 2))[:, 0])
    assert not np.array_equal(examples["random"][0], examples["random"][1])


def test_augmentation_examples_leave_out_what_is_off_but_still_draw():
    config = AugmentConfig(enabled=False, shift=0, rotate=0.0)
    examples = augmentation_examples(images(n=2), np.random.default_rng(0), config, n_variants=1)
    assert list(examples) == ["original", "flip", "contrast ×1.1\nbrightness +0.05", "random"]
    assert not np.array_equal(examples["random"][0], examples["original"])


def test_geometric_lists_the_choices_in_drawing_order():
    assert AugmentConfig().geometric() == ["none", "shift", "flip", "rotate"]
    assert AugmentConfig(shift=0, flip=False).geometric() == ["none", "rotate"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("shift", -1, "augment.shift must be an integer in 0..13; got -1"),
        ("shift", 14, "augment.shift must be an integer in 0..13; got 14"),
        ("shift", 2.0, "augment.shift must be an integer in 0..13; got 2.0"),
        ("shift", True, "augment.shift must be an integer in 0..13; got True"),
        ("enabled", "yes", "augment.enabled must be true or false; got 'yes'"),
        ("flip", 1, "augment.flip must be true or false; got 1"),
        ("rotate", 200, "augment.rotate must be degrees in 0..180; got 200"),
        ("rotate", float("nan"), "augment.rotate must be degrees in 0..180; got nan"),
        ("brightness", -0.1, "augment.brightness must be a number in 0..1; got -0.1"),
        ("contrast", "0.2", "augment.contrast must be a number in 0..1; got '0.2'"),
        ("erase", 1.5, "augment.erase must be a probability in 0..1 (0 turns it off); got 1.5"),
        ("erase_area", [0.4, 0.1], "augment.erase_area must be two fractions of the image [min, max] with 0 < min"),
        ("erase_area", [0.0, 0.1], "augment.erase_area must be two fractions of the image [min, max] with 0 < min"),
        ("erase_area", 0.3, "augment.erase_area must be two fractions of the image [min, max] with 0 < min"),
    ],
)
def test_config_validation_names_the_key(key, value, message):
    with pytest.raises(ParamsError) as error:
        AugmentConfig(**{key: value})
    assert str(error.value).startswith(message)
    assert isinstance(error.value, ValueError)


def test_config_is_frozen_and_accepts_integer_degrees():
    config = AugmentConfig(rotate=15, brightness=0, contrast=1)
    with pytest.raises(AttributeError):
        config.shift = 3  # type: ignore[misc]


def test_augment_batch_rejects_flat_images():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        augment_batch(np.zeros((4, 784), np.float32), np.random.default_rng(0), AugmentConfig())


ERASE_ONLY = {"shift": 0, "flip": False, "rotate": 0.0, "brightness": 0.0, "contrast": 0.0}


def test_erase_replaces_exactly_each_rectangle():
    x, fill = images(n=4), np.full((4, 1, 28, 28), 9.0, np.float32)
    top, left, height, width = np.array([0, 5, 20, 3]), np.array([0, 7, 25, 3]), np.array([3, 1, 8, 0]), [4, 2, 3, 5]
    expected = x.copy()
    for i in range(4):
        expected[i, :, top[i] : top[i] + height[i], left[i] : left[i] + width[i]] = 9.0
    np.testing.assert_array_equal(erase(x, top, left, height, width, fill), expected)


def erased_boxes(out: np.ndarray, background: float) -> list[tuple[int, int] | None]:
    """(height, width) of the erased part of each image of a constant ``background`` image, which
    must be one filled rectangle; None when the image was left alone."""
    boxes = []
    for image in out[:, 0]:
        rows, cols = np.nonzero(image != background)
        if not rows.size:
            boxes.append(None)
            continue
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert rows.size == h * w, "the erased pixels form one rectangle"
        boxes.append((h, w))
    return boxes


def test_erased_rectangles_have_the_configured_area_and_aspect():
    n, area = 3000, (0.05, 0.25)
    x = np.full((n, 1, 28, 28), 7.0, np.float32)  # outside the fill's range: erased pixels stand out
    out = augment_batch(x, np.random.default_rng(0), AugmentConfig(erase=1.0, erase_area=area, **ERASE_ONLY))
    boxes = erased_boxes(out, 7.0)
    assert None not in boxes
    h, w = np.array(boxes).T
    fraction = h * w / 28**2
    slack = (h + w + 1) / 2 / 28**2  # rounding each side to whole pixels
    assert np.all(fraction >= area[0] - slack) and np.all(fraction <= area[1] + slack)
    assert abs(fraction.mean() - np.mean(area)) < 0.01
    ratio = h / w
    assert ratio.min() < 0.45 and ratio.max() > 1 / 0.45 and abs(np.median(np.log(ratio))) < 0.1
    assert np.all((out[out != 7.0] >= -0.5) & (out[out != 7.0] <= 0.5))


def test_erasing_probability():
    n, p = 4000, 0.3
    x = np.full((n, 1, 12, 12), 7.0, np.float32)
    out = augment_batch(x, np.random.default_rng(1), AugmentConfig(erase=p, **ERASE_ONLY))
    erased = sum(box is not None for box in erased_boxes(out, 7.0))
    assert abs(erased / n - p) < 3.3 * np.sqrt(p * (1 - p) / n)


def six_draws(rng: np.random.Generator, n: int) -> None:
    """The draws ``augment_batch`` documents for the default config: choice, dx, dy, angle, contrast, brightness."""
    rng.integers(4, size=n)
    rng.integers(-2, 3, size=n)
    rng.integers(-2, 3, size=n)
    for _ in range(3):
        rng.uniform(size=n)


def test_erasing_comes_last_and_off_changes_nothing():
    """Erasing draws after every other transform: with it on, each image outside its rectangle is
    the image without it, bit for bit; with it off (the default) the generator advances exactly as
    the six documented draws of the other transforms."""
    x, seed = images(n=64), 5
    plain = augment_batch(x, np.random.default_rng(seed), AugmentConfig())
    rng = np.random.default_rng(seed)
    erased = augment_batch(x, rng, AugmentConfig(erase=1.0))
    replay = np.random.default_rng(seed)
    six_draws(replay, 64)
    top, left, height, width = erasing_rectangles(replay, 64, (28, 28), 1.0, AugmentConfig().erase_area)
    replay.uniform(size=x.shape)
    assert rng.bit_generator.state == replay.bit_generator.state
    rows, cols = np.arange(28)[None, :, None], np.arange(28)[None, None, :]
    t, l, hh, ww = (a[:, None, None] for a in (top, left, height, width))
    outside = ~((rows >= t) & (rows < t + hh) & (cols >= l) & (cols < l + ww))
    np.testing.assert_array_equal(erased[:, 0][outside], plain[:, 0][outside])
    assert not np.array_equal(erased, plain)

    off = np.random.default_rng(seed)
    augment_batch(x, off, AugmentConfig())
    replay = np.random.default_rng(seed)
    six_draws(replay, 64)
    assert off.bit_generator.state == replay.bit_generator.state


def test_erasing_is_fixed_by_the_seed():
    x, config = images(n=32), AugmentConfig(erase=0.5)
    a = augment_batch(x, np.random.default_rng(7), config)
    np.testing.assert_array_equal(a, augment_batch(x, np.random.default_rng(7), config))
    assert not np.array_equal(a, augment_batch(x, np.random.default_rng(8), config))


def test_erase_area_from_yaml_becomes_a_tuple():
    assert AugmentConfig(erase_area=[0.1, 0.2]).erase_area == (0.1, 0.2)


def test_augmentation_examples_show_erasing_when_on():
    examples = augmentation_examples(images(n=2), np.random.default_rng(0), AugmentConfig(erase=0.5), n_variants=1)
    assert list(examples)[-2:] == ["erase", "random"]
    assert all(not np.array_equal(e, o) for e, o in zip(examples["erase"], examples["original"], strict=True))
