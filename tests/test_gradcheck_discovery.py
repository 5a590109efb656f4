"""Gradients and running statistics under names no convention knows, found by how the layer behaves.

The hand-ins are written here as students write them: a BatchNorm2d whose running statistics are
``run_mean``/``run_var``, a FullyConnected whose gradients are ``grad_w``/``grad_b`` or ``foo``/``bar``.
Each correct one passes with its tensors compared; what cannot be matched is left out with one line
naming it and the ``--param`` that would compare it, and the other checks still run; a bug still fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lablib.gradcheck import main
from lablib.gradcheck.discovery import probing_input
from tests.gradcheck_table import verdicts

BATCHNORM = """
import numpy as np


class BatchNorm2d:
    def __init__(self, num_features, momentum=0.9, eps=1e-5):
        self.gamma = np.ones((1, num_features, 1, 1))
        self.beta = np.zeros((1, num_features, 1, 1))
        self.run_mean = np.zeros((1, num_features, 1, 1))
        self.run_var = np.ones((1, num_features, 1, 1))
        self.momentum, self.eps = momentum, eps

    def forward(self, input, training=True):
        if training:
            mean = input.mean(axis=(0, 2, 3), keepdims=True)
            var = input.var(axis=(0, 2, 3), keepdims=True)
            self.run_mean = self.momentum * self.run_mean + (1 - self.momentum) * mean
            self.run_var = self.momentum * self.run_var + (1 - self.momentum) * var
        else:
            mean, var = self.run_mean, self.run_var
        self.std = np.sqrt(var + self.eps)
        self.x_hat = (input - mean) / self.std
        return self.gamma * self.x_hat + self.beta

    def backward(self, output_grad):
        m = output_grad.shape[0] * output_grad.shape[2] * output_grad.shape[3]
        self.d_gamma = np.sum(output_grad * self.x_hat, axis=(0, 2, 3), keepdims=True)
        self.d_beta = np.sum(output_grad, axis=(0, 2, 3), keepdims=True)
        d_x_hat = output_grad * self.gamma
        return (
            m * d_x_hat
            - np.sum(d_x_hat, axis=(0, 2, 3), keepdims=True)
            - self.x_hat * np.sum(d_x_hat * self.x_hat, axis=(0, 2, 3), keepdims=True)
        ) / (m * self.std)
"""

# Both running statistics in one (2, C) array: no array moves as PyTorch's (C,) buffers do.
STACKED = BATCHNORM.replace(
    "self.run_mean = np.zeros((1, num_features, 1, 1))\n        self.run_var = np.ones((1, num_features, 1, 1))",
    "self.stats = np.zeros((2, num_features))",
).replace(
    "self.run_mean = self.momentum * self.run_mean + (1 - self.momentum) * mean\n"
    "            self.run_var = self.momentum * self.run_var + (1 - self.momentum) * var",
    "self.stats = 0.9 * self.stats + 0.1 * np.stack([mean.ravel(), var.ravel()])",
)

FULLY_CONNECTED = """
import numpy as np


class FullyConnected:
    def __init__(self, in_features, out_features):
        self.weights = np.random.randn(in_features, out_features) * 0.01
        self.biases = np.zeros((out_features, 1))
        self.grad_w = np.zeros_like(self.weights)
        self.grad_b = np.zeros_like(self.biases)

    def forward(self, input):
        self.input = input
        return input @ self.weights + self.biases.T

    def backward(self, output_grad):
        self.grad_w = self.input.T @ output_grad
        self.grad_b = np.sum(output_grad, axis=0, keepdims=True).T
        return output_grad @ self.weights.T
