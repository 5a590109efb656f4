"""One result type for every check: its verdict, the class table's row, and its JSON read back by the same code."""

from __future__ import annotations

import numpy as np

from lablib.gradcheck.result import Check, Comparison


def layer_check() -> Check:
    return Check(
        name="FullyConnected",
        comparisons=[
            Comparison("output", "autograd (float32)", 1e-7, 1e-7, "ok", "at index (0, 0)", input_shape=(3, 5)),
            Comparison("bias.grad", "autograd (float32)", 0.5, 0.25, "FAIL", "at index (1,)", input_shape=(3, 5)),
            Comparison("weight.grad", "autograd (float32)", np.nan, np.nan, "FAIL", "shape (5, 4)", input_shape=(3, 5)),
            Comparison(
                "running_var", "autograd (float32)", 0.1, 0.1, "differs", note="kept biased", input_shape=(3, 5)
            ),
        ],
        notes=["FullyConnected read through lablib.adapter"],
        skipped=["input (1, 5) skipped"],
    )


def network_check() -> Check:
    return Check(
        kind="network",
        comparisons=[
            Comparison("W (gradient dW)", "", 0.9, 0.9, "FAIL", layer="fc1 (Dense)", through="network", entries=7),
            Comparison("input (its own backward)", "", 0.2, 0.2, "FAIL", layer="fc2 (Dense)", through="layer"),
            Comparison(
                "b (gradient db)", "", np.nan, np.nan, "FAIL", "no gradient", layer="fc2 (Dense)", through="network"
            ),
            Comparison("b (gradient db)", "", 0.0, 0.0, "zero", layer="bn (Norm)", through="network", entries=4),
        ],
    )


def test_a_check_comes_back_from_its_json_as_it_was():
    for check in (layer_check(), network_check(), Check(failure="timeout", reason="no answer within 20 s")):
        text = check.to_json()
        again = Check.from_json(text)
        assert again.to_json() == text
        assert again.verdict == check.verdict and again.summary() == check.summary()
    assert Check.from_json(layer_check().to_json()).comparisons[0].input_shape == (3, 5)


def test_the_verdict_passes_buffers_that_differ_and_exact_zeros():
    assert layer_check().verdict == "FAIL" and network_check().verdict == "FAIL"
    passing = Check(comparisons=[c for c in layer_check().comparisons if c.passed])
    assert passing.verdict == "ok" and [c.verdict for c in passing.comparisons] == ["ok", "differs"]
    assert Check().verdict == "FAIL", "a check that compared nothing does not pass"
    assert Check(failure="error", reason="importing x.py failed").verdict == "error"


def test_the_class_table_names_the_worst_tensor_of_each_kind_of_check():
    assert layer_check().summary() == {
        "verdict": "FAIL",
        "worst_error": "2.5e-01",
        "layer": "FullyConnected",
        "tensor": "bias.grad vs autograd (float32)",
        "reason": "",
    }
    # a layer's own backward before what the network inherits from it
    assert network_check().summary() == {
        "verdict": "FAIL",
        "worst_error": "2.0e-01",
        "layer": "fc2 (Dense)",
        "tensor": "input (its own backward)",
        "reason": "",
    }
    assert Check(failure="timeout", reason="no answer within 20 s").summary() == {
        "verdict": "timeout",
        "worst_error": "",
        "layer": "",
        "tensor": "",
        "reason": "no answer within 20 s",
    }
