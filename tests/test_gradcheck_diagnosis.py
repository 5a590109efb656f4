"""Every FAIL says why: each diagnosis on a planted bug, directly and through the command; a student's crash is a
FAIL that names its line; an epsilon guard passes while bugs of its size fail; the tolerance pinned."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lablib.gradcheck import main
from lablib.gradcheck.compare import FINITE_DIFFERENCES, TOLERANCE
from lablib.gradcheck.diagnosis import Context, diagnose
from lablib.gradcheck.foreign import Foreign
from lablib.gradcheck.layer import check_layer
from lablib.gradcheck.result import Check
from lablib.nn.reference import Conv2dIm2col

RNG = np.random.default_rng(0)
EXPECTED = RNG.standard_normal((4, 6))
IMAGE = RNG.standard_normal((2, 3, 6, 6))


def _border_wrong() -> np.ndarray:
    wrong = IMAGE.copy()
    wrong[..., 0, :] = 0
    return wrong


def _stride_wrong() -> np.ndarray:
    wrong = IMAGE.copy()
    wrong[..., 1::2] *= 2
    return wrong


def _one_entry() -> np.ndarray:
    wrong = EXPECTED.copy()
    wrong[2, 3] += 0.5
    return wrong


@pytest.mark.parametrize(
    ("ours", "expected", "input_shape", "says"),
    [
        (
            np.zeros((4, 1)),
            np.zeros((1, 10)),
            (4, 10),
            "summed over axis 1, the features, instead of axis 0, the batch",
        ),
        (EXPECTED.T, EXPECTED, (4, 6), "shape (6, 4), expected (4, 6): transposed"),
        (EXPECTED / 4, EXPECTED, (4, 6), "off by a factor 1/N = 1/4: divided by the batch size, a mean where a sum"),
        (EXPECTED * 4, EXPECTED, (4, 6), "off by a factor N = 4: not divided by the batch size"),
        (EXPECTED * 2, EXPECTED, (3, 6), "off by a factor 2"),
        (EXPECTED[:4, :4].T, EXPECTED[:4, :4], (4, 4), "transposed: the right entries with rows and columns swapped"),
        (-EXPECTED, EXPECTED, (4, 6), "the sign is flipped"),
        (np.zeros_like(EXPECTED), EXPECTED, (4, 6), "all zero"),
        (_border_wrong(), IMAGE, IMAGE.shape, "all at the border (first and last rows and columns): the padding"),
        (_stride_wrong(), IMAGE, IMAGE.shape, "all at odd positions of axis 3, the width (every other position)"),
        (_one_entry(), EXPECTED, (4, 6), "1 of 24 entries wrong, at (2, 3)"),
        (EXPECTED + RNG.standard_normal(EXPECTED.shape), EXPECTED, (4, 6), "wrong throughout"),
    ],
)
def test_each_diagnosis_names_its_planted_bug(ours, expected, input_shape, says):
    assert says in diagnose(ours, expected, Context(input_shape, 1e-6))


def test_a_correct_factor_of_one_is_no_constant_factor():
    almost = EXPECTED.copy()
    almost[0, 0] += 1e-3
    assert "factor" not in diagnose(almost, EXPECTED, Context((4, 6), 1e-6))


LINEAR = """
import numpy as np
from lablib.nn import Module, Parameter


class MyLinear(Module):
    def __init__(self, fan_in, fan_out):
        super().__init__()
        self.weight = Parameter(np.zeros((fan_out, fan_in), np.float32))
        self.bias = Parameter(np.zeros(fan_out, np.float32))

    def forward(self, x):
        self.x = x
        return x @ self.weight.data.T + self.bias.data

    def backward(self, g):
        self.weight.accumulate_grad(g.T @ self.x)
        self.bias.accumulate_grad(g.sum(axis=0))
        return g @ self.weight.data
