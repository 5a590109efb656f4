"""``python -m lablib.gradcheck`` on hand-ins as the course's students write them, unchanged.

The hand-ins under ``tests/handins/`` were written for these tests in the styles public hand-ins of
the lab show: the template's layers (float64 weights, ``(out, 1)`` biases, a weight kept ``(in, out)``,
BatchNorm with a training flag and a biased running variance, a softmax loss layer, a ``Network``),
a from-scratch tutorial's batch-1 layers that update inside ``backprop``, and other layouts
(``(N, H, W, C)`` with dict-held ``(K, K, C_in, C_out)`` kernels, batch-last, features-first in
float32) with constructor arguments in orders of their own. Each correct one passes; each planted
bug fails, naming the tensor (and, in a network, the layer).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lablib
from lablib.gradcheck import main
from lablib.gradcheck.arguments import parse_mapping
from lablib.gradcheck.foreign import adapt
from lablib.gradcheck.layout import Layout, to_layer, to_torch
from lablib.gradcheck.loader import load_class
from lablib.nn import Linear
from lablib.optim import SGD
from tests.gradcheck_table import verdicts

HANDINS = Path(__file__).parent / "handins"
ROOT = Path(lablib.__file__).parents[1]

# (file, class, command-line arguments): each correct layer and how a student would check it.
LAYERS = {
    "template linear, weight (in, out)": (
        "template/layer.py",
        "FullyConnected",
        ["--twin", "torch.nn.Linear", "--args", "5, 4", "--input", "3,5"],
    ),
    "template conv": (
        "template/layer.py",
        "Conv2d",
        ["--twin", "torch.nn.Conv2d", "--args", "2, 3, 3, 2, 1", "--input", "2,2,6,6"],
    ),
    "template batchnorm": (
        "template/layer.py",
        "BatchNorm2d",
        ["--twin", "torch.nn.BatchNorm2d", "--args", "3", "--input", "4,3,5,5"],
    ),
    "template loss": (
        "template/layer.py",
        "SoftmaxWithloss",
        ["--twin", "torch.nn.CrossEntropyLoss", "--input", "4,10"],
    ),
    "tutorial conv (H, W) -> (H, W, C)": (
        "tutorial/cnn.py",
        "Conv3x3",
        ["--args", "4", "--twin", "torch.nn.Conv2d", "--twin-args", "1, 4, 3, bias=False", "--input", "8,8"],
    ),
    "tutorial max pool (H, W, C)": (
        "tutorial/cnn.py",
        "MaxPool2",
        ["--twin", "torch.nn.MaxPool2d", "--twin-args", "2", "--input", "6,6,3", "--layout", "HWC"],
    ),
    "tutorial dense, batch 1": (
        "tutorial/cnn.py",
        "Dense",
        ["--args", "5, 3", "--twin", "torch.nn.Linear", "--input", "5"],
    ),
    "NHWC conv, arguments (out, in, ...)": (
        "nhwc/layers.py",
        "Convolution",
        ["--args", "4, 3, 3, 2, 1", "--twin", "torch.nn.Conv2d", "--twin-args", "3, 4, 3, 2, 1", "--input", "2,6,6,3"],
    ),
    "batch-last conv": (
        "nhwc/layers.py",
        "BatchLastConv",
        ["--args", "2, 3, 3, 2", "--twin", "torch.nn.Conv2d", "--input", "2,7,7,4"],
    ),
    "features-first linear in float32": (
        "nhwc/layers.py",
        "LinearFeaturesFirst",
        ["--args", "6, 4", "--twin", "torch.nn.Linear", "--input", "6,3"],
    ),
}

# (layer, planted bug: text in the correct file -> text in the buggy one, tensors that must fail)
BUGS = [
    (
        "template linear, weight (in, out)",
        "bias gradient averaged",
        ("np.sum(output_grad, axis=0, keepdims=True).T", "np.mean(output_grad, axis=0, keepdims=True).T"),
        {"bias.grad"},
    ),
    (
        "template conv",
        "bias gradient summed over the wrong axis",
        ("output_grad.sum(axis=(0, 2, 3))", "output_grad.sum(axis=(0, 1, 2))"),
        {"bias.grad"},
    ),
    (
        "template conv",
        "stride ignored in backward",
        ("dxp[:, :, i * s : i * s + k, j * s : j * s + k] +=", "dxp[:, :, i : i + k, j : j + k] +="),
        {"input.grad"},
    ),
    (
        "template batchnorm",
        "beta's gradient averaged",
        ("self.d_beta = np.sum(", "self.d_beta = np.mean("),
        {"bias.grad"},
    ),
    (
        "template loss",
        "loss averaged over the batch, backward not divided by it",
        ("return (self.predict - self.target) / len(self.target)", "return self.predict - self.target"),
        {"input.grad"},
    ),
    (
        "tutorial conv (H, W) -> (H, W, C)",
        "output gradient read transposed",
        ("d_L_d_out[i, j, f] * region", "d_L_d_out[j, i, f] * region"),
        {"weight.grad"},
    ),
    (
        "tutorial dense, batch 1",
        "input gradient taken after the update",
        (
            "        d_L_d_inputs = self.weights @ d_L_d_out\n        self.weights -= learn_rate * d_L_d_w\n",
            "        self.weights -= learn_rate * d_L_d_w\n        d_L_d_inputs = self.weights @ d_L_d_out\n",
        ),
        {"input.grad"},
    ),
    (
        "NHWC conv, arguments (out, in, ...)",
        "bias gradient averaged",
        ('self.grads["bias"] = dout.sum(axis=(0, 1, 2))', 'self.grads["bias"] = dout.mean(axis=(0, 1, 2))'),
        {"bias.grad"},
    ),
    (
        "batch-last conv",
        "stride ignored in backward",
        ("dx[:, i * s : i * s + k, j * s : j * s + k, :] +=", "dx[:, i : i + k, j : j + k, :] +="),
        {"input.grad"},
    ),
    (
        "features-first linear in float32",
        "bias gradient averaged",
        ("self.grad_b = dy.sum(axis=1, keepdims=True)", "self.grad_b = dy.mean(axis=1, keepdims=True)"),
        {"bias.grad"},
    ),
]


def check(file: Path, cls: str, args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, [f"{file}:{cls}", *args])
    return result.exit_code, result.output


def planted(tmp_path: Path, file: str, wrong: str, right: str) -> Path:
    """A copy of the hand-in's folder with one bug planted in ``file``."""
    folder = tmp_path / "handin"
    shutil.copytree(HANDINS / Path(file).parent, folder)
    source = (HANDINS / file).read_text()
    assert source.count(wrong) == 1, wrong
    (folder / Path(file).name).write_text(source.replace(wrong, right))
    return folder / Path(file).name


