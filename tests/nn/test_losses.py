"""Cross-entropy and center loss against PyTorch and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lablib.nn import CenterLoss, CrossEntropyLoss
from lablib.nn.gradient_check import eval_numerical_gradient, rel_error
from lablib.torch_twin import CenterLoss as TorchCenterLoss


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize(("batch", "scale"), [(1, 1.0), (16, 3.0), (5, 1e4)])
def test_cross_entropy_matches_torch(smoothing, batch, scale):
    rng = np.random.default_rng(batch)
    logits = (rng.standard_normal((batch, 10)) * scale).astype(np.float32)
    target = rng.integers(0, 10, batch)
    ours = CrossEntropyLoss(label_smoothing=smoothing)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = ours(logits, target)
        grad = ours.backward()
    tl = torch.from_numpy(logits).requires_grad_()
    expected = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(tl, torch.from_numpy(target))
    expected.backward()
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, expected.item(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, tl.grad.numpy(), rtol=1e-4, atol=1e-6)
    assert grad.dtype == np.float32


def test_cross_entropy_finite_differences():
    rng = np.random.default_rng(0)
    logits, target = rng.standard_normal((4, 10)), rng.integers(0, 10, 4)
    loss = CrossEntropyLoss(label_smoothing=0.2)
    loss(logits, target)
    analytic = loss.backward()
    numeric = eval_numerical_gradient(lambda z: loss(z, target), logits, h=1e-5)
    assert rel_error(analytic, numeric) < 1e-6


def test_cross_entropy_refuses_bad_targets():
    with pytest.raises(ValueError, match=r"class indices in 0\.\.9"):
        CrossEntropyLoss()(np.zeros((2, 10), np.float32), np.array([0, 10]))


def make_center_pair(feat_dim: int = 6, alpha: float = 0.5):
    ours = CenterLoss(10, feat_dim, alpha=alpha, rng=np.random.default_rng(0))
    twin = TorchCenterLoss(10, feat_dim, alpha=alpha)
    twin.centers.copy_(torch.from_numpy(ours.centers))
    return ours, twin


def test_center_loss_matches_torch_and_updates_centres_alike():
    rng = np.random.default_rng(1)
    ours, twin = make_center_pair()
    for _ in range(3):
        features = rng.standard_normal((12, 6)).astype(np.float32)
        target = rng.integers(0, 4, 12)
        tf = torch.from_numpy(features).requires_grad_()
        expected = twin(tf, torch.from_numpy(target))
        expected.backward()
        np.testing.assert_allclose(ours(features, target), expected.item(), rtol=1e-5)
        np.testing.assert_allclose(ours.backward(), tf.grad.numpy(), rtol=1e-5, atol=1e-7)
        ours.update_centers()
        twin.update_centers(tf.detach(), torch.from_numpy(target))
        np.testing.assert_allclose(ours.centers, twin.centers.numpy(), rtol=1e-5, atol=1e-6)


def test_center_update_follows_wen_et_al_by_hand():
    ours = CenterLoss(2, 1, alpha=0.5, dtype=np.float64)
    ours.centers[:] = [[0.0], [10.0]]
    ours(np.array([[2.0], [4.0], [7.0]]), np.array([0, 0, 1]))
    ours.update_centers()
    # class 0: sum (c - x) = -6, n = 2 -> c -= 0.5 * -6 / 3 = +1; class 1: (10 - 7) / 2 * 0.5 = 0.75
    np.testing.assert_allclose(ours.centers, [[1.0], [9.25]])


def test_center_loss_finite_differences():
    rng = np.random.default_rng(2)
    loss = CenterLoss(3, 4, dtype=np.float64, rng=rng)
    features, target = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    loss(features, target)
    analytic = loss.backward()
    assert rel_error(analytic, eval_numerical_gradient(lambda f: loss(f, target), features, h=1e-5)) < 1e-6


def test_centres_are_state_not_parameters():
    loss = CenterLoss(10, 256)
    assert list(loss.parameters()) == []
    assert list(loss.state_dict()) == ["centers"]