"""
LINEAR_ARGS = ["--args", "5, 5", "--input", "4,5"]
TWIN = ["--twin", "torch.nn.Linear"]


def gradcheck(tmp_path: Path, source: str, *args: str, name: str = "MyLinear") -> tuple[int, str]:
    layers = tmp_path / "my_layers.py"
    layers.write_text(source)
    result = CliRunner().invoke(main, [f"{layers}:{name}", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("wrong", "right", "says"),
    [
        ("g.T @ self.x", "self.x.T @ g", "transposed"),
        ("g.sum(axis=0)", "g.mean(axis=0)", "divided by the batch size, a mean where a sum is needed"),
        ("return g @ self.weight.data", "return -g @ self.weight.data", "the sign is flipped"),
        ("self.weight.accumulate_grad(g.T @ self.x)", "self.weight.accumulate_grad(0 * g.T @ self.x)", "all zero"),
        (
            "return x @ self.weight.data.T + self.bias.data",
            "return x @ self.weight.data + self.bias.data",
            "the forward already differs from the twin, so the backward is not judged",
        ),
    ],
)
def test_a_planted_bug_is_named_in_the_output_and_the_class_row(tmp_path, wrong, right, says):
    assert wrong in LINEAR
    verdict = tmp_path / "verdict.json"
    code, output = gradcheck(tmp_path, LINEAR.replace(wrong, right), *TWIN, *LINEAR_ARGS, "--json", str(verdict))
    assert code == 1 and says in output, output
    assert says in Check.from_json(verdict.read_text()).summary()["reason"]


# The course template's fully connected layer, its bias a row and its gradients beside its parameters.
TEMPLATE_LINEAR = """
import numpy as np


class FullyConnected:
    def __init__(self, fan_in, fan_out):
        self.weights = np.zeros((fan_in, fan_out))
        self.bias = np.zeros((1, fan_out))

    def forward(self, x):
        self.x = x
        return x @ self.weights + self.bias

    def backward(self, g):
        self.weights_grad = self.x.T @ g
        self.bias_grad = g.sum(axis=1, keepdims=True)
        return g @ self.weights.T
"""


def test_a_bias_gradient_summed_over_the_features_says_so(tmp_path):
    code, output = gradcheck(
        tmp_path, TEMPLATE_LINEAR, *TWIN, "--args", "5, 10", "--input", "4,5", name="FullyConnected"
    )
    assert code == 1, output
    assert "shape (4, 1), expected (1, 10): summed over axis 1, the features, instead of axis 0, the batch" in output


BACKWARD_RAISES = LINEAR.replace("        return g @ self.weight.data", "        return g.reshape(7, -1)")


def test_a_backward_that_raises_is_a_fail_naming_the_exception_and_the_line(tmp_path):
    verdict = tmp_path / "verdict.json"
    code, output = gradcheck(tmp_path, BACKWARD_RAISES, *TWIN, *LINEAR_ARGS, "--json", str(verdict))
    assert code == 1, output
    line = BACKWARD_RAISES.splitlines().index("        return g.reshape(7, -1)") + 1
    assert "MyLinear(5, 5).backward failed: ValueError: cannot reshape array" in output
    assert f"my_layers.py, line {line})" in output
    row = Check.from_json(verdict.read_text()).summary()
    assert row["verdict"] == "FAIL" and f"line {line}" in row["reason"]


def test_a_constructor_that_raises_is_a_fail_but_a_bad_argument_or_shape_is_misuse(tmp_path):
    raises = LINEAR.replace("super().__init__()", "super().__init__()\n        assert fan_in > 5, 'too few'")
    code, output = gradcheck(tmp_path, raises, *TWIN, *LINEAR_ARGS)
    assert code == 1 and "AssertionError: too few" in output and "line 9)" in output, output
    assert gradcheck(tmp_path, LINEAR, *TWIN, "--args", "5", "--input", "4,5")[0] == 2  # MyLinear(5): our misuse
    assert gradcheck(tmp_path, LINEAR, "--args", "5, 5", "--input", "4,6")[0] == 2  # no twin vouches for the shape


# A softmax cross-entropy as students write it: a guard inside the log, the backward without it.
GUARDED = """
import numpy as np


