"""RevGrad/DANN baseline: gradient reversal, lambda schedule, domain loss, train step, Mirrored, the stage."""

import math
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from daaa_tf import io, runtime
from daaa_tf.data.pipelines import batch_counts
from daaa_tf.method import revgrad
from daaa_tf.models import build_classifier, load_classifier, preprocess
from daaa_tf.stages import revgrad as revgrad_stage
from daaa_tf.stages.revgrad import RevGradConfig, run_revgrad


def make_cfg(**kw):
    base = dict(arch="digit_cnn", image_size=16, attention_layers="all_conv", batch_size=8, optimizer="sgd",
                lr=0.05, lr_alpha=10.0, lr_power=0.75, head_lr_mult=1.0, epochs=1, steps_per_epoch=4,
                hidden=(8,), dropout=0.0, gamma=10.0, domain_weight=1.0)
    base.update(kw)
    return types.SimpleNamespace(**base)


def make_source(size=16, seed=0, k=10):
    runtime.set_seed(seed)
    return build_classifier("digit_cnn", k, size)


def make_batch(n_s=4, n_t=4, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return {"xs": rng.integers(0, 256, (n_s, size, size, 3), dtype=np.uint8),
            "ys": rng.integers(0, 10, n_s).astype(np.int32),
            "xt": rng.integers(0, 256, (n_t, size, size, 3), dtype=np.uint8)}


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.7])
def test_gradient_reversal_sign_and_scale(lam):
    x = tf.Variable(np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    w = tf.constant(np.arange(12, dtype=np.float32).reshape(3, 4) - 5.0)
    with tf.GradientTape() as tape:
        y = revgrad.gradient_reversal(x, lam)
        s = tf.reduce_sum(y * w)
    np.testing.assert_array_equal(y.numpy(), x.numpy())  # identity forward
    np.testing.assert_allclose(tape.gradient(s, x).numpy(), -lam * w.numpy(), rtol=1e-6)  # -lambda * w back

    @tf.function
    def graph_grad(lam_t):
        with tf.GradientTape() as t:
            s = tf.reduce_sum(revgrad.gradient_reversal(x, lam_t) * w)
        return t.gradient(s, x)

    np.testing.assert_allclose(graph_grad(tf.constant(lam)).numpy(), -lam * w.numpy(), rtol=1e-6)


def test_dann_lambda_hand_values():
    # 2 / (1 + exp(-10 p)) - 1 = tanh(5 p): hand values tanh(0) = 0, tanh(0.5), tanh(2.5), tanh(5)
    for p, want in ((0.0, 0.0), (0.1, 0.46211715726), (0.5, 0.98661429815), (1.0, 0.99990920426)):
        assert float(revgrad.dann_lambda(p)) == pytest.approx(want, abs=1e-6)
    assert float(revgrad.dann_lambda(2.0)) == pytest.approx(0.99990920426, abs=1e-6)  # p clipped to 1
    assert float(revgrad.dann_lambda(0.5, gamma=2.0)) == pytest.approx(math.tanh(0.5), abs=1e-6)


def test_domain_loss_matches_numpy():
    z = np.array([[2.0], [-1.0], [0.3], [-4.0], [0.0]], np.float32)
    d = np.array([0, 0, 1, 1, 1], np.float32)
    sig = 1.0 / (1.0 + np.exp(-z[:, 0].astype(np.float64)))
    want = -np.sum(d * np.log(sig) + (1 - d) * np.log(1 - sig))
    assert float(revgrad.domain_loss_sum(d, z)) == pytest.approx(want, rel=1e-6)


def test_batch_counts_and_errors():
    assert batch_counts(64, 2) == {"s": 32, "t": 32}
    assert batch_counts(7) == {"s": 3, "t": 4}
    assert batch_counts(6, 2) == {"s": 2, "t": 4}  # per replica: 1 source + 2 target
    assert batch_counts(40, 8) == {"s": 16, "t": 24}
    with pytest.raises(ValueError, match="--batch_size=7: .* use --batch_size=6 or 8"):
        batch_counts(7, 2)
    with pytest.raises(ValueError, match="use --batch_size=8$"):
        batch_counts(4, 4)


def test_train_step_losses_match_numpy():
    cfg = make_cfg()
    model = revgrad.build_revgrad(cfg, make_source(), tf.distribute.get_strategy())
    batch = make_batch()
    out = model.extractor(preprocess(np.concatenate([batch["xs"], batch["xt"]]), "digit_cnn"))
    logits = out["logits"].numpy().astype(np.float64)
    z = model.domain_head(out["features"]).numpy()[:, 0].astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(
        1, keepdims=True)
    ce = -logp[np.arange(4), batch["ys"]].sum()
    d = np.array([0] * 4 + [1] * 4, np.float64)
    dom = np.sum(np.logaddexp(0, z) - d * z)  # BCE with logits
    logs = model.train_on_batch(batch, return_dict=True)
    assert logs["ce"] == pytest.approx(ce / 8, rel=1e-4)
    assert logs["domain"] == pytest.approx(dom / 8, rel=1e-4)
    assert logs["loss"] == pytest.approx((ce + dom) / 8, rel=1e-4)
    assert logs["lambda"] == pytest.approx(0.0)  # p = 0 at the first step


def test_reversal_reaches_features_but_not_domain_head():
    """d(domain loss)/d(net) through the GRL = -lambda x the plain gradient; the domain head is not reversed."""
    model = revgrad.build_revgrad(make_cfg(), make_source(), tf.distribute.get_strategy())
    batch, lam = make_batch(), 0.7
    net_vars, head_vars = model.net.trainable_variables, model.domain_head.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        sums = model.compute_losses(batch, tf.constant(lam), training=True)[0]
        out = model.extractor(preprocess(np.concatenate([batch["xs"], batch["xt"]]), "digit_cnn"), training=True)
        plain = revgrad.domain_loss_sum(np.array([0] * 4 + [1] * 4), model.domain_head(out["features"]))
    g_rev = tape.gradient(sums["domain"], net_vars + head_vars)
    g_plain = tape.gradient(plain, net_vars + head_vars)
    n = len(net_vars)
    nonzero = 0
    for a, b in zip(g_rev[:n], g_plain[:n]):
        if b is None:  # the conv classifier does not feed the features
            assert a is None
            continue
        np.testing.assert_allclose(a.numpy(), -lam * b.numpy(), rtol=1e-4, atol=1e-7)
        nonzero += int(np.any(b.numpy() != 0))
    assert nonzero > 0
    for a, b in zip(g_rev[n:], g_plain[n:]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def _train(strategy, batch, head_weights=None, steps=3):
    model = revgrad.build_revgrad(make_cfg(steps_per_epoch=steps), make_source(seed=3), strategy)
    if head_weights is not None:
        model.domain_head.set_weights(head_weights)
    head0 = [w.copy() for w in model.domain_head.get_weights()]
    data = tf.data.Dataset.from_tensors(batch).repeat()
    hist = model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    return model.net.get_weights(), head0, hist.history


def test_mirrored_two_cpus_equals_one_device():
    batch = make_batch(8, 8, seed=5)
    w1, head0, h1 = _train(tf.distribute.get_strategy(), batch)
    mirrored = runtime.make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2
    w2, _, h2 = _train(mirrored, batch, head0)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))
    assert diff <= 1e-5, diff
    for k in ("loss", "ce", "domain", "lambda"):
        assert h1[k][0] == pytest.approx(h2[k][0], rel=1e-4), k


