"""``python -m lablib.gradcheck`` on layers a student might write, in files outside lablib."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lablib
from lablib.gradcheck import main
from tests.gradcheck_table import verdicts

# A student's convolution: report 001's loop over the regions, at any stride and padding.
CONV = """
import numpy as np
from lablib.nn import Module, Parameter


class MyConv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.k, self.s, self.p = kernel_size, stride, padding
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = Parameter(np.random.randn(*shape).astype(np.float32))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None

    def forward(self, x):
        k, s, p = self.k, self.s, self.p
        self.xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        n, _, h, w = self.xp.shape
        self.oh, self.ow = (h - k) // s + 1, (w - k) // s + 1
        y = np.zeros((n, len(self.weight.data), self.oh, self.ow), x.dtype)
        for i in range(self.oh):
            for j in range(self.ow):
                region = self.xp[:, :, i * s : i * s + k, j * s : j * s + k]
                y[:, :, i, j] = np.tensordot(region, self.weight.data, axes=([1, 2, 3], [1, 2, 3]))
        if self.bias is not None:
            y += self.bias.data[:, None, None]
        return y

    def backward(self, g):
        k, s, p = self.k, self.s, self.p
        dxp, dw = np.zeros_like(self.xp), np.zeros_like(self.weight.data)
        for i in range(self.oh):
            for j in range(self.ow):
                dw += np.tensordot(g[:, :, i, j], self.xp[:, :, i * s : i * s + k, j * s : j * s + k], axes=(0, 0))
                dxp[:, :, i * s : i * s + k, j * s : j * s + k] += np.tensordot(g[:, :, i, j], self.weight.data, axes=1)
        self.weight.accumulate_grad(dw)
        if self.bias is not None:
            self.bias.accumulate_grad(g.sum(axis=(0, 2, 3)))
        h, w = dxp.shape[2:]
        return dxp[:, :, p : h - p, p : w - p]
"""

# A layer of one's own design, with no PyTorch twin: y = x * sigmoid(beta * x), beta learned per channel.
SWISH = """
import numpy as np
from lablib.nn import Module, Parameter


class Swish(Module):
    def __init__(self, channels):
        super().__init__()
        self.beta = Parameter(np.ones(channels, np.float32))

    def forward(self, x):
        self.x, self.s = x, 1 / (1 + np.exp(-self.beta.data * x))
        return x * self.s

    def backward(self, g):
        x, s, beta = self.x, self.s, self.beta.data
        self.beta.accumulate_grad((g * x * x * s * (1 - s)).sum(axis=0))
        return g * (s + beta * x * s * (1 - s))