"""

FOO_BAR = FULLY_CONNECTED.replace("self.grad_w", "self.foo").replace("self.grad_b", "self.bar")
BN_ARGS = ["--twin", "torch.nn.BatchNorm2d", "--args", "3", "--input", "4,3,5,5"]
FC_ARGS = ["--twin", "torch.nn.Linear", "--args", "5, 4", "--input", "3,5"]


def gradcheck(tmp_path: Path, source: str, name: str, args: list[str]) -> tuple[int, str]:
    layers = tmp_path / "layer.py"
    layers.write_text(source)
    result = CliRunner().invoke(main, [f"{layers}:{name}", *args])
    return result.exit_code, result.output


def test_running_statistics_of_any_name_are_compared_with_the_twins(tmp_path):
    code, output = gradcheck(tmp_path, BATCHNORM, "BatchNorm2d", BN_ARGS)
    assert code == 0, output
    assert "run_mean, run_var: found by behaviour" in output
    assert "running_mean = run_mean" in output and "running_var = run_var" in output
    rows = verdicts(output)
    assert rows["running_mean", "autograd"] == "ok"
    assert rows["running_var", "autograd"] == "differs"  # kept biased, as the template does
    assert "kept biased" in output


@pytest.mark.parametrize(("source", "grads"), [(FULLY_CONNECTED, "grad_w, grad_b"), (FOO_BAR, "foo, bar")])
def test_gradients_of_any_name_are_what_backward_writes_of_the_parameters_shape(tmp_path, source, grads):
    code, output = gradcheck(tmp_path, source, "FullyConnected", FC_ARGS)
    assert code == 0, output
    assert f"{grads}: found by behaviour" in output
    rows = verdicts(output)
    for against in ("autograd", "finite"):
        assert rows["weight.grad", against] == rows["bias.grad", against] == "ok"


def test_a_bug_in_a_gradient_found_by_behaviour_still_fails(tmp_path):
    buggy = FOO_BAR.replace("keepdims=True).T", "keepdims=True).T / len(output_grad)")
    code, output = gradcheck(tmp_path, buggy, "FullyConnected", FC_ARGS)
    assert code == 1, output
    failing = {tensor for (tensor, _), verdict in verdicts(output).items() if verdict == "FAIL"}
    assert failing == {"bias.grad"}, output
    assert "1/N" in output


def test_a_gradient_of_any_name_and_the_wrong_shape_is_reported_as_such(tmp_path):
    transposed = FOO_BAR.replace("axis=0, keepdims=True).T", "axis=0, keepdims=True)")
    code, output = gradcheck(tmp_path, transposed, "FullyConnected", FC_ARGS)
    assert code == 1, output
    assert {tensor for (tensor, _), verdict in verdicts(output).items() if verdict == "FAIL"} == {"bias.grad"}
    assert "(1, 4)" in output, output


def test_a_statistic_that_cannot_be_matched_leaves_the_other_checks_to_run(tmp_path):
    code, output = gradcheck(tmp_path, STACKED, "BatchNorm2d", BN_ARGS)
    assert code == 0, output
    lines = [line for line in output.splitlines() if "not compared" in line]
    assert len(lines) == 1, output
    assert "running_mean, running_var not compared" in lines[0]
    assert "--param running_mean=ATTRIBUTE --param running_var=ATTRIBUTE" in lines[0]
    rows = verdicts(output)
    assert {tensor for tensor, _ in rows} == {"output", "input.grad", "weight.grad", "bias.grad"}
    assert set(rows.values()) == {"ok"}


def test_a_statistic_that_cannot_be_matched_hides_no_bug(tmp_path):
    buggy = STACKED.replace("self.d_beta = np.sum(output_grad,", "self.d_beta = np.mean(output_grad,")
    code, output = gradcheck(tmp_path, buggy, "BatchNorm2d", BN_ARGS)
    assert code == 1, output
    assert {tensor for (tensor, _), verdict in verdicts(output).items() if verdict == "FAIL"} == {"bias.grad"}


def test_a_gradient_that_cannot_be_found_is_named_and_its_parameter_held(tmp_path):
    listed = FULLY_CONNECTED.replace(
        "self.grad_w = self.input.T @ output_grad\n        self.grad_b = np.sum(output_grad, axis=0, keepdims=True).T",
        "self.grads = [self.input.T @ output_grad, np.sum(output_grad, axis=0, keepdims=True).T]",
    ).replace(
        "        self.grad_w = np.zeros_like(self.weights)\n        self.grad_b = np.zeros_like(self.biases)\n", ""
    )
    code, output = gradcheck(tmp_path, listed, "FullyConnected", FC_ARGS)
    assert code == 0, output
    assert "weight.grad not compared" in output and "give --param weight=weights:GRADIENT" in output
    assert "bias.grad not compared" in output and "give --param bias=biases:GRADIENT" in output
    rows = verdicts(output)
    assert {tensor for tensor, _ in rows} == {"output", "input.grad"}
    assert set(rows.values()) == {"ok"}


def test_the_probing_input_tells_a_mean_from_a_variance():
    """Every channel's mean is negative and its variance above 4: a mean moves down, a variance up."""
    x = probing_input((64, 3, 8, 8), np.random.default_rng(0))
    assert (x.mean(axis=(0, 2, 3)) < -1).all()
    assert (x.var(axis=(0, 2, 3)) > 3).all()


def test_parameters_no_name_announces_are_read_forward_and_backward(tmp_path):
    """``mat``/``vec`` with ``g_mat``/``g_vec``: arrays the forward reads whose gradient the backward writes."""
    source = (Path(__file__).parent / "handins" / "renamed" / "layer.py").read_text()
    code, output = gradcheck(tmp_path, source, "Affine", FC_ARGS)
    assert code == 0, output
    assert "weight = mat (gradient g_mat), bias = vec (gradient g_vec): found by behaviour" in output
    rows = verdicts(output)
    for against in ("autograd", "finite"):
        assert rows["weight.grad", against] == rows["bias.grad", against] == "ok"
    buggy = source.replace("self.g_mat = output_grad.T @ self.input", "self.g_mat = output_grad.T @ self.input * 2")
    code, output = gradcheck(tmp_path, buggy, "Affine", FC_ARGS)
    assert code == 1 and {t for (t, _), v in verdicts(output).items() if v == "FAIL"} == {"weight.grad"}, output
    assert "off by a factor 2" in output


# The same layer with a constant table it reads but never learns: not taken for a parameter.
CONSTANT = """
import numpy as np


class Affine:
    def __init__(self, in_features, out_features):
        self.mat = np.random.randn(out_features, in_features) * 0.01
        self.vec = np.zeros(out_features)
        self.mask = np.ones((out_features, in_features))

    def forward(self, input):
        self.input = input
        return input @ (self.mat * self.mask).T + self.vec

    def backward(self, output_grad):
        self.g_mat = (output_grad.T @ self.input) * self.mask
        self.g_vec = output_grad.sum(axis=0)
        return output_grad @ (self.mat * self.mask)
"""


def test_two_arrays_a_gradient_fits_are_neither_taken_for_its_parameter(tmp_path):
    """``mat`` and ``mask`` are read, of one shape, and claim ``g_mat``: which is the parameter is not guessed."""
    code, output = gradcheck(tmp_path, CONSTANT, "Affine", FC_ARGS)
    assert code == 2 and "found no attribute for torch.nn.Linear(5, 4)'s weight" in output, output
    code, output = gradcheck(tmp_path, CONSTANT, "Affine", [*FC_ARGS, "--param", "weight=mat:g_mat"])
    assert code == 0, output
