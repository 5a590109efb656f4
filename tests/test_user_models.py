"""A model of one's own: a spec file in mymodels/ whose layers come from lablib.nn or from files in
mylayers/, in the Module contract or the course template's; built, trained and saved in NumPy only."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from lablib import nn
from lablib.errors import LabError
from lablib.models.numpy_inference import predict
from lablib.models.numpy_model import build_numpy
from lablib.models.spec_file import SpecFileError, load_spec_file, user_layers
from lablib.models.specs import get_spec
from lablib.params import ParamsError, parse_params
from lablib.train.loop import Outputs, Pool, Trainer
from lablib.train.numpy_backend import NumpyBackend, initial_state

REPO = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())
SPEC = "mymodels/my_cnn.yaml"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A folder holding the shipped mymodels/ and mylayers/, as the working directory."""
    for folder in ("mymodels", "mylayers"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def params_with(**changes):
    raw = copy.deepcopy(RAW)
    raw.update(changes)
    return parse_params(raw)


def test_the_shipped_spec_names_both_kinds_of_layer(project):
    spec = get_spec(SPEC)
    assert user_layers(spec) == ["mylayers/my_layers.py:LeakyReLU", "mylayers/course_layers.py:FullyConnected"]
    assert params_with(model=SPEC).train.model == SPEC


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("elsewhere/my_cnn.yaml", "must be a spec file in mymodels/"),
        ("mymodels/absent.yaml", "mymodels/absent.yaml: there is no such file"),
        ("my_cnn", "lab2025_cnn, lab2023_cnn or a spec file mymodels/NAME.yaml"),
    ],
)
def test_params_refuse_a_model_that_is_neither_built_in_nor_a_spec_file(project, model, message):
    with pytest.raises(ParamsError, match=message):
        params_with(model=model)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("features: []\nclassifier: [Flatten]\n", "features must be a list of at least one layer"),
        ("features: [Flatten]\n", "must hold the two lists features and classifier"),
        ("features: [[Flatten, 3]]\nclassifier: [Flatten]\n", r"features\[0\] is \['Flatten', 3\]"),
        ("features: [other/x.py:A]\nclassifier: [Flatten]\n", "its file in mylayers/ so that DVC reruns"),
        ("features: [mylayers/none.py:A]\nclassifier: [Flatten]\n", "there is no file mylayers/none.py"),
        ("features: [Flatten\n", "not valid YAML"),
    ],
)
def test_a_spec_file_that_cannot_describe_a_model_is_named(project, text, message):
    (project / "mymodels/bad.yaml").write_text(text)
    with pytest.raises(SpecFileError, match=message) as error:
        load_spec_file("mymodels/bad.yaml")
    assert str(error.value).startswith("mymodels/bad.yaml: ")


def test_a_template_layer_computes_what_linear_does_through_the_adapter(project):
    """The course template's FullyConnected, adapted, gives Linear's output and gradients on Linear's weights."""
    (project / "mymodels/template.yaml").write_text(
        "features: [Flatten]\nclassifier: [[mylayers/course_layers.py:FullyConnected, "
        "{in_features: 784, out_features: 10}]]\n"
    )
    template = build_numpy(get_spec("mymodels/template.yaml"), seed=0)
    ours = build_numpy(
        {"features": [("Flatten", {})], "classifier": [("Linear", {"in_features": 784, "out_features": 10})]}, seed=1
    )
    ours.to(np.float64)
    weight = template.classifier[0].weight.data  # the template's (in, out) array, as the layer keeps it
    ours.classifier[0].weight.data[...] = weight.T
    ours.classifier[0].bias.data[...] = np.arange(10) / 10
    template.classifier[0].bias.data[...] = np.arange(10) / 10
    x = np.random.default_rng(2).standard_normal((6, 1, 28, 28))
    np.testing.assert_allclose(template(x), ours(x), rtol=1e-12)
    grad = np.random.default_rng(3).standard_normal((6, 10))
    template.backward(grad), ours.backward(grad)
    np.testing.assert_allclose(template.classifier[0].weight.grad, ours.classifier[0].weight.grad.T, rtol=1e-12)
    np.testing.assert_allclose(template.classifier[0].bias.grad, ours.classifier[0].bias.grad, rtol=1e-12)


