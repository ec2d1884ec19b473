"""The shipped ShapesWorld oracle: loads, is small, and names fresh pictures of every class."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from craftstudio.demo.lab.oracle_training import augment
from craftstudio.demo.oracle import Oracle, OracleNet, oracle_path
from craftstudio.demo.world import SHAPES, STYLES, render

FRESH_SEED = 55_555  # not a stream the oracle was trained or measured on


@pytest.fixture(scope="module")
def oracle() -> Oracle:
    return Oracle.load()


def test_shipped_oracle_is_small_safetensors_with_its_measured_accuracy(oracle):
    path = oracle_path()
    assert path.suffix == ".safetensors" and path.stat().st_size <= 5 * 1024 * 1024
    assert oracle.shapes == SHAPES and oracle.styles == STYLES
    accuracy = oracle.metadata["accuracy"]
    assert accuracy["images"] >= 2000
    assert accuracy["content"] >= 0.98 and accuracy["style"] >= 0.98


def test_oracle_names_fresh_pictures_of_every_class(oracle):
    rng = np.random.default_rng(FRESH_SEED)
    cases = [(shape, STYLES[rng.integers(len(STYLES))]) for shape in SHAPES for _ in range(2)]
    cases += [(SHAPES[rng.integers(len(SHAPES))], style) for style in STYLES for _ in range(2)]
    images = [render(shape, style, FRESH_SEED + i) for i, (shape, style) in enumerate(cases)]
    predicted = oracle.predict(images)
    content_ok = [p[0] == c[0] for p, c in zip(predicted, cases, strict=True)]
    style_ok = [p[1] == c[1] for p, c in zip(predicted, cases, strict=True)]
    assert np.mean(content_ok) >= 0.95 and np.mean(style_ok) >= 0.95, predicted
    for shape in SHAPES:  # every class is recognised at least once
        assert any(ok for ok, c in zip(content_ok, cases, strict=True) if c[0] == shape), shape
    for style in STYLES:
        assert any(ok for ok, c in zip(style_ok, cases, strict=True) if c[1] == style), style


def test_scores_give_probabilities_and_embedding_similarity(oracle):
    images = [render("star", "dots", 1), render("star", "dots", 2)]
    reference = [render("star", "flat", 3), render("circle", "dots", 4)]
    scores = oracle.scores(images, "star", "dots", reference=reference)
    assert 0.5 < scores["content_prob"] <= 1 and 0.5 < scores["style_prob"] <= 1
    assert scores["content_acc"] == 1.0 and scores["style_acc"] == 1.0
    assert -1 <= scores["content_cos"] <= 1 and -1 <= scores["style_cos"] <= 1
    other = oracle.scores(images, "star", "dots", reference=[render("ring", "flat", 3), render("circle", "waves", 4)])
    assert scores["content_cos"] > other["content_cos"] and scores["style_cos"] > other["style_cos"]


def test_save_and_load_round_trip(tmp_path):
    net = OracleNet(len(SHAPES), len(STYLES), widths=(8, 8, 8, 8), embed=8).eval()
    path = Oracle(net, SHAPES, STYLES).save(tmp_path / "o.safetensors", {"accuracy": {"content": 0.5}})
    loaded = Oracle.load(path)
    assert loaded.metadata["accuracy"] == {"content": 0.5}
    x = np.stack([np.asarray(render("star", "dots", 0))])
    for a, b in zip(Oracle(net.half().float(), SHAPES, STYLES).classify(x).__dict__.values(),
                    loaded.classify(x).__dict__.values(), strict=True):
        assert torch.allclose(a, b, atol=1e-4)
    (tmp_path / "bad.safetensors").write_bytes(b"\\x00" * 16)
    with pytest.raises(Exception):  # noqa: B017 - any refusal is fine, never an unpickle
        Oracle.load(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError, match="train-oracle"):
        Oracle.load(tmp_path / "missing.safetensors")


def test_augmentation_keeps_range_and_leaves_unchosen_pictures():
    x = torch.rand(16, 3, 64, 64) * 2 - 1
    generator = torch.Generator().manual_seed(0)
    out = augment(x, 0.5, generator)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    changed = (out != x).flatten(1).any(1)
    assert 0 < changed.sum() < 16
    assert torch.equal(augment(x, 0.0, generator), x)
