"""Losses of the paper: the CycleGAN terms (Eq. 1-3), L_CE (Eq. 6) and L_EM (Eq. 12).

Conventions: the GAN/cycle terms are batch means (as in CycleGAN). L_CE and L_EM return *sums over
samples*; the adaptation step divides every term by the global batch size (docs/design.md,
"Eq. 13: L_full and its scale").
"""

import tensorflow as tf

from daaa_tf import UserError

GAN_LOSSES = ("lsgan", "bce")


def discriminator_loss(real_logits, fake_logits, gan_loss="lsgan"):
    """Eq. 1, discriminator side: D maximises log D(x) + log(1 - D(G(z))) (bce) or its least-squares form.

    Returns the loss to *minimise*: bce -> -[log D(real) + log(1 - D(fake))]; lsgan -> (D(real)-1)^2 + D(fake)^2,
    each a mean over the batch and patch positions, times 0.5 (the CycleGAN convention).
    """
    if gan_loss == "lsgan":
        return 0.5 * (tf.reduce_mean(tf.square(real_logits - 1.0)) + tf.reduce_mean(tf.square(fake_logits)))
    if gan_loss == "bce":
        real = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(real_logits), real_logits)
        fake = tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake_logits), fake_logits)
        return 0.5 * (tf.reduce_mean(real) + tf.reduce_mean(fake))
    raise UserError(f"--gan_loss: expected one of {GAN_LOSSES}, got {gan_loss!r}")


def generator_adversarial_loss(fake_logits, gan_loss="lsgan"):
    """Eq. 1, generator side (non-saturating): bce -> -log D(G(x)); lsgan -> (D(G(x)) - 1)^2, batch mean."""
    if gan_loss == "lsgan":
        return tf.reduce_mean(tf.square(fake_logits - 1.0))
    if gan_loss == "bce":
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(fake_logits), fake_logits))
    raise UserError(f"--gan_loss: expected one of {GAN_LOSSES}, got {gan_loss!r}")


def cycle_loss(real, reconstructed):
    """Eq. 2 (one direction): E ||G^TS(G^ST(x)) - x||_1, as the mean absolute error per pixel."""
    return tf.reduce_mean(tf.abs(tf.cast(real, tf.float32) - tf.cast(reconstructed, tf.float32)))


def identity_loss(real, same):
    """CycleGAN's optional identity term E ||G^ST(x^T) - x^T||_1 (not in the paper; weight 0 disables it)."""
    return tf.reduce_mean(tf.abs(tf.cast(real, tf.float32) - tf.cast(same, tf.float32)))


def cross_entropy_sum(labels, logits):
    """Eq. 6 (one stream): -sum_i log p_theta(y_i | x_i) over the given samples (a sum, not a mean)."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(ce)


def posterior_mask(posteriors, threshold, active=1.0):
    """Section 3.3 B: 1 for samples whose max_z p(z|x) >= p_t, else 0; all 0 while ``active`` is 0.

    ``active`` is 0 before the first M_post sync (the paper's p_t = 1: no target sample is used yet).
    """
    keep = tf.cast(tf.reduce_max(posteriors, axis=-1) >= threshold, tf.float32)
    return keep * tf.cast(active, tf.float32)


def em_loss_sum(posteriors, logits, mask):
    """Eq. 12 (one stream): -sum_i mask_i sum_z q_i(z) log p_theta(z | x_i), q = soft M_post posteriors.

    ``posteriors`` carry no gradient (stopped here); soft targets, not argmax. For the synthetic sources
    x~s = G^TS(x^T), pass the posteriors of their real originals (p(z|x~s) = p(z|x^T)).
    """
    q = tf.stop_gradient(tf.cast(posteriors, tf.float32))
    log_p = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    per_sample = -tf.reduce_sum(q * log_p, axis=-1)
    return tf.reduce_sum(per_sample * tf.cast(mask, tf.float32))