@pytest.mark.parametrize("style", list(LAYERS))
def test_a_correct_hand_in_layer_passes_unchanged(style):
    file, cls, args = LAYERS[style]
    code, output = check(HANDINS / file, cls, args)
    assert code == 0, output
    assert set(verdicts(output).values()) <= {"ok", "differs"}, output
    assert f"{cls} read through lablib.adapter" in output


def test_the_table_says_which_attribute_stood_for_which_tensor():
    _, output = check(HANDINS / "nhwc/layers.py", "Convolution", LAYERS["NHWC conv, arguments (out, in, ...)"][2])
    assert (
        "weight = params['kernel'] (gradient grads['kernel']), stored (3, 3, 3, 4) read with axes (3, 2, 0, 1)"
        in output
    )
    assert "layout NHWC, inferred from the input shape and 3 input channels" in output
    _, output = check(HANDINS / "template/layer.py", "FullyConnected", LAYERS["template linear, weight (in, out)"][2])
    assert "weight = weights (gradient d_weights), stored (5, 4) read with axes (1, 0) as (4, 5)" in output
    assert "bias = biases (gradient d_biases), stored (4, 1) as (4,)" in output


def test_a_biased_running_variance_is_a_buffer_difference_not_a_failure():
    code, output = check(HANDINS / "template/layer.py", "BatchNorm2d", LAYERS["template batchnorm"][2])
    assert code == 0
    assert verdicts(output)["running_var", "autograd"] == "differs"
    assert verdicts(output)["running_mean", "autograd"] == "ok"
    assert "running_var kept biased (divided by n) where PyTorch keeps the unbiased variance (n - 1)" in output
    assert "forward(training=True)" in output


def test_float32_layers_and_first_layers_are_said_so():
    _, output = check(HANDINS / "nhwc/layers.py", "LinearFeaturesFirst", LAYERS["features-first linear in float32"][2])
    assert "computes in float32 whatever it is given: finite differences in float32" in output
    assert ("input.grad", "finite") in verdicts(output)
    assert "finite differences (float32 layer)" in output
    _, output = check(HANDINS / "tutorial/cnn.py", "Conv3x3", LAYERS["tutorial conv (H, W) -> (H, W, C)"][2])
    assert "Conv3x3.backprop returns no input gradient (a first layer): its parameter gradients alone" in output
    assert "recovered from its update inside backward" in output
    assert "layout HW->HWC" in output


