"""``python -m lablib.gradcheck network.py:Network`` on a hand-in shaped as one of our specs: besides the
finite differences, its output, loss and every parameter gradient against the spec's PyTorch twin.

The hand-in under ``tests/handins/lab2023/`` was written for these tests: report 001's network
(Conv2d 1 -> 20 3x3, MaxPool2d 2, Flatten, Linear 3380 -> 10, softmax cross-entropy) in the course
template's style (NCHW, a linear weight kept ``(in, out)``, biases ``(out, 1)``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_gradcheck_handins import HANDINS, gradcheck_process

TWIN = "PyTorch twin (lab2023_cnn)"


def handin(tmp_path: Path, changes: dict[str, list[tuple[str, str]]]) -> Path:
    """A copy of the lab2023 hand-in with each ``(old, new)`` replaced in its file; each ``old`` must occur."""
    folder = tmp_path / "handin"
    shutil.copytree(HANDINS / "lab2023", folder)
    for file, replacements in changes.items():
        source = (folder / file).read_text()
        for old, new in replacements:
            assert old in source, old
            source = source.replace(old, new)
        (folder / file).write_text(source)
    return folder


def rows_against(output: str, against: str) -> dict[tuple[str, str], str]:
    """The table's rows against ``against`` (the "gradient of" column) as {(layer, tensor): verdict}."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        if len(cells) == 7 and cells[2] == against:
            rows[cells[0], cells[1]] = cells[-1]
    return rows


def test_a_network_shaped_as_lab2023_cnn_passes_against_its_twin():
    done = gradcheck_process("network.py:Network", cwd=HANDINS / "lab2023")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Network is lab2023_cnn layer for layer" in done.stdout
    assert rows_against(done.stdout, TWIN) == {
        ("Network", "output (probabilities)"): "ok",  # the loss layer's probabilities against softmax(our logits)
        ("Network", "loss (mean)"): "ok",
        ("layers[0] (Conv2d)", "weights (gradient d_weights)"): "ok",
        ("layers[0] (Conv2d)", "biases (gradient d_biases)"): "ok",
        ("layers[3] (FullyConnected)", "weights (gradient d_weights)"): "ok",  # stored (in, out), read transposed
        ("layers[3] (FullyConnected)", "biases (gradient d_biases)"): "ok",
    }


def test_another_width_and_a_summed_loss_still_match(tmp_path):
    folder = handin(
        tmp_path,
        {
            "network.py": [("Conv2d(1, 20, 3)", "Conv2d(1, 12, 3)"), ("13 * 13 * 20", "13 * 13 * 12")],
            "layer.py": [("-np.mean(np.log(", "-np.sum(np.log("), ("return grad / len(self.target)", "return grad")],
        },
    )
    done = gradcheck_process("network.py:Network", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = rows_against(done.stdout, TWIN)
    assert rows["Network", "loss (sum)"] == "ok"
    assert len(rows) == 6 and set(rows.values()) == {"ok"}


# Forward and backward agree, so finite differences pass: only the twin sees a correlation turned convolution.
FLIPPED_KERNEL = {
    "layer.py": [
        ("self.weights[:, :, a, b]", "self.weights[:, :, -1 - a, -1 - b]"),
        ("self.d_weights[:, :, a, b]", "self.d_weights[:, :, -1 - a, -1 - b]"),
    ]
}
SCALED_GRADIENT = {
    "layer.py": [("self.d_weights = self.input.T @ output_grad", "self.d_weights = 2 * self.input.T @ output_grad")]
}


@pytest.mark.parametrize(
    ("changes", "layer", "tensor"),
    [
        (SCALED_GRADIENT, "layers[3] (FullyConnected)", "weights (gradient d_weights)"),
        (FLIPPED_KERNEL, "Network", "output (probabilities)"),
    ],
    ids=["a weight gradient scaled wrongly", "a convolution that flips its kernel"],
)
def test_a_planted_bug_fails_against_the_twin_naming_the_layer_and_tensor(tmp_path, changes, layer, tensor):
    done = gradcheck_process("network.py:Network", cwd=handin(tmp_path, changes))
    assert done.returncode == 1, done.stdout + done.stderr
    assert rows_against(done.stdout, TWIN)[layer, tensor] == "FAIL"
    assert f"{layer} {tensor}: wrong against the {TWIN}, at index " in done.stdout


def test_a_flipped_kernel_passes_finite_differences_and_fails_against_the_twin(tmp_path):
    """Its forward is another function than the twin's: the gradients are not judged against the twin's."""
    done = gradcheck_process("network.py:Network", cwd=handin(tmp_path, FLIPPED_KERNEL))
    assert set(rows_against(done.stdout, "d loss").values()) == {"ok"}
    assert rows_against(done.stdout, TWIN) == {
        ("Network", "output (probabilities)"): "FAIL",
        ("Network", "loss (mean)"): "FAIL",
    }
    assert "the forward already differs from the twin, so the backward is not judged against it" in done.stdout
    assert "the gradients are not compared with the twin's (finite differences judge them" in done.stdout


def test_a_row_against_the_twin_says_why_it_fails(tmp_path):
    """The twin's rows are diagnosed as the others, with the batch known: a gradient not divided by it is named."""
    changes = {"layer.py": [("return grad / len(self.target)", "return grad")]}
    done = gradcheck_process("network.py:Network", "--json", str(tmp_path / "v.json"), cwd=handin(tmp_path, changes))
    assert done.returncode == 1, done.stdout + done.stderr
    twin = [c for c in json.loads((tmp_path / "v.json").read_text())["comparisons"] if c["through"] == "twin"]
    failing = [c for c in twin if c["verdict"] == "FAIL"]
    assert len(failing) == 4, twin  # the four parameter gradients; output and loss agree
    assert all("off by a factor N = 3: not divided by the batch size" in c["diagnosis"] for c in failing), failing


def test_a_network_no_spec_matches_is_said_in_one_line_and_not_failed(tmp_path):
    folder = handin(
        tmp_path,
        {
            "network.py": [
                ("MaxPool2d(2), Flatten(), FullyConnected(13 * 13 * 20", "Flatten(), FullyConnected(26 * 26 * 20")
            ]
        },
    )
    done = gradcheck_process("network.py:Network", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("no spec of ours matches")]
    assert notes == [
        "no spec of ours matches Network (lab2025_cnn: 23 layers, not 3; lab2023_cnn: 4 layers, not 3): "
        "no PyTorch twin to compare with"
    ]
    assert not rows_against(done.stdout, TWIN)
