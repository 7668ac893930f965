"""Gradient checks of the DAAA step: one SGD step against dL_full written independently in plain TF.

The reference below never calls the project's attention or loss functions: Eq. 4-5, 6, 12 and 13 are written
out here from DESIGN section 4 and differentiated by plain autodiff (no custom gradient). The batch is
asymmetric (n_s=6, n_tf=2, n_t=5, n_sf=3), beta != 1, target != source != M_post, and p_t drops some real
targets, so a term that is logged but does not train, a flipped or scaled gradient, an ignored beta or p_t, or
the wrong EM targets for x~s each move the step away from the reference.
"""

import types

import numpy as np
import pytest
import tensorflow as tf

from daaa_tf import runtime
from daaa_tf.method.attention import attention_map
from daaa_tf.method.daaa import build_daaa
from daaa_tf.method.losses import posterior_mask
from daaa_tf.models import build_classifier

SIZE, B = 16, 16
PROPORTIONS = (0.375, 0.125, 0.3125, 0.1875)
COUNTS = {"s": 6, "tf": 2, "t": 5, "sf": 3}
BETA = 0.7


def make_cfg(**kw):
    base = dict(arch="digit_cnn", image_size=SIZE, attention_layers="all_conv", batch_size=B,
                proportions=PROPORTIONS, streams=("s", "tf", "t", "sf"), beta=BETA, attention_criterion="l2",
                threshold=0.5, sync_every=1000, restart_lr=True, optimizer="sgd", lr=1.0, lr_alpha=10.0,
                lr_power=0.75, head_lr_mult=1.0, epochs=1, steps_per_epoch=10)
    base.update(kw)
    return types.SimpleNamespace(**base)


def make_batch(counts, size=SIZE, seed=0, classes=10):
    rng = np.random.default_rng(seed)
    img = lambda n: rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)  # noqa: E731
    return {"xs": img(counts["s"]), "ys": rng.integers(0, classes, counts["s"]).astype(np.int32),
            "xtf": img(counts["tf"]), "ytf": rng.integers(0, classes, counts["tf"]).astype(np.int32),
            "xt": img(counts["t"]), "xsf": img(counts["sf"])}


@pytest.fixture(scope="module")
def setup():
    """Source weights, distinct target and M_post weights, a batch, and a p_t that keeps some targets only."""
    runtime.set_seed(0)
    source = build_classifier("digit_cnn", 10, SIZE)
    rng = np.random.default_rng(1)
    target_w = [w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in source.get_weights()]
    # a confident M_post (logits x8) unlike the target, so max q spreads over (0.1, 1)
    post_w = [w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in source.get_weights()]
    post_w[-2] *= 8.0
    post_w[-1] *= 8.0
    batch = make_batch(COUNTS)
    posterior = build_classifier("digit_cnn", 10, SIZE)
    posterior.set_weights(post_w)
    q = tf.nn.softmax(posterior(_x(batch["xt"]), training=False)["logits"]).numpy()
    top = np.sort(q.max(-1))
    threshold = None
    for lo, hi in zip(top[:-1], top[1:]):  # a p_t between two samples: some kept, some dropped
        t = float((lo + hi) / 2)
        kept = q.max(-1) >= t
        if 0 < kept.sum() < len(kept) and kept[:COUNTS["sf"]].any() and hi - lo > 1e-3:
            threshold = t
            break
    assert threshold is not None, top
    return types.SimpleNamespace(source=source, target_w=target_w, post_w=post_w, batch=batch,
                                 threshold=threshold, kept=q.max(-1) >= threshold)


def _x(images):
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def _att(f):
    """Eq. 4 + normalisation, written out: sum_c F^2, flattened, / (L2 norm + 1e-6)."""
    a = tf.reduce_sum(tf.square(f), axis=-1)
    a = tf.reshape(a, [tf.shape(a)[0], -1])
    return a / (tf.sqrt(tf.reduce_sum(tf.square(a), axis=1, keepdims=True)) + 1e-6)