@pytest.mark.parametrize(("style", "bug", "change", "failing"), BUGS, ids=[f"{s}: {b}" for s, b, _, _ in BUGS])
def test_a_planted_bug_fails_naming_the_tensor(tmp_path, style, bug, change, failing):
    file, cls, args = LAYERS[style]
    code, output = check(planted(tmp_path, file, *change), cls, args)
    assert code == 1, output
    assert {tensor for (tensor, _), verdict in verdicts(output).items() if verdict == "FAIL"} == failing, output
    for tensor in failing:
        assert f"{tensor} differs from" in output


def test_the_tutorial_layer_is_left_as_it_was():
    """The update backprop makes at the known rate is undone: the filters are the ones drawn, not moved."""
    conv = load_class(f"{HANDINS}/tutorial/cnn.py:Conv3x3")(2)
    layer = adapt(conv, shapes={"weight": (2, 1, 3, 3)}, layout=Layout("HW"))
    filters = conv.filters.copy()
    y = layer.forward(np.ones((1, 1, 5, 5)))
    layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(conv.filters, filters)
    np.testing.assert_allclose(layer.weight.grad, np.full((2, 1, 3, 3), 9.0))


def test_a_mapping_given_on_the_command_line_reads_attributes_of_any_name(tmp_path):
    source = (HANDINS / "template/layer.py").read_text()
    renamed = source.replace("self.weights", "self.k").replace("self.d_weights", "self.gk")
    renamed = renamed.replace("self.biases", "self.c").replace("self.d_biases", "self.gc")
    (tmp_path / "layer.py").write_text(renamed)
    args = ["--twin", "torch.nn.Linear", "--args", "5, 4", "--input", "3,5"]
    code, output = check(tmp_path / "layer.py", "FullyConnected", args)  # read by its forward, written by backward
    assert code == 0 and "weight = k (gradient gk), bias = c (gradient gc): found by behaviour" in output, output
    code, output = check(
        tmp_path / "layer.py", "FullyConnected", [*args, "--param", "weight=k:gk", "--param", "bias=c:gc"]
    )
    assert code == 0, output
    assert "weight = k (gradient gk), stored (5, 4) read with axes (1, 0) as (4, 5)" in output


def test_the_adapter_trains_a_template_layer_as_our_linear_would():
    """Stepped by lablib.optim.SGD, the foreign arrays move exactly as our Linear's parameters do."""
    rng = np.random.default_rng(0)
    foreign = load_class(f"{HANDINS}/template/layer.py:FullyConnected")(5, 3)
    ours = Linear(5, 3, dtype=np.float64)
    layer = adapt(foreign, shapes={name: p.shape for name, p in ours.named_parameters()})
    foreign.weights[...] = ours.weight.data.T
    foreign.biases[...] = ours.bias.data[:, None]
    optimisers = [SGD(model.parameters(), lr=0.1, momentum=0.9) for model in (layer, ours)]
    for _ in range(3):
        x, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
        for model, optimiser in zip((layer, ours), optimisers, strict=True):
            model.zero_grad()
            np.testing.assert_allclose(model.forward(x), ours.forward(x))
            model.backward(g)
            optimiser.step()
    np.testing.assert_allclose(foreign.weights, ours.weight.data.T, rtol=1e-12)
    np.testing.assert_allclose(foreign.biases, ours.bias.data[:, None], rtol=1e-12)
    assert not np.allclose(ours.weight.data, Linear(5, 3, dtype=np.float64, rng=np.random.default_rng(1)).weight.data)


def test_layouts_round_trip():
    x = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    for letters in ("NHWC", "CHWN", "NCHW"):
        np.testing.assert_array_equal(to_torch(to_layer(x, letters), letters), x)
    assert to_layer(x, "NHWC").shape == (2, 4, 5, 3) and to_layer(x, "CHWN").shape == (3, 4, 5, 2)
    assert to_layer(x[:1, :1], "HW").shape == (4, 5)
    assert parse_mapping(["weight=params['W']:grads['W']"]) == {"weight": (("params", "W"), ("grads", "W"))}


