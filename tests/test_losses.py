"""Each loss of the paper against a value computed by hand (numpy) on tiny tensors."""

import numpy as np
import pytest
import tensorflow as tf

from daaa_tf.method import attention, losses


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_cross_entropy_sum_eq6():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], np.float32)
    labels = np.array([0, 2])
    expected = -(np.log(softmax(logits)[0, 0]) + np.log(softmax(logits)[1, 2]))
    assert float(losses.cross_entropy_sum(labels, logits)) == pytest.approx(expected, rel=1e-6)


def test_posterior_mask_threshold_and_off_before_first_sync():
    q = np.array([[0.96, 0.02, 0.02], [0.5, 0.3, 0.2], [0.95, 0.05, 0.0]], np.float32)
    np.testing.assert_array_equal(losses.posterior_mask(q, 0.95, 1.0).numpy(), [1, 0, 1])
    np.testing.assert_array_equal(losses.posterior_mask(q, 0.95, 0.0).numpy(), [0, 0, 0])
    np.testing.assert_array_equal(losses.posterior_mask(q, 0.0, 1.0).numpy(), [1, 1, 1])


def test_em_loss_eq12_uses_soft_targets_and_mask():
    q = np.array([[0.97, 0.02, 0.01], [0.4, 0.4, 0.2]], np.float32)
    logits = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    mask = np.array([1.0, 0.0], np.float32)
    logp = np.log(softmax(logits))
    expected = -(q[0] * logp[0]).sum()  # soft target, second sample filtered out
    assert float(losses.em_loss_sum(q, logits, mask)) == pytest.approx(expected, rel=1e-6)
    hard = -logp[0, 0]
    assert abs(expected - hard) > 1e-3  # soft != argmax target
    # no gradient flows into the posteriors
    qv = tf.Variable(q)
    with tf.GradientTape() as tape:
        value = losses.em_loss_sum(qv, logits, mask)
    assert tape.gradient(value, qv) is None


def test_attention_map_eq4_normalised():
    f = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    a = (f**2).sum(-1).reshape(2, -1)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    np.testing.assert_allclose(attention.attention_map(f).numpy(), a, rtol=1e-5)


def test_pair_distances_l2_not_squared_and_l1():
    a = np.array([[0.6, 0.8], [1.0, 0.0]], np.float32)
    b = np.array([[0.8, 0.6], [1.0, 0.0]], np.float32)
    np.testing.assert_allclose(attention.pair_distance(a, b, "l2").numpy(), [np.sqrt(0.08), 1e-6], atol=1e-6)
    np.testing.assert_allclose(attention.pair_distance(a, b, "l1").numpy(), [0.4, 0.0], atol=1e-6)


def test_l2_gradient_is_finite_where_maps_coincide():
    a = tf.Variable([[0.6, 0.8]])
    with tf.GradientTape() as tape:
        d = tf.reduce_sum(attention.pair_distance(tf.constant([[0.6, 0.8]]), a, "l2"))
    assert np.all(np.isfinite(tape.gradient(d, a).numpy()))


def test_attention_alignment_loss_eq5_sums_families_and_layers():
    rng = np.random.default_rng(1)
    layers_src = [rng.random((3, 4)).astype(np.float32) for _ in range(2)]
    layers_tgt = [rng.random((3, 4)).astype(np.float32) for _ in range(2)]
    fam2_src = [x[:2] for x in layers_src]
    fam2_tgt = [x[1:] for x in layers_tgt]
    expected = sum(np.linalg.norm(s - t, axis=1).sum() for s, t in zip(layers_src, layers_tgt))
    expected += sum(np.linalg.norm(s - t, axis=1).sum() for s, t in zip(fam2_src, fam2_tgt))
    got = attention.attention_alignment_loss([(layers_src, layers_tgt), (fam2_src, fam2_tgt)], "l2")
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_mmd_zero_for_identical_sets_positive_otherwise():
    rng = np.random.default_rng(2)
    x = rng.random((6, 5)).astype(np.float32)
    assert float(attention.mmd(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(attention.mmd(x, x + 1.0)) > 0.1
    assert float(attention.jmmd([x, x], [x, x])) == pytest.approx(0.0, abs=1e-6)
    fam = [([x], [x + 1.0])]
    assert float(attention.attention_alignment_loss(fam, "mmd")) == pytest.approx(6 * float(attention.mmd(x, x + 1)))


def test_gan_and_cycle_losses_eq1_to_3():
    real = np.array([[0.9], [0.2]], np.float32)
    fake = np.array([[0.1], [0.6]], np.float32)
    ls = 0.5 * (np.mean((real - 1) ** 2) + np.mean(fake**2))
    assert float(losses.discriminator_loss(real, fake, "lsgan")) == pytest.approx(ls, rel=1e-6)
    sig = 1 / (1 + np.exp(-np.concatenate([real, fake])))
    bce = 0.5 * (-np.mean(np.log(sig[:2])) - np.mean(np.log(1 - sig[2:])))
    assert float(losses.discriminator_loss(real, fake, "bce")) == pytest.approx(bce, rel=1e-5)
    assert float(losses.generator_adversarial_loss(fake, "lsgan")) == pytest.approx(np.mean((fake - 1) ** 2))
    x = np.zeros((1, 2, 2, 3), np.float32)
    assert float(losses.cycle_loss(x, x + 0.5)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="--gan_loss"):
        losses.discriminator_loss(real, fake, "wgan")
    with pytest.raises(ValueError, match="--attention_criterion"):
        attention.attention_alignment_loss([], "cosine")
