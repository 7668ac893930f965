"""CyCADA-style semantic consistency in the CycleGAN (``--semantic_weight``, beyond the paper)."""

import numpy as np
import pytest
import tensorflow as tf

from daaa_tf import runtime
from daaa_tf.method import cyclegan as cg
from daaa_tf.models import build_classifier
from daaa_tf.stages import cyclegan as stage
from tests.test_cyclegan import TINY, _domains


def _first_step(weight, classifier):
    runtime.set_seed(0)
    model = cg.build_cyclegan(cg.CycleGANConfig(**TINY, pool_size=0, semantic_weight=weight),
                              semantic_net=classifier)
    src, tgt = _domains()
    x_s, x_t = next(iter(stage.training_pairs((src.dataset(), 14), (tgt.dataset(), 10), 4)))
    fake_t, fake_s = model.g_st(x_s, training=True), model.g_ts(x_t, training=True)

    def probs(x):  # independent: f_S on [0, 255] images in [-1, 1] is the identity preprocessing
        return tf.nn.softmax(classifier(((x + 1.0) * 127.5) / 127.5 - 1.0, training=False)["logits"]).numpy()

    expected = 0.0
    for orig, trans in ((x_s, fake_t), (x_t, fake_s)):
        labels = probs(orig).argmax(-1)
        expected += float(np.mean(-np.log(probs(trans)[np.arange(len(labels)), labels])))
    logs = model.train_step((x_s, x_t))
    return model, {k: float(v) for k, v in logs.items()}, expected


def test_semantic_term_value_and_weight_enter_the_generator_loss():
    runtime.set_seed(1)
    classifier = build_classifier("digit_cnn", 10, 8)
    before = [w.copy() for w in classifier.get_weights()]
    model, with_sem, expected = _first_step(2.5, classifier)
    plain, without, _ = _first_step(0.0, classifier)
    # ... and it trains the generators (a term that is logged but has no gradient would leave them equal).
    moved = [np.abs(a - b).max() for a, b in zip(model.g_ts.get_weights(), plain.g_ts.get_weights())]
    assert max(moved) > 1e-6
    np.testing.assert_allclose(with_sem["semantic"], expected, rtol=1e-4)
    # Same networks before the step: g_total differs by exactly weight * semantic.
    np.testing.assert_allclose(with_sem["g_total"] - without["g_total"], 2.5 * with_sem["semantic"], rtol=1e-4)
    assert "semantic" not in without
    # f_S is frozen: neither the caller's network nor the model's copy moved.
    for a, b in zip(before, classifier.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(before, model.semantic_net.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_semantic_weight_needs_the_source_network():
    with pytest.raises(ValueError, match="--source_model"):
        cg.build_cyclegan(cg.CycleGANConfig(**TINY, semantic_weight=1.0))


@pytest.mark.parametrize("weight", [0.0, 1.5])
def test_the_stage_loads_the_source_network_only_when_the_term_is_on(tmp_path, monkeypatch, weight):
    import daaa_tf.data
    import daaa_tf.models
    from daaa_tf import config

    loaded, trained = [], {}
    monkeypatch.setattr(daaa_tf.data, "load_domain", lambda spec, split, size, role: role)
    monkeypatch.setattr(stage, "conform_domain", lambda domain, *args: domain)
    monkeypatch.setattr(daaa_tf.models, "load_classifier", lambda path: loaded.append(path) or "f_S")

    def fake_train(cfg, source, target, out_dir, strategy, **kwargs):
        trained.update(kwargs, domains=(source, target))
        return None, {"step": 0}

    monkeypatch.setattr(stage, "train_cyclegan", fake_train)
    monkeypatch.setattr(stage, "translate_domains", lambda *a, **k: {"translated": 0, "translate_seconds": 0.0})
    cfg = config.build(config.CycleGANConfig, {"run_dir": str(tmp_path), "semantic_weight": weight,
                                              "arch": "digit_cnn", "precision": "float32"})
    stage.run_cyclegan(cfg, log=lambda msg: None)
    assert trained["domains"] == ("source", "target")
    if weight:
        assert loaded == [str(tmp_path / "source" / "model.keras")]  # --source_model's default
        assert trained["semantic_net"] == "f_S" and trained["semantic_arch"] == "digit_cnn"
    else:
        assert loaded == [] and trained["semantic_net"] is None