def gradcheck_process(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "lablib.gradcheck", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout)


def network_rows(output: str) -> dict[tuple[str, str], str]:
    """The network table as {(layer, tensor): verdict}."""
    rows = {}
    for line in output.splitlines():
        cells = [c for c in line.split("  ") if c.strip()]
        if len(cells) == 7 and cells[-1].strip() in ("ok", "FAIL", "zero", "not a gradient"):
            rows[cells[0].strip(), cells[1].strip()] = cells[-1].strip()
    return rows


def test_a_correct_template_network_passes():
    done = gradcheck_process("network.py:Network", cwd=HANDINS / "template")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = network_rows(done.stdout)
    assert rows["fc1 (FullyConnected)", "weights (gradient d_weights)"] == "ok"
    assert rows["bn (BatchNorm2d)", "gamma (gradient d_gamma)"] == "ok"
    assert rows["input", "input"] == "ok"  # the gradient Network.backward returns, in the input's shape
    assert rows["loss (SoftmaxWithloss)", "input (its own backward)"] == "ok"
    assert len([key for key in rows if key[0].startswith("conv ")]) == 5  # found once, though also in a list
    assert "input (3, 784), targets as one-hot rows" in done.stdout


@pytest.mark.parametrize(
    ("bug", "file", "change", "named"),
    [
        (
            "one layer's backward scaled by the batch size",
            "layer.py",
            (
                "        return output_grad.reshape(self.shape)",
                "        return len(output_grad) * output_grad.reshape(self.shape)",
            ),
            "flatten (Flatten) input (its own backward)",
        ),
        (
            "bias gradient averaged",
            "layer.py",
            ("np.sum(output_grad, axis=0, keepdims=True).T", "np.mean(output_grad, axis=0, keepdims=True).T"),
            "(FullyConnected) biases",
        ),
        (
            "stride ignored in backward",
            "layer.py",
            ("dxp[:, :, i * s : i * s + k, j * s : j * s + k] +=", "dxp[:, :, i : i + k, j : j + k] +="),
            "conv (Conv2d) input (its own backward)",
        ),
        (
            "summed over the wrong axis",
            "layer.py",
            (
                "self.d_gamma = np.sum(output_grad * self.x_hat, axis=(0, 2, 3)",
                "self.d_gamma = np.sum(output_grad * self.x_hat, axis=(0, 1, 3)",
            ),
            "bn (BatchNorm2d) gamma",
        ),
    ],
)
def test_a_planted_bug_in_a_network_names_the_layer_and_tensor(tmp_path, bug, file, change, named):
    buggy = planted(tmp_path, f"template/{file}", *change)
    done = gradcheck_process("network.py:Network", cwd=buggy.parent)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL" in done.stdout
    verdict = done.stdout.strip().splitlines()[-1]
    assert verdict.startswith("FAIL: ") and named in verdict, done.stdout


def test_a_network_parameter_can_be_left_out_and_an_exact_zero_passes(tmp_path):
    folder = tmp_path / "handin"
    shutil.copytree(HANDINS / "template", folder)
    network = (folder / "network.py").read_text()
    (folder / "network.py").write_text(
        network.replace("Conv2d(1, 3, 3, 2, 1)", "Conv2d(1, 3, 3, 2, 1, zero_bias_grad=True)")
    )
    layer = (folder / "layer.py").read_text()
    layer = layer.replace(
        "def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):",
        "def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, zero_bias_grad=False):\n"
        "        self.zero_bias_grad = zero_bias_grad",
    ).replace(
        "        self.d_biases = output_grad.sum(axis=(0, 2, 3)).reshape(-1, 1)\n",
        "        self.d_biases = output_grad.sum(axis=(0, 2, 3)).reshape(-1, 1)\n"
        "        if self.zero_bias_grad:\n            self.d_biases[...] = 0.0\n",
    )
    (folder / "layer.py").write_text(layer)
    done = gradcheck_process("network.py:Network", "--exclude", "fc2.weights", cwd=folder)
    rows = network_rows(done.stdout)
    assert rows["conv (Conv2d)", "biases (gradient d_biases)"] == "zero", done.stdout
    assert "exactly zero, as the differences find (a bias before a normalisation)" in done.stdout
    assert "fc2.weights left out, as asked" in done.stdout
    assert ("fc2 (FullyConnected)", "weights (gradient d_weights)") not in rows