class SoftmaxLoss:
    def forward(self, x, target):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.p = e / e.sum(axis=1, keepdims=True)
        self.t = target
        return self.p, -np.sum(target * np.log(self.p + EPS)) / len(x)

    def backward(self):
        return (self.p - self.t) / len(self.t)
"""
LOSS_ARGS = ["--twin", "torch.nn.CrossEntropyLoss", "--input", "4,10"]


@pytest.mark.parametrize("eps", [1e-12, 1e-9, 1e-7, 1e-5])
def test_an_epsilon_guard_passes_with_a_note(tmp_path, eps):
    code, output = gradcheck(tmp_path, GUARDED.replace("EPS", repr(eps)), *LOSS_ARGS, name="SoftmaxLoss")
    assert code == 0, output
    if eps >= 1e-7:
        assert "an epsilon guard such as log(p + eps) explains both" in output


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("(self.p - self.t) / len(self.t)", "(self.p - self.t) / len(self.t) * 1.01"),  # a gradient off by 1 %
        ("(self.p - self.t) / len(self.t)", "(self.p - self.t * 1.01) / len(self.t)"),
        (  # within autograd's float32 tolerance, far beyond what the guard moves: finite differences catch it
            "return (self.p - self.t) / len(self.t)",
            "d = (self.p - self.t) / len(self.t)\n        d[0, 0] += 5e-5\n        return d",
        ),
        ("return (self.p - self.t) / len(self.t)", "return 2 * (self.p - self.t) / len(self.t) / 2 * (1 + 1e-3)"),
    ],
)
def test_bugs_the_size_of_a_guard_still_fail(tmp_path, wrong, right):
    source = GUARDED.replace("EPS", "1e-7").replace(wrong, right)
    code, output = gradcheck(tmp_path, source, *LOSS_ARGS, name="SoftmaxLoss")
    assert code == 1, output


def test_a_loss_backward_that_ignores_grad_output_fails(tmp_path, monkeypatch):
    """The loss is checked as one term of a larger sum: an adapter that drops the scale is caught."""

    def unscaled(self, grad_output=1.0):
        return self.call_backward()

    monkeypatch.setattr(Foreign, "backward", unscaled)
    code, output = gradcheck(tmp_path, GUARDED.replace("EPS", "1e-12"), *LOSS_ARGS, name="SoftmaxLoss")
    assert code == 1 and "input.grad differs from autograd" in output, output


@pytest.mark.parametrize("off", [1e-3, 3e-5])
def test_one_entry_just_off_fails_by_finite_differences_alone(tmp_path, off):
    """One entry off by 1e-3 or 3e-5 of itself: between the tolerance and a tolerance loosened 100 times."""
    one_entry = LINEAR.replace(
        "        return g @ self.weight.data",
        f"        dx = g @ self.weight.data\n        dx[0, 0] *= 1 + {off}\n        return dx",
    )
    code, output = gradcheck(tmp_path, one_entry, *LINEAR_ARGS)
    assert code == 1 and "1 of 20 entries wrong, at (0, 0)" in output, output


def test_a_missing_one_over_n_at_batch_2_fails_by_finite_differences_alone(tmp_path):
    mean = LINEAR.replace("g.sum(axis=0)", "g.mean(axis=0)")
    code, output = gradcheck(tmp_path, mean, "--args", "5, 5", "--input", "2,5", "--input", "2,5")
    assert code == 1 and "off by a factor 1/N = 1/2" in output, output


def test_a_correct_layer_lies_far_within_the_tolerance():
    result = check_layer(lambda: Conv2dIm2col(2, 3, 3, stride=2, padding=1), [(2, 2, 5, 5), (3, 2, 6, 6)])
    worst = max(c.max_rel for c in result.comparisons if c.against == FINITE_DIFFERENCES)
    assert result.passed and worst < TOLERANCE[FINITE_DIFFERENCES] / 100


@pytest.mark.parametrize("eps", ["1e-12", "1e-9", "1e-7", "1e-5"])
def test_a_layer_guarded_in_both_passes_passes(eps):
    """``sqrt(var + eps)`` sits in BatchNorm's forward and backward alike: whatever its size, the layer passes."""
    args = ["--twin", "torch.nn.BatchNorm2d", "--args", f"3, eps={eps}", "--twin-args", "3", "--input", "4,3,5,5"]
    result = CliRunner().invoke(main, ["tests/handins/template/layer.py:BatchNorm2d", *args])
    assert result.exit_code == 0, result.output