"""

CONV_ARGS = ["--twin", "torch.nn.Conv2d", "--args", "2, 3, 3, stride=2, padding=1", "--input", "2,2,5,5"]


def gradcheck(tmp_path: Path, source: str, *args: str, name: str = "MyConv2d") -> tuple[int, str]:
    layers = tmp_path / "my_layers.py"
    layers.write_text(source)
    result = CliRunner().invoke(main, [f"{layers}:{name}", *args])
    return result.exit_code, result.output


def test_a_correct_layer_passes_against_autograd_and_finite_differences(tmp_path):
    code, output = gradcheck(tmp_path, CONV, *CONV_ARGS)
    assert code == 0, output
    assert verdicts(output) == {
        (tensor, against): "ok"
        for against in ("autograd", "finite")
        for tensor in ("output", "input.grad", "weight.grad", "bias.grad")
        if (tensor, against) != ("output", "finite")
    }
    assert "inputs (2, 2, 5, 5), (1, 2, 5, 5), (3, 2, 6, 6)" in output  # other batches and an odd-even size change
    assert output.rstrip().endswith("ok: all 7 checks passed")


@pytest.mark.parametrize(
    ("mistake", "wrong", "right"),
    [
        ("bias gradient averaged", "g.sum(axis=(0, 2, 3))", "g.mean(axis=(0, 2, 3))"),
        (
            "stride forgotten in backward",
            "dxp[:, :, i * s : i * s + k, j * s : j * s + k]",
            "dxp[:, :, i : i + k, j : j + k]",
        ),
        (
            "backward off by a factor",
            "return dxp[:, :, p : h - p, p : w - p]",
            "return 2 * dxp[:, :, p : h - p, p : w - p]",
        ),
    ],
)
def test_a_wrong_gradient_fails_and_is_named(tmp_path, mistake, wrong, right):
    assert wrong in CONV
    code, output = gradcheck(tmp_path, CONV.replace(wrong, right), *CONV_ARGS)
    assert code == 1, output
    failing = {tensor for (tensor, _), verdict in verdicts(output).items() if verdict == "FAIL"}
    expected = {"bias.grad"} if "bias" in mistake else {"input.grad"}
    assert failing == expected, output
    for tensor in expected:  # where the tensors differ most, with both values
        assert f"{tensor} differs from autograd (float32) for input" in output
        assert f"{tensor} differs from finite differences (float64) for input" in output
    assert "yours" in output and "expected" in output
    assert "FAIL: 2 of 7 checks failed" in output


def test_a_stride_ignored_gives_an_output_of_the_wrong_shape(tmp_path):
    code, output = gradcheck(
        tmp_path, CONV.replace("kernel_size, stride, padding", "kernel_size, 1, padding"), *CONV_ARGS
    )
    assert code == 1, output
    assert verdicts(output) == {("output", "autograd"): "FAIL"}  # no gradient of a wrong-shaped output is checked
    assert (
        "output differs from autograd (float32) for input (2, 2, 5, 5), shape (2, 3, 5, 5), expected shape (2, 3, 3, 3)"
        in output
    )


def test_a_wrong_output_size_is_caught_on_the_odd_sizes_the_checker_adds(tmp_path):
    """Output size rounded up: right on the given even size, wrong on the odd one added beside it."""
    ceil = CONV.replace("(h - k) // s + 1, (w - k) // s + 1", "-(-(h - k) // s) + 1, -(-(w - k) // s) + 1")
    args = ["--twin", "torch.nn.Conv2d", "--args", "2, 3, 2, stride=2"]
    assert gradcheck(tmp_path, ceil, *args, "--input", "2,2,6,6", "--input", "1,2,4,4")[0] == 0
    code, output = gradcheck(tmp_path, ceil, *args, "--input", "2,2,6,6")
    assert code == 1  # the twin takes the odd size: the student's forward raising on it is a failed check
    assert output.rstrip().endswith(
        "FAIL: MyConv2d(2, 3, 2, stride=2).forward on input of shape (3, 2, 7, 7) failed: "
        f"ValueError: shape-mismatch for sum ({tmp_path}/my_layers.py, line 23)"
    )


def test_a_layer_without_twin_is_checked_by_finite_differences(tmp_path):
    code, output = gradcheck(tmp_path, SWISH, "--args", "3", "--input", "4,3", name="Swish")
    assert code == 0, output
    assert verdicts(output) == {("input.grad", "finite"): "ok", ("beta.grad", "finite"): "ok"}
    assert "against finite differences alone" in output
    code, output = gradcheck(
        tmp_path, SWISH.replace("g * x * x * s", "g * x * s"), "--args", "3", "--input", "4,3", name="Swish"
    )
    assert code == 1
    assert verdicts(output) == {("input.grad", "finite"): "ok", ("beta.grad", "finite"): "FAIL"}


def test_the_reference_layers_pass_by_module_path():
    """The project's own reference layers, named by module path; BatchNorm's running statistics are compared too."""
    runner = CliRunner()
    result = runner.invoke(main, ["lablib.nn.reference:Conv2dIm2col", *CONV_ARGS])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main, ["lablib.nn.reference.BatchNorm2d", "--twin", "torch.nn.BatchNorm2d", "--args", "3", "--input", "4,3,3,3"]
    )
    assert result.exit_code == 0, result.output
    assert {"running_mean", "running_var"} <= {tensor for tensor, _ in verdicts(result.output)}


NOT_A_MODULE = "class MyConv2d:\n    def __init__(self, *args, **kwargs):\n        pass\n"
UNNAMED_BIAS = CONV.replace("self.bias = Parameter", "self.b = Parameter").replace("self.bias", "self.b")
NO_GRAD = CONV.replace("self.weight.accumulate_grad(dw)", "")


@pytest.mark.parametrize(
    ("source", "args", "message"),
    [
        (
            CONV,
            ["--args", "2, 3,, 3", "--input", "1"],
            "--args '2, 3,, 3' does not parse as arguments of Python literals",
        ),
        (CONV, ["--args", "2, three", "--input", "1"], "--args '2, three' does not parse"),
        (CONV, ["--args", "2, 3, 3", "--input", "2,x,5"], "--input '2,x,5' is not a shape"),
        (CONV, ["--args", "2", "--input", "1,2,5,5"], "MyConv2d(2) failed: TypeError:"),
        (
            CONV,
            ["--twin", "torch.nn.Conv3x", "--args", "2, 3, 3", "--input", "1,2,5,5"],
            "torch.nn has no class Conv3x",
        ),
        (
            CONV,
            ["--twin", "torch.nn.Conv2d", "--args", "2, 3, 3", "--input", "1,4,5,5"],
            "torch.nn.Conv2d(2, 3, 3) refuses",
        ),
        (
            CONV,
            ["--args", "2, 3, 3", "--input", "1,4,5,5"],
            "MyConv2d(2, 3, 3).forward on input of shape (1, 4, 5, 5) failed",
        ),
        (NOT_A_MODULE, ["--input", "1,2"], "not a lablib.nn.Module: subclass lablib.nn.Module"),
        (UNNAMED_BIAS, CONV_ARGS, "parameters and buffers ['b', 'weight'] are not torch.nn.Conv2d("),
        (NO_GRAD, CONV_ARGS, "backward left weight.grad None"),
        ("import numpy as np\nnp.nonsense()\n", ["--input", "1"], "importing"),
    ],
)
def test_bad_input_gets_one_clear_line(tmp_path, source, args, message):
    code, output = gradcheck(tmp_path, source, *args)
    assert code == 2
    assert output.startswith("Error: ") and output.count("\n") == 1, output
    assert message in output


def test_a_bad_path_names_what_is_missing(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, [f"{tmp_path}/absent.py:MyConv2d", "--input", "1,2"])
    assert result.exit_code == 2 and f"there is no file {tmp_path}/absent.py" in result.output
    result = runner.invoke(main, ["MyConv2d", "--input", "1,2"])
    assert result.exit_code == 2 and "'MyConv2d' does not name a class: write FILE.py:CLASS" in result.output
    (tmp_path / "my_layers.py").write_text(CONV)
    result = runner.invoke(main, [f"{tmp_path}/my_layers.py:MyConv", "--input", "1,2"])
    assert result.exit_code == 2 and "has no class MyConv (it defines MyConv2d)" in result.output


def test_python_dash_m_runs_it(tmp_path):
    (tmp_path / "my_layers.py").write_text(CONV)
    root = Path(lablib.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "lablib.gradcheck", "my_layers.py:MyConv2d", *CONV_ARGS]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: all 7 checks passed" in done.stdout


def _leaky(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0.01 * x)


def test_an_input_within_the_step_of_a_kink_is_judged_by_the_side_it_lies_on():
    from lablib.gradcheck.layer_checks import at_kinks
    from lablib.nn.gradient_check import eval_numerical_gradient_array

    h = 1e-6
    x = np.random.default_rng(0).standard_normal((4, 5))
    x[1, 2], x[3, 0] = 0.3 * h, -0.4 * h  # within the step of LeakyReLU's kink at 0
    g = np.random.default_rng(1).standard_normal(x.shape)
    correct = g * np.where(x > 0, 1.0, 0.01)
    numeric = eval_numerical_gradient_array(_leaky, x, g, h)
    assert abs(numeric[1, 2] - correct[1, 2]) > 1e-2  # the central difference averages both sides
    kinks = at_kinks(_leaky, x, g, h, correct, numeric.copy(), 1e-6)
    assert sorted(kinks) == [(1, 2), (3, 0)]
    assert kinks[(1, 2)] == pytest.approx(correct[1, 2]) and kinks[(3, 0)] == pytest.approx(correct[3, 0])

    averaged = correct.copy()
    averaged[1, 2] = g[1, 2] * 0.505  # a backward matching neither side is not excused
    assert (1, 2) not in at_kinks(_leaky, x, g, h, averaged, numeric.copy(), 1e-6)


def test_a_wrong_gradient_of_a_smooth_layer_or_at_many_entries_is_no_kink():
    from lablib.gradcheck.layer_checks import KINK_ENTRIES, at_kinks
    from lablib.nn.gradient_check import eval_numerical_gradient_array

    h = 1e-6
    x = np.random.default_rng(2).standard_normal((6, 7))
    g = np.ones_like(x)
    numeric = eval_numerical_gradient_array(np.tanh, x, g, h)
    off = (1 - np.tanh(x) ** 2) * 1.001
    assert at_kinks(np.tanh, x, g, h, off, numeric, 1e-6) == {}  # one-sided differences agree: a real error

    x = np.linspace(-h / 2, h / 2, KINK_ENTRIES + 1)  # every entry within the step of the kink
    numeric = eval_numerical_gradient_array(_leaky, x, np.ones_like(x), h)
    assert at_kinks(_leaky, x, np.ones_like(x), h, np.where(x > 0, 1.0, 0.01), numeric, 1e-6) == {}


def test_the_readme_leaky_relu_passes_although_an_input_lies_at_its_kink():
    result = CliRunner().invoke(
        main,
        ["mylayers/my_layers.py:LeakyReLU", "--twin", "torch.nn.LeakyReLU", "--args", "0.01", "--input", "2,20,26,26"],
    )
    assert result.exit_code == 0, result.output
    assert "within the step of a kink" in result.output and "buffer" not in result.output
