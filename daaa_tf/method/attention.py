"""Attention maps (Eq. 4) and the attention alignment penalty L_AT (Eq. 5) with its alignment criteria."""

import tensorflow as tf

from daaa_tf import UserError

CRITERIA = ("l2", "l1", "mmd", "jmmd")


@tf.custom_gradient
def _channel_energy(f):
    """sum_c f_c^2 over the last axis, accumulated in float32; gradient 2 f g in f's dtype (float16: float32).

    The forward equals ``reduce_sum(square(cast(f, float32)), -1)``. The gradient is one broadcast multiply in
    the dtype the gradient w.r.t. f has anyway: autodiff would materialise the tiled upstream gradient and
    2 f, and under mixed_bfloat16 also a float32 copy of every tap and a cast back (measured with
    bench/adapt_step.py: the attention maps cost ~1/3 less on the digit CNN in bfloat16).
    """
    def grad(g):
        g2 = (2.0 * g)[..., None]
        if f.dtype == tf.float16:  # float16's range: form the product in float32 (as autodiff would)
            return tf.cast(tf.cast(f, tf.float32) * g2, f.dtype)
        return f * tf.cast(g2, f.dtype)

    return tf.reduce_sum(tf.square(tf.cast(f, tf.float32)), axis=-1), grad


def attention_map(features, eps=1e-6):
    """Eq. 4 + normalisation: A_l(x) = sum_c |F_{l,c}(x)|^2, flattened and divided by its L2 norm (+ eps).

    features: [N, H, W, C] (any float dtype) -> [N, H*W] float32. Row-wise: the map of a batch is the batch of
    the maps, so callers compute it once per tap and split the [N, H*W] result, not the [N, H, W, C] features.
    """
    a = _channel_energy(features)
    a = tf.reshape(a, [tf.shape(a)[0], -1])
    return a / (tf.norm(a, axis=1, keepdims=True) + eps)


def pair_distance(a_src, a_tgt, criterion="l2"):
    """Per-pair distance between normalised attention maps [N, D] -> [N] (the summand of Eq. 5).

    l2: ||a - b||_2, not squared (computed as sqrt(sum d^2 + 1e-12) so that its gradient is 0, not NaN,
    where the two maps are identical, as they are at the start of adaptation). l1: ||a - b||_1.
    """
    d = a_src - a_tgt
    if criterion == "l2":
        return tf.sqrt(tf.reduce_sum(tf.square(d), axis=-1) + 1e-12)
    if criterion == "l1":
        return tf.reduce_sum(tf.abs(d), axis=-1)
    raise ValueError(f"pair_distance: criterion must be l2 or l1, got {criterion!r}")


def _gaussian_kernel(x, y, bandwidths=(0.25, 0.5, 1.0, 2.0, 4.0)):
    """Multi-bandwidth Gaussian kernel as in DAN/JAN; bandwidths relative to the mean squared distance."""
    xy = tf.concat([x, y], axis=0)
    sq = tf.reduce_sum(tf.square(xy[:, None, :] - xy[None, :, :]), axis=-1)
    n = tf.cast(tf.shape(xy)[0], tf.float32)
    scale = tf.stop_gradient(tf.reduce_sum(sq) / tf.maximum(n * n - n, 1.0)) + 1e-12
    return tf.add_n([tf.exp(-sq / (scale * b)) for b in bandwidths])


def _mmd_from_kernel(k, n):
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return tf.reduce_mean(kxx) + tf.reduce_mean(kyy) - 2.0 * tf.reduce_mean(kxy)


def mmd(a_src, a_tgt):
    """Squared MMD (biased estimate) between two sets of attention vectors [N, D] (Table 4, 'MMD')."""
    return _mmd_from_kernel(_gaussian_kernel(a_src, a_tgt), tf.shape(a_src)[0])


def jmmd(src_layers, tgt_layers):
    """Joint MMD (JAN) over layers: the product of per-layer kernels (Table 4, 'JMMD')."""
    k = None
    for a, b in zip(src_layers, tgt_layers):
        kl = _gaussian_kernel(a, b)
        k = kl if k is None else k * kl
    return _mmd_from_kernel(k, tf.shape(src_layers[0])[0])


def attention_alignment_loss(families, criterion="l2"):
    """Eq. 5: L_AT summed over pair families and layers, as a *sum over pairs* (not divided by anything).

    families: a list of (src_maps, tgt_maps), each a list over layers of normalised maps [n, D_l] where row i
    of src_maps is paired with row i of tgt_maps. For l2/l1 this is sum_l sum_i ||.||; for mmd/jmmd, each
    family contributes n * MMD^2 (so every criterion scales with the number of pairs like Eq. 5 does).
    """
    if criterion not in CRITERIA:
        raise UserError(f"--attention_criterion: expected one of {CRITERIA}, got {criterion!r}")
    total = tf.constant(0.0)
    for src, tgt in families:
        n = tf.cast(tf.shape(src[0])[0], tf.float32)
        if criterion in ("l2", "l1"):
            for a, b in zip(src, tgt):
                total += tf.reduce_sum(pair_distance(a, b, criterion))
        elif criterion == "mmd":
            for a, b in zip(src, tgt):
                total += n * mmd(a, b)
        else:
            total += n * jmmd(src, tgt)
    return total
