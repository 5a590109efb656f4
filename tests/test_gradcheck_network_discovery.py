"""A network, and a class, whose layers name their tensors as no convention does: found by behaviour.

The hand-in ``tests/handins/renamed/`` keeps gradients in ``grad_w``/``grad_b`` beside
``weights``/``biases``, running statistics in ``run_mean``/``run_var``, a layer's parameters in
``mat``/``vec`` with gradients ``g_mat``/``g_vec``, and guards its loss's logarithm with 1e-7. It gets a
verdict, not an error: it passes, each tensor compared; a planted bug still fails with its reason; what
cannot be matched is named with the ``--param LAYER.NAME=...`` that compares it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_gradcheck_handins import HANDINS, gradcheck_process, network_rows


def renamed(tmp_path: Path, changes: list[tuple[str, str]]) -> Path:
    """A copy of the renamed hand-in with each ``(old, new)`` replaced in its layer.py; each ``old`` must occur."""
    folder = shutil.copytree(HANDINS / "renamed", tmp_path / "handin")
    source = (folder / "layer.py").read_text()
    for old, new in changes:
        assert old in source, old
        source = source.replace(old, new)
    (folder / "layer.py").write_text(source)
    return folder


def test_a_network_of_unconventional_names_gets_a_verdict_each_tensor_compared():
    done = gradcheck_process("network.py:Network", cwd=HANDINS / "renamed")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fc: grad_w, grad_b: found by behaviour, fc.backward writes each" in done.stdout
    assert "head: mat (gradient g_mat), vec (gradient g_vec): parameters found by behaviour" in done.stdout
    rows = network_rows(done.stdout)
    for layer, tensors in {
        "fc (FullyConnected)": ("weights (gradient grad_w)", "biases (gradient grad_b)"),
        "head (Affine)": ("mat (gradient g_mat)", "vec (gradient g_vec)"),
        "bn (BatchNorm1d)": ("gamma (gradient d_gamma)", "beta (gradient d_beta)"),
    }.items():
        for tensor in tensors:
            assert rows[layer, tensor] == "ok", done.stdout
    assert rows["head (Affine)", "mat (its own backward)"] == "ok"
    assert rows["loss (SoftmaxWithloss)", "input (its own backward)"] == "ok"  # log(p + 1e-7) passes


@pytest.mark.parametrize(
    ("change", "layer", "reason"),
    [
        (
            (
                "self.grad_b = np.sum(output_grad, axis=0, keepdims=True).T",
                "self.grad_b = np.mean(output_grad, axis=0, keepdims=True).T",
            ),
            "fc (FullyConnected)",
            "off by a factor 1/N = 1/3",
        ),
        (
            ("self.g_vec = output_grad.sum(axis=0)", "self.g_vec = -output_grad.sum(axis=0)"),
            "head (Affine)",
            "sign is flipped",
        ),
    ],
    ids=["a gradient found by behaviour averaged", "a parameter found by behaviour, its gradient negated"],
)
def test_a_bug_in_a_tensor_found_by_behaviour_fails_with_its_reason(tmp_path, change, layer, reason):
    folder = renamed(tmp_path, [change])
    done = gradcheck_process("network.py:Network", "--json", str(tmp_path / "v.json"), cwd=folder)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("FAIL: ") and layer in done.stdout.splitlines()[-1]
    failing = [c for c in json.loads((tmp_path / "v.json").read_text())["comparisons"] if c["verdict"] == "FAIL"]
    assert failing and all(c["diagnosis"] for c in failing), failing  # every FAIL row says why, d loss rows too
    assert any(reason in c["diagnosis"] for c in failing if c["layer"] == layer), failing


def test_a_gradient_several_arrays_fit_is_held_named_and_given_with_param(tmp_path):
    """The backward writes two arrays of the weight's shape: which is its gradient is not guessed."""
    folder = renamed(
        tmp_path,
        [
            (
                "        self.grad_w = self.input.T @ output_grad\n",
                "        self.grad_w = self.input.T @ output_grad\n        self.momentum_w = 0.9 * self.grad_w\n",
            )
        ],
    )
    done = gradcheck_process("network.py:Network", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fc.weight.grad not compared: fc.backward leaves no gradient of weights by name, and 2 arrays" in done.stdout
    assert "give --param fc.weight=weights:GRADIENT" in done.stdout
    assert not [key for key in network_rows(done.stdout) if key == ("fc (FullyConnected)", "weights (gradient grad_w)")]
    done = gradcheck_process("network.py:Network", "--param", "fc.weight=weights:grad_w", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert network_rows(done.stdout)["fc (FullyConnected)", "weights (gradient grad_w)"] == "ok"


def test_a_gradient_never_written_fails_saying_so(tmp_path):
    """``biases`` is a parameter by its name: a backward that writes nothing of its shape is a bug. (An array
    no name announces, without a gradient written, is no parameter: nothing says it should learn.)"""
    folder = renamed(tmp_path, [("        self.grad_b = np.sum(output_grad, axis=0, keepdims=True).T\n", "")])
    done = gradcheck_process("network.py:Network", "--json", str(tmp_path / "v.json"), cwd=folder)
    assert done.returncode == 1, done.stdout + done.stderr
    failing = [c for c in json.loads((tmp_path / "v.json").read_text())["comparisons"] if c["verdict"] == "FAIL"]
    assert [c["tensor"] for c in failing] == ["biases"], failing
    assert "no gradient: the backward writes no array of its shape (16, 1)" in failing[0]["diagnosis"]
    assert "--param fc.bias=biases:GRADIENT" in failing[0]["diagnosis"]


def test_a_network_param_that_names_no_layer_is_misuse(tmp_path):
    done = gradcheck_process("network.py:Network", "--param", "weight=weights:grad_w", cwd=HANDINS / "renamed")
    assert done.returncode == 2
    assert "a network's tensor is named LAYER.NAME, e.g. --param fc.weight=weights:d_weights" in done.stderr


def test_a_class_grades_a_network_of_unconventional_names(tmp_path):
    shutil.copytree(HANDINS / "renamed", tmp_path / "class" / "alice")
    buggy = renamed(
        tmp_path, [("self.g_mat = output_grad.T @ self.input", "self.g_mat = output_grad.T @ self.input / 3")]
    )
    shutil.copytree(buggy, tmp_path / "class" / "bob")
    done = gradcheck_process(
        str(tmp_path / "class"), "--timeout", "60", "--out", str(tmp_path / "grades"), cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {line.split(",")[0]: line for line in (tmp_path / "grades" / "gradcheck.csv").read_text().splitlines()[1:]}
    assert rows["alice"].startswith("alice,network,ok,"), rows
    assert rows["bob"].startswith("bob,network,FAIL,") and "head (Affine)" in rows["bob"] and "1/N = 1/3" in rows["bob"]