def reference_gradients(target, source, posterior, batch, threshold, em_on):
    """d(term)/d(theta) for L_CE, L_EM and L_AT (each a sum over samples / B), by autodiff in plain TF."""
    x = {k: _x(batch[k]) for k in ("xs", "xtf", "xt", "xsf")}
    q = tf.nn.softmax(posterior(x["xt"], training=False)["logits"])
    mask = tf.cast(tf.reduce_max(q, -1) >= threshold, tf.float32) * em_on
    n_sf = batch["xsf"].shape[0]
    with tf.GradientTape(persistent=True) as tape:
        out = {k: target(v, training=True) for k, v in x.items()}
        logp = {k: tf.nn.log_softmax(o["logits"]) for k, o in out.items()}
        ce = -(tf.reduce_sum(tf.gather(logp["xs"], batch["ys"], batch_dims=1))
               + tf.reduce_sum(tf.gather(logp["xtf"], batch["ytf"], batch_dims=1)))
        em = -(tf.reduce_sum(mask * tf.reduce_sum(q * logp["xt"], -1))
               + tf.reduce_sum(mask[:n_sf] * tf.reduce_sum(q[:n_sf] * logp["xsf"], -1)))
        src = {k: source(x[k], training=False)["taps"] for k in ("xs", "xsf")}
        at = 0.0
        for left, right in (("xs", "xs"), ("xs", "xtf"), ("xsf", "xsf"), ("xsf", "xt")):
            n = min(batch[left].shape[0], batch[right].shape[0])
            for fs, ft in zip(src[left], out[right]["taps"]):
                d = _att(fs)[:n] - _att(ft)[:n]
                at += tf.reduce_sum(tf.sqrt(tf.reduce_sum(tf.square(d), -1) + 1e-12))
        terms = {"ce": ce / B, "em": em / B, "at": at / B}
    variables = target.trainable_variables
    grads = {k: tape.gradient(t, variables) for k, t in terms.items()}
    grads = {k: [np.zeros(v.shape, np.float32) if g is None else g.numpy() for g, v in zip(gs, variables)]
             for k, gs in grads.items()}  # L_AT does not reach the classifier conv
    return grads, {k: float(v) for k, v in terms.items()}


def one_step(s, beta, em_on):
    """One SGD step (lr 1, first step: update = -gradient) of a fresh DAAA model; returns -update, logs."""
    cfg = make_cfg(beta=beta, threshold=s.threshold)
    model, counts = build_daaa(cfg, s.source, tf.distribute.get_strategy())
    assert counts == COUNTS
    model.target.set_weights(s.target_w)
    model.posterior.set_weights(s.post_w)
    model.em_active.assign(float(em_on))
    before = [v.numpy().copy() for v in model.target.trainable_variables]
    logs = model.train_on_batch(s.batch, return_dict=True)
    after = [v.numpy() for v in model.target.trainable_variables]
    return [b - a for b, a in zip(before, after)], logs, model


def _flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


@pytest.fixture(scope="module")
def reference(setup):
    runtime.set_seed(0)
    nets = [build_classifier("digit_cnn", 10, SIZE) for _ in range(3)]
    for net, w in zip(nets, (setup.target_w, setup.source.get_weights(), setup.post_w)):
        net.set_weights(w)
    grads, terms = reference_gradients(*nets, setup.batch, setup.threshold, 1.0)
    return {k: _flat(v) for k, v in grads.items()}, terms


@pytest.mark.parametrize("beta, em_on, parts", [
    (BETA, 1.0, ("ce", "em", "at")),   # L_full
    (0.0, 0.0, ("ce",)),               # L_CE alone
    (0.0, 1.0, ("ce", "em")),          # + L_EM: isolates its gradient
    (BETA, 0.0, ("ce", "at")),         # + beta L_AT: isolates its gradient
])
def test_one_sgd_step_follows_the_gradient_of_each_term(setup, reference, beta, em_on, parts):
    ref, terms = reference
    assert 0 < setup.kept.sum() < COUNTS["t"]  # p_t drops some real targets and keeps others
    weight = {"ce": 1.0, "em": 1.0, "at": beta}
    expected = sum(weight[k] * ref[k] for k in parts)
    step, logs, _ = one_step(setup, beta, em_on)
    got = _flat(step)
    err = np.linalg.norm(got - expected)
    # every term in play is far larger than the tolerance: dropping, halving or flipping one fails
    for k in parts:
        assert np.linalg.norm(weight[k] * ref[k]) > 50 * 1e-4 * np.linalg.norm(expected), k
    assert err <= 1e-4 * np.linalg.norm(expected), (err, np.linalg.norm(expected))
    for k in ("ce", "at"):
        assert logs[k] == pytest.approx(terms[k], rel=1e-4)
    assert logs["em"] == pytest.approx(terms["em"] * em_on, rel=1e-4, abs=1e-8)
    assert logs["loss"] == pytest.approx(sum(weight[k] * terms[k] for k in parts), rel=1e-4)
    if em_on:
        assert logs["kept"] == pytest.approx(setup.kept.mean())


