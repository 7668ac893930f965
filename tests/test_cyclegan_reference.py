"""CycleGAN step against Eq. 1-3 recomputed from the pre-step networks (pool off), which pins the directions.

G_ST maps source -> target and is judged by D_T; G_TS maps target -> source and is judged by D_S. The
reference is written out here (no call to daaa_tf.method.losses).
"""

import numpy as np
import pytest
import tensorflow as tf

from daaa_tf.method import cyclegan as cg

TINY = dict(image_size=8, gen_width=4, gen_blocks=1, disc_width=4, disc_layers=2, batch_size=4, pool_size=0)


def reference_losses(nets, x_s, x_t, gan_loss, cycle_weight, identity_weight):
    g_st, g_ts, d_s, d_t = (nets[k] for k in cg.NETWORKS)

    def real_term(logits):  # D should say "real"
        if gan_loss == "lsgan":
            return tf.reduce_mean(tf.square(logits - 1.0))
        return tf.reduce_mean(-tf.math.log_sigmoid(logits))

    def fake_term(logits):  # D should say "fake"
        if gan_loss == "lsgan":
            return tf.reduce_mean(tf.square(logits))
        return tf.reduce_mean(-tf.math.log_sigmoid(-logits))

    fake_t, fake_s = g_st(x_s, training=True), g_ts(x_t, training=True)  # x~t = G_ST(x_s), x~s = G_TS(x_t)
    cycle = (tf.reduce_mean(tf.abs(g_ts(fake_t, training=True) - x_s))
             + tf.reduce_mean(tf.abs(g_st(fake_s, training=True) - x_t)))  # Eq. 2
    identity = (tf.reduce_mean(tf.abs(g_st(x_t, training=True) - x_t))
                + tf.reduce_mean(tf.abs(g_ts(x_s, training=True) - x_s)))
    g_st_adv = real_term(d_t(fake_t, training=True))  # Eq. 1: G_ST fools D_T
    g_ts_adv = real_term(d_s(fake_s, training=True))
    d_t_loss = 0.5 * (real_term(d_t(x_t, training=True)) + fake_term(d_t(fake_t, training=True)))
    d_s_loss = 0.5 * (real_term(d_s(x_s, training=True)) + fake_term(d_s(fake_s, training=True)))
    g_total = g_st_adv + g_ts_adv + cycle_weight * cycle + identity_weight * identity  # Eq. 3
    out = {"g_st_adv": g_st_adv, "g_ts_adv": g_ts_adv, "cycle": cycle, "g_total": g_total,
           "d_s": d_s_loss, "d_t": d_t_loss, "identity": identity}
    return {k: float(v) for k, v in out.items()}


@pytest.mark.parametrize("gan_loss", ["lsgan", "bce"])
def test_first_step_losses_are_eq1_to_3_of_the_pre_step_networks(gan_loss):
    tf.keras.utils.set_random_seed(0)
    cfg = cg.CycleGANConfig(**TINY, gan_loss=gan_loss, cycle_weight=7.0, identity_weight=3.0)
    model = cg.build_cyclegan(cfg)
    assert model.pool_s is None and model.pool_t is None
    rng = np.random.default_rng(0)
    x_s = rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    x_t = (0.5 * rng.uniform(-1, 1, (4, 8, 8, 3)) + 0.3).astype(np.float32)  # another "domain"
    ref = reference_losses({k: getattr(model, k) for k in cg.NETWORKS}, x_s, x_t, gan_loss, 7.0, 3.0)
    before = {k: [w.copy() for w in getattr(model, k).get_weights()] for k in cg.NETWORKS}
    logs = model.fit(tf.data.Dataset.from_tensors((x_s, x_t)), steps_per_epoch=1, epochs=1, verbose=0).history
    for k, v in ref.items():
        assert logs[k][0] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    # the two directions differ (distinct generators, distinct domains), so a swap would show
    assert abs(ref["g_st_adv"] - ref["g_ts_adv"]) > 1e-3 or abs(ref["d_s"] - ref["d_t"]) > 1e-3
    for k in cg.NETWORKS:  # every network took its step
        assert any(np.any(a != b) for a, b in zip(before[k], getattr(model, k).get_weights())), k


def test_generators_descend_their_own_loss_and_discriminators_theirs():
    """One small Adam step: G's loss (Eq. 3) and D's loss (Eq. 1) each go down when re-evaluated."""
    tf.keras.utils.set_random_seed(1)
    cfg = cg.CycleGANConfig(**TINY, cycle_weight=10.0, lr=1e-3)
    model = cg.build_cyclegan(cfg)
    rng = np.random.default_rng(1)
    x_s = rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    x_t = rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    nets = {k: getattr(model, k) for k in cg.NETWORKS}
    ref0 = reference_losses(nets, x_s, x_t, "lsgan", 10.0, 0.0)
    d_before = [w.copy() for k in ("d_s", "d_t") for w in getattr(model, k).get_weights()]
    model.fit(tf.data.Dataset.from_tensors((x_s, x_t)), steps_per_epoch=1, epochs=1, verbose=0)
    # G's effect alone: pre-step discriminators, post-step generators
    d_after = [w.copy() for k in ("d_s", "d_t") for w in getattr(model, k).get_weights()]
    _set_d(model, d_before)
    g_moved = reference_losses(nets, x_s, x_t, "lsgan", 10.0, 0.0)
    assert g_moved["g_total"] < ref0["g_total"]
    assert g_moved["cycle"] < ref0["cycle"]
    _set_d(model, d_after)
    both = reference_losses(nets, x_s, x_t, "lsgan", 10.0, 0.0)
    assert both["d_s"] + both["d_t"] < g_moved["d_s"] + g_moved["d_t"]


def _set_d(model, weights):
    n = len(model.d_s.get_weights())
    model.d_s.set_weights(weights[:n])
    model.d_t.set_weights(weights[n:])
