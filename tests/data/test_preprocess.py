"""Preprocessing: the [-0.5, 0.5] scaling and the all-or-nothing, memory-mappable .npy output."""

from __future__ import annotations

import numpy as np
import pytest

from lablib.data.preprocess import save_arrays, to_tensor
from tests.data.conftest import snapshot


def test_to_tensor_scales_to_minus_half_plus_half():
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    images[0, 0, :3] = [0, 255, 51]
    x = to_tensor(images)
    assert x.dtype == np.float32 and x.shape == (6, 1, 28, 28)
    assert x[0, 0, 0, :3].tolist() == [-0.5, 0.5, pytest.approx(-0.3, abs=1e-7)]
    np.testing.assert_allclose(x[:, 0], images / 255.0 - 0.5, rtol=0, atol=1e-7)
    assert images[0, 0, 1] == 255, "the input must not change"


@pytest.mark.parametrize("images", [np.zeros((2, 28, 28), np.float32), np.zeros((2, 1, 28, 28), np.uint8)])
def test_to_tensor_refuses_anything_but_uint8_images(images):
    with pytest.raises(ValueError, match="uint8 images of shape"):
        to_tensor(images)


def test_save_arrays_round_trips_through_mmap(tmp_path):
    arrays = {
        "train_images": to_tensor(np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)),
        "train_labels": np.array([3, 9], dtype=np.int64),
    }
    save_arrays(tmp_path / "prepared", arrays)
    for name, array in arrays.items():
        loaded = np.load(tmp_path / "prepared" / f"{name}.npy", mmap_mode="r")
        assert isinstance(loaded, np.memmap) and loaded.dtype == array.dtype
        np.testing.assert_array_equal(loaded, array)


def test_save_arrays_replaces_the_folder(tmp_path):
    out = tmp_path / "prepared"
    save_arrays(out, {"old": np.zeros(3)})
    save_arrays(out, {"new": np.ones(3)})
    assert sorted(p.name for p in out.iterdir()) == ["new.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]


def test_failed_save_leaves_the_previous_folder(tmp_path):
    out = tmp_path / "prepared"
    save_arrays(out, {"labels": np.arange(4)})
    before = snapshot(out)
    with pytest.raises(ValueError, match="allow_pickle"):
        save_arrays(out, {"labels": np.arange(5), "bad": np.array([{}], dtype=object)})
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]