def test_attention_energy_custom_gradient_matches_autodiff():
    rng = np.random.default_rng(0)
    f = tf.constant(rng.normal(0, 1, (3, 4, 5, 6)).astype(np.float32))
    w = tf.constant(rng.normal(0, 1, (3, 20)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(f)
        mine = tf.reduce_sum(attention_map(f) * w)
        plain = tf.reduce_sum(_att(f) * w)
    np.testing.assert_allclose(mine.numpy(), plain.numpy(), rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(mine, f).numpy(), tape.gradient(plain, f).numpy(),
                               rtol=1e-4, atol=1e-6)
    for dtype in (tf.float16, tf.bfloat16):  # the low-precision path of the custom gradient
        fl = tf.cast(f, dtype)
        with tf.GradientTape() as tape:
            tape.watch(fl)
            loss = tf.reduce_sum(attention_map(fl) * w)
        g = tape.gradient(loss, fl)
        assert g.dtype == dtype
        np.testing.assert_allclose(tf.cast(g, tf.float32).numpy(), tape_plain(f, w), rtol=0.05, atol=0.02)


def tape_plain(f, w):
    with tf.GradientTape() as tape:
        tape.watch(f)
        loss = tf.reduce_sum(_att(f) * w)
    return tape.gradient(loss, f).numpy()


def test_posterior_mask_keeps_a_sample_exactly_at_p_t():
    q = tf.constant([[0.5, 0.5], [0.25, 0.75], [0.9, 0.1]])
    np.testing.assert_array_equal(posterior_mask(q, 0.75, 1.0).numpy(), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(posterior_mask(q, 0.75, 0.0).numpy(), [0.0, 0.0, 0.0])


def test_head_multiplier_moves_the_head_k_times_as_far():
    """SGD, head_lr_mult=10: the first step moves the new head exactly 10x as far, the backbone unchanged."""
    runtime.set_seed(0)
    source = build_classifier("resnet50", 3, 32, None, "conv5_block3_out")
    batch = make_batch({"s": 2, "tf": 2, "t": 2, "sf": 2}, size=32, classes=3)
    steps = {}
    for mult in (1.0, 10.0):
        cfg = make_cfg(arch="resnet50", image_size=32, attention_layers="conv5_block3_out", batch_size=8,
                       proportions=(0.25, 0.25, 0.25, 0.25), optimizer="sgd", lr=0.05, head_lr_mult=mult,
                       threshold=0.0, beta=1.0)
        model, _ = build_daaa(cfg, source, tf.distribute.get_strategy())
        model.em_active.assign(1.0)
        variables = model.target.trainable_variables
        head = {id(v) for v in model.target.get_layer("head").trainable_variables}
        before = [v.numpy().copy() for v in variables]
        model.train_on_batch(batch)
        steps[mult] = [(id(v) in head, b - v.numpy()) for v, b in zip(variables, before)]
    assert sum(h for h, _ in steps[1.0]) == 2  # kernel and bias
    for (is_head, d1), (_, d10) in zip(steps[1.0], steps[10.0]):
        if is_head:
            assert np.abs(d1).max() > 0
            np.testing.assert_allclose(d10, 10.0 * d1, rtol=1e-3, atol=1e-5 * np.abs(d10).max())  # ulps of w
        else:
            np.testing.assert_allclose(d10, d1, rtol=1e-4, atol=1e-4 * np.abs(d1).max())
