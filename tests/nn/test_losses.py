"""Cross-entropy and center loss against PyTorch autograd, finite differences and worked examples."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from lablib.nn import CenterLoss, CrossEntropyLoss
from lablib.nn.gradient_check import eval_numerical_gradient, rel_error
from lablib.torch_twin import CenterLoss as TorchCenterLoss


def torch_cross_entropy(logits: np.ndarray, target: np.ndarray, smoothing: float) -> tuple[float, np.ndarray]:
    tl = torch.from_numpy(logits.copy()).requires_grad_()
    loss = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(tl, torch.from_numpy(target))
    loss.backward()
    return loss.item(), tl.grad.numpy()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("batch", [1, 16])
def test_cross_entropy_matches_torch(smoothing, batch):
    rng = np.random.default_rng(batch)
    logits = (rng.standard_normal((batch, 10)) * 3).astype(np.float32)
    target = rng.integers(0, 10, batch)
    ours = CrossEntropyLoss(label_smoothing=smoothing)
    loss = ours(logits, target)
    grad = ours.backward()
    expected_loss, expected_grad = torch_cross_entropy(logits, target, smoothing)
    assert isinstance(loss, float)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_is_finite_and_exact_for_huge_logits(smoothing):
    rng = np.random.default_rng(7)
    logits = rng.choice(np.array([-1e4, 1e4], np.float32), size=(8, 10))
    logits[0] = -1e4  # a row with every logit equal
    logits[1, 3] += 1.0  # two large logits one apart
    target = rng.integers(0, 10, 8)
    target[2] = np.flatnonzero(logits[2] < 0)[0]  # a target at -1e4 while others sit at +1e4
    ours = CrossEntropyLoss(label_smoothing=smoothing)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        loss = ours(logits, target)
        grad = ours.backward()
    expected_loss, expected_grad = torch_cross_entropy(logits, target, smoothing)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss > 1e3
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-5)


def test_cross_entropy_keeps_the_dtype_of_the_logits():
    logits, target = np.zeros((3, 4)), np.array([0, 1, 3])
    loss = CrossEntropyLoss()
    assert loss(logits, target) == pytest.approx(np.log(4))
    assert loss.backward().dtype == np.float64


def test_cross_entropy_scales_its_gradient_by_grad_output():
    rng = np.random.default_rng(3)
    logits, target = rng.standard_normal((5, 10)).astype(np.float32), rng.integers(0, 10, 5)
    loss = CrossEntropyLoss(label_smoothing=0.1)
    loss(logits, target)
    np.testing.assert_allclose(loss.backward(0.3), 0.3 * loss.backward(), rtol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_finite_differences(smoothing):
    rng = np.random.default_rng(0)
    logits, target = rng.standard_normal((4, 10)), rng.integers(0, 10, 4)
    loss = CrossEntropyLoss(label_smoothing=smoothing)
    loss(logits, target)
    analytic = loss.backward()
    numeric = eval_numerical_gradient(lambda z: loss(z, target), logits, h=1e-5)
    assert rel_error(analytic, numeric) < 1e-7


def test_cross_entropy_refuses_bad_targets():
    logits = np.zeros((2, 10), np.float32)
    with pytest.raises(ValueError, match=r"class indices in 0\.\.9, got 0\.\.10"):
        CrossEntropyLoss()(logits, np.array([0, 10]))
    with pytest.raises(ValueError, match=r"class indices in 0\.\.9, got -1\.\.3"):
        CrossEntropyLoss()(logits, np.array([-1, 3]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        CrossEntropyLoss()(logits, np.array([[0, 1]]))
    with pytest.raises(TypeError, match="integer class indices"):
        CrossEntropyLoss()(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropyLoss(label_smoothing=1.5)


def make_center_pair(num_classes: int = 10, feat_dim: int = 6, alpha: float = 0.5):
    ours = CenterLoss(num_classes, feat_dim, alpha=alpha, rng=np.random.default_rng(0))
    twin = TorchCenterLoss(num_classes, feat_dim, alpha=alpha)
    twin.centers.copy_(torch.from_numpy(ours.centers))
    return ours, twin


@pytest.mark.parametrize("alpha", [0.5, 0.1])
def test_center_loss_matches_torch_and_updates_centres_alike(alpha):
    rng = np.random.default_rng(1)
    ours, twin = make_center_pair(alpha=alpha)
    for _ in range(3):
        features = rng.standard_normal((12, 6)).astype(np.float32)
        target = rng.integers(0, 4, 12)  # classes 4..9 are absent and must not move
        tf = torch.from_numpy(features).requires_grad_()
        expected = twin(tf, torch.from_numpy(target))
        expected.backward()
        np.testing.assert_allclose(ours(features, target), expected.item(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.backward(), tf.grad.numpy(), rtol=1e-5, atol=1e-7)
        before = ours.centers.copy()
        ours.update_centers()
        twin.update_centers(tf.detach(), torch.from_numpy(target))
        assert ours.centers.dtype == np.float32
        np.testing.assert_allclose(ours.centers, twin.centers.numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(ours.centers[4:], before[4:])
        assert not np.array_equal(ours.centers[:4], before[:4])


def test_center_loss_by_hand():
    loss = CenterLoss(3, 1, alpha=0.5, dtype=np.float64)
    loss.centers[:] = [[0.0], [10.0], [-5.0]]
    features, target = np.array([[2.0], [4.0], [7.0]]), np.array([0, 0, 1])
    assert loss(features, target) == pytest.approx(0.5 * (2**2 + 4**2 + 3**2) / 3)
    np.testing.assert_allclose(loss.backward(), [[2 / 3], [4 / 3], [-1]])
    loss.update_centers()
    # class 0: sum(c - x) = -6 over 1 + 2 -> c = 0 - 0.5 * -2 = 1; class 1: 3 / 2 -> c = 10 - 0.75
    np.testing.assert_allclose(loss.centers, [[1.0], [9.25], [-5.0]])


def test_center_loss_finite_differences():
    rng = np.random.default_rng(2)
    loss = CenterLoss(3, 4, dtype=np.float64, rng=rng)
    features, target = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    loss(features, target)
    analytic = loss.backward()
    numeric = eval_numerical_gradient(lambda f: loss(f, target), features, h=1e-5)
    assert rel_error(analytic, numeric) < 1e-7


def test_centres_are_a_standard_normal_buffer_not_a_parameter():
    loss = CenterLoss(10, 256, rng=np.random.default_rng(4))
    assert list(loss.parameters()) == []
    assert list(loss.state_dict()) == ["centers"]
    assert loss.centers.dtype == np.float32
    assert abs(loss.centers.mean()) < 0.03 and abs(loss.centers.std() - 1) < 0.03
    np.testing.assert_array_equal(loss.centers, CenterLoss(10, 256, rng=np.random.default_rng(4)).centers)
    twin = TorchCenterLoss(10, 256)
    assert list(twin.state_dict()) == ["centers"] and list(twin.parameters()) == []


def test_centres_survive_state_dict_and_dtype_casts():
    source = CenterLoss(4, 3, rng=np.random.default_rng(5))
    copy = CenterLoss(4, 3, rng=np.random.default_rng(6))
    copy.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(copy.centers, source.centers)
    copy.double()
    assert copy.centers.dtype == np.float64 and copy.state_dict()["centers"] is copy.centers


def test_center_loss_refuses_bad_input():
    loss = CenterLoss(3, 4)
    with pytest.raises(ValueError, match=r"class indices in 0\.\.2"):
        loss(np.zeros((2, 4), np.float32), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        loss(np.zeros((2, 5), np.float32), np.array([0, 1]))