def fake_domain(n, seed, size=16, k=10):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = (np.arange(n) % k).astype(np.int32)
    return types.SimpleNamespace(
        num_examples=n, num_classes=k, name=f"fake{seed}",
        dataset=lambda: tf.data.Dataset.from_tensor_slices((images, labels)))


def test_run_revgrad_on_tiny_fake_domains(tmp_path, monkeypatch, recwarn):
    domains = {("src", "train"): fake_domain(24, 1), ("src", "test"): fake_domain(10, 2),
               ("tgt", "train"): fake_domain(24, 3), ("tgt", "test"): fake_domain(12, 4)}
    monkeypatch.setattr(revgrad_stage, "load_domain", lambda spec, split, size, role: domains[(spec, split)])
    monkeypatch.setattr("daaa_tf.data.identity.data_identity", lambda spec, role: {"spec": spec, "files": "fake"})
    src_path = str(tmp_path / "source.keras")
    source = make_source()
    source.save(src_path)
    cfg = RevGradConfig(out_dir=str(tmp_path / "RevGrad" / "seed0"), source_model=src_path, source="src",
                        target="tgt", image_size=16, batch_size=8, epochs=2, steps_per_epoch=3,
                        hidden=(8,), eval_batch_size=5, strategy="default")
    m = run_revgrad(cfg)
    assert not [w for w in recwarn if "shuffle=True" in str(w.message)]  # fit(shuffle=False) on a dataset
    saved = io.read_json(os.path.join(cfg.out_dir, "metrics.json"))
    assert saved["target_test_accuracy"] == m["target_test_accuracy"] == saved["history"]["val_accuracy"][-1]
    assert len(saved["history"]["val_accuracy"]) == 2 and saved["steps"] == 6
    assert {"loss", "ce", "domain", "lambda", "domain_accuracy", "accuracy"} <= set(saved["history"])
    assert 0.0 <= saved["source_test_accuracy"] <= 1.0 and saved["train_seconds"] > 0
    assert saved["code"] == runtime.code_version()
    assert saved["counts"] == {"s": 4, "t": 4} and saved["domain_features"].startswith("flattened pool3")
    # lambda grows with the progress p = step / total steps
    assert saved["history"]["lambda"][0] < saved["history"]["lambda"][1]
    adapted = load_classifier(os.path.join(cfg.out_dir, "model.keras"))
    changed = [not np.array_equal(a, b) for a, b in zip(source.get_weights(), adapted.get_weights())]
    assert any(changed)
    # a rerun resumes from the backup: no extra epochs, the same history length
    again = run_revgrad(cfg)
    assert len(again["history"]["val_accuracy"]) == 2 and again["steps"] == 6


def test_wrong_class_count_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(revgrad_stage, "load_domain", lambda spec, split, size, role: fake_domain(8, 0, k=3))
    src_path = str(tmp_path / "source.keras")
    make_source().save(src_path)
    cfg = RevGradConfig(out_dir=str(tmp_path / "o"), source_model=src_path, image_size=16)
    with pytest.raises(ValueError, match="has 3 classes but the source model"):
        run_revgrad(cfg)