def test_a_spec_of_ones_own_layers_trains_and_its_model_file_predicts(project, tmp_path):
    schedule = {**RAW["schedule"], "name": "constant"}
    params = params_with(model=SPEC, epochs=1, batch_size=20, lr=0.01, schedule=schedule).train
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 8)
    images = rng.uniform(-0.5, 0.5, (len(labels), 1, 28, 28)).astype(np.float32)
    pool = Pool(images=images, labels=labels, n_train=60, folds=np.arange(len(labels)) % 3)
    start = initial_state(params)
    assert all(np.array_equal(start[key], value) for key, value in initial_state(params).items()), "seeded"
    outputs = Outputs(tmp_path / "numpy.npz", tmp_path / "live", tmp_path / "ck.npz")
    Trainer(params, pool, NumpyBackend, start, outputs, "numpy").run()
    trained = dict(np.load(outputs.model))
    for key in ("features.0.weight", "classifier.0.weight", "classifier.0.bias"):
        assert not np.array_equal(trained[key], start[f"model/{key}"]), f"{key} did not move"
    _, logits = predict(get_spec(SPEC), trained, images[:5])
    assert logits.shape == (5, 10) and np.isfinite(logits).all()


def test_pytorch_refuses_a_spec_with_layers_of_ones_own(project):
    from lablib.models.torch_model import build_torch

    with pytest.raises(LabError, match="PyTorch has no twin of: the model trains and evaluates in NumPy only"):
        build_torch(get_spec(SPEC))


def test_a_spec_of_lablib_layers_builds_in_both_frameworks(project):
    from lablib.models.torch_model import build_torch

    (project / "mymodels/plain.yaml").write_text(
        "features: [[Conv2d, {in_channels: 1, out_channels: 2, kernel_size: 3}], [MaxPool2d, {kernel_size: 2}], "
        "Flatten]\nclassifier: [[Linear, {in_features: 338, out_features: 10}]]\n"
    )
    spec = get_spec("mymodels/plain.yaml")
    assert isinstance(build_numpy(spec, seed=0).features[0], nn.Conv2d)
    assert set(build_torch(spec).state_dict()) == set(build_numpy(spec, seed=0).state_dict())


def test_a_layer_that_fails_to_build_is_one_message(project):
    (project / "mylayers/broken.py").write_text(
        "class Broken:\n    def __init__(self):\n        raise ValueError('no')\n"
    )
    (project / "mymodels/broken.yaml").write_text("features: [mylayers/broken.py:Broken]\nclassifier: [Flatten]\n")
    with pytest.raises(LabError, match=r"building mylayers/broken\.py:Broken failed: ValueError: no"):
        build_numpy(get_spec("mymodels/broken.yaml"), seed=0)


def test_a_checkpoint_is_not_resumed_once_a_layer_file_changed(project, tmp_path):
    params = params_with(model=SPEC, epochs=1, batch_size=20).train
    pool = Pool(
        images=np.zeros((80, 1, 28, 28), np.float32),
        labels=np.repeat(np.arange(10), 8),
        n_train=60,
        folds=np.arange(80) % 3,
    )
    outputs = Outputs(tmp_path / "numpy.npz", tmp_path / "live", tmp_path / "ck.npz")

    def fingerprint() -> str:
        return Trainer(params, pool, NumpyBackend, {}, outputs, "numpy").fingerprint

    before = fingerprint()
    assert fingerprint() == before
    layer = project / "mylayers/course_layers.py"
    layer.write_text(layer.read_text() + "\n# edited\n")
    assert fingerprint() != before