def write_class(folder: Path) -> None:
    """Five students: correct, two buggy (one printing pages), a syntax error, one that never returns."""
    for student in ("alice", "bob", "carol", "dave", "erin"):
        shutil.copytree(HANDINS / "template", folder / student)
    edits = {
        ("bob", "layer.py"): (
            "np.sum(output_grad, axis=0, keepdims=True).T",
            "np.mean(output_grad, axis=0, keepdims=True).T",
        ),
        ("carol", "layer.py"): (
            "        return output_grad.reshape(self.shape)",
            "        print('\\n'.join(map(str, range(500))))\n"
            "        return len(output_grad) * output_grad.reshape(self.shape)",
        ),
        ("dave", "layer.py"): ("class ReLU(_Layer):", "class ReLU(_Layer)"),
        ("erin", "network.py"): ("        x = input.reshape(-1, 1, 28, 28)", "        while True:\n            pass"),
    }
    for (student, file), (wrong, right) in edits.items():
        source = (folder / student / file).read_text()
        assert wrong in source
        (folder / student / file).write_text(source.replace(wrong, right))


def test_a_class_gives_one_row_per_hand_in_and_fails_if_any_does(tmp_path):
    write_class(tmp_path / "class")
    done = gradcheck_process(
        str(tmp_path / "class"), "--timeout", "20", "--out", str(tmp_path / "grades"), cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = (tmp_path / "grades" / "gradcheck.csv").read_text().splitlines()
    assert lines[0] == "student,check,verdict,worst_error,layer,tensor,reason"
    rows = {line.split(",")[0]: line for line in lines[1:]}
    assert len(lines) == 6 and sorted(rows) == ["alice", "bob", "carol", "dave", "erin"]
    assert rows["alice"].startswith("alice,network,ok,")
    assert rows["bob"].startswith("bob,network,FAIL,") and "(FullyConnected)" in rows["bob"] and "biases" in rows["bob"]
    assert rows["carol"].startswith("carol,network,FAIL,") and "flatten (Flatten)" in rows["carol"]
    assert "printed" in rows["carol"] and "lines" in rows["carol"]
    assert rows["dave"].startswith("dave,network,error,") and "SyntaxError" in rows["dave"]
    assert rows["erin"] == "erin,network,timeout,,,,no answer within 20 s"
    assert (tmp_path / "grades" / "gradcheck.md").read_text().startswith("| student ")
    assert "5 students, 5 checks, 4 not passed" in done.stdout


def test_a_class_mapping_file_adds_layer_rows(tmp_path):
    write_class(tmp_path / "class")
    for student in ("carol", "dave", "erin"):
        shutil.rmtree(tmp_path / "class" / student)
    (tmp_path / "layers.yaml").write_text(
        '"*":\n  - {class: FullyConnected, twin: torch.nn.Linear, args: "5, 4", input: "3,5"}\n'
    )
    done = gradcheck_process(str(tmp_path / "class"), "--layers", str(tmp_path / "layers.yaml"), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "| alice     | layer FullyConnected | ok " in done.stdout
    assert "| bob       | layer FullyConnected | FAIL " in done.stdout


def test_a_centre_update_rule_is_reported_as_not_a_gradient():
    """Layers in a list, class-index targets, and center loss's d_centers, a step rather than a gradient."""
    done = gradcheck_process("network.py:Network", cwd=HANDINS / "center")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = network_rows(done.stdout)
    assert rows["center (CenterLoss)", "centers (gradient d_centers)"] == "not a gradient"
    assert rows["layers[0] (Dense)", "W (gradient dW)"] == "ok"
    assert "center.centers holds an update rule (a centre's step), not the loss's gradient" in done.stdout
    assert "targets as class indices" in done.stdout
    done = gradcheck_process("network.py:Network", "--exclude", "centers", cwd=HANDINS / "center")
    assert ("center (CenterLoss)", "centers (gradient d_centers)") not in network_rows(done.stdout)


def test_a_class_that_cannot_be_checked_gets_one_clear_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, [str(tmp_path)])
    assert result.exit_code == 2 and "holds no hand-ins: one sub-folder or one .py file per student" in result.output
    shutil.copytree(HANDINS / "template", tmp_path / "alice")
    (tmp_path / "layers.yaml").write_text('"*":\n  - {klass: FullyConnected}\n')
    result = runner.invoke(main, [str(tmp_path), "--layers", str(tmp_path / "layers.yaml")])
    assert result.exit_code == 2 and "each student ('*' for all) lists layers as {class: ..." in result.output