# A softmax layer as students guard it: eps in the denominator, the backward the unguarded softmax's.
GUARDED_SOFTMAX = """
import numpy as np


class Softmax:
    def forward(self, x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.out = e / (e.sum(axis=1, keepdims=True) + EPS)
        return self.out

    def backward(self, g):
        return self.out * (g - np.sum(g * self.out, axis=1, keepdims=True))
"""
SOFTMAX_ARGS = ["--twin", "torch.nn.Softmax", "--twin-args", "dim=1", "--input", "4,10"]


@pytest.mark.parametrize("eps", ["1e-12", "1e-9", "1e-7", "1e-5"])
def test_a_layer_guarded_in_its_forward_alone_passes(tmp_path, eps):
    """The guard moves a softmax by eps / sum(e) <= eps of itself: within finite differences' tolerance up to
    1e-7; beyond, the rule of excuse_forward_guard passes it with a note. A backward off by 1 % still fails."""
    code, output = gradcheck(tmp_path, GUARDED_SOFTMAX.replace("EPS", eps), *SOFTMAX_ARGS, name="Softmax")
    assert code == 0, output
    if eps == "1e-5":
        assert "an epsilon guard such as e / (sum(e) + eps) explains both" in output
    wrong = GUARDED_SOFTMAX.replace("EPS", eps).replace("(g - np.sum(g * self.out", "(g - 0.99 * np.sum(g * self.out")
    code, output = gradcheck(tmp_path, wrong, *SOFTMAX_ARGS, name="Softmax")
    assert code == 1, output


@pytest.mark.parametrize("eps", ["1e-12", "1e-5"])
def test_a_softmax_bug_the_size_of_a_guard_still_fails(tmp_path, eps):
    """A backward 5e-5 off passes autograd's float32 tolerance (1e-4) and exceeds what any guard up to 1e-5
    explains (twice the forward's shift): finite differences fail it, guarded forward or not."""
    wrong = GUARDED_SOFTMAX.replace("EPS", eps).replace("return self.out * (g", "return 1.00005 * self.out * (g")
    code, output = gradcheck(tmp_path, wrong, *SOFTMAX_ARGS, name="Softmax")
    assert code == 1, output
    assert "explains both" not in output


@pytest.mark.parametrize(
    ("wrong", "right", "says"),
    [
        (
            "np.sum(output_grad, axis=0, keepdims=True).T",
            "np.mean(output_grad, axis=0, keepdims=True).T",
            "finite differences 2.18369: off by a factor 1/N = 1/3: divided by the batch size",
        ),
        (
            "np.sum(output_grad, axis=0, keepdims=True).T",
            "np.sum(output_grad, axis=1, keepdims=True)",
            "one entry per sample, summed over the features instead of over the batch",
        ),
    ],
)
def test_a_network_names_the_bug_of_a_layer_s_own_backward(tmp_path, wrong, right, says):
    folder = tmp_path / "handin"
    shutil.copytree(Path("tests/handins/template"), folder)
    source = (folder / "layer.py").read_text()
    assert wrong in source
    (folder / "layer.py").write_text(source.replace(wrong, right))
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    command = [sys.executable, "-m", "lablib.gradcheck", "network.py:Network"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 1 and says in done.stdout, done.stdout + done.stderr
