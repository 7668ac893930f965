"""Colour augmentation of the target network's inputs (opt-in, beyond the paper: ``--augment_streams``).

``colour_augment`` changes only colours, never positions, so every attention pair of Eq. 5 stays aligned
pixel for pixel. Applied to the real targets x_t while M_post still sees the clean x_t, it makes L_EM
(Eq. 12) a consistency loss: the posterior of the clean (weak) view is the soft label of the augmented
(strong) view, as in FixMatch / DIRT-T-style target consistency. Applied to x_s or x~t it augments the
labelled streams.

Randomness is stateless, drawn from (seed, step, replica), so a resumed run sees the same augmentations
as an uninterrupted one and each replica draws its own.
"""

import tensorflow as tf

# A Python list, not a tensor: creating a tensor at import would initialise TF before a MultiWorkerMirroredStrategy
# can configure its collectives ("Collective ops must be configured at program startup").
_PERMUTATIONS = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]


def colour_augment(images, seed):
    """uint8 (or float 0..255) [N, H, W, 3] -> float32 [N, H, W, 3] in 0..255, colours changed per image.

    Per image, independently: a random channel permutation; inversion (255 - x) with probability 1/2;
    contrast scaled around the image mean by U(0.5, 1.5); brightness shifted by U(-0.15, 0.15) * 255.
    ``seed``: int32 [2] for the stateless draws.
    """
    x = tf.cast(images, tf.float32)
    n = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    perm = tf.gather(tf.constant(_PERMUTATIONS, tf.int32), tf.random.stateless_uniform([n], seeds[0], 0, 6, tf.int32))
    x = tf.gather(x, perm, axis=3, batch_dims=1)
    invert = tf.cast(tf.random.stateless_uniform([n, 1, 1, 1], seeds[1]) < 0.5, tf.float32)
    x = invert * (255.0 - x) + (1.0 - invert) * x
    contrast = tf.random.stateless_uniform([n, 1, 1, 1], seeds[2], 0.5, 1.5)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * contrast + mean
    x = x + tf.random.stateless_uniform([n, 1, 1, 1], seeds[3], -0.15, 0.15) * 255.0
    return tf.clip_by_value(x, 0.0, 255.0)


def step_seed(base_seed, step):
    """The stateless seed of one step on this replica: (base_seed, step * 1024 + replica id)."""
    ctx = tf.distribute.get_replica_context()
    replica = ctx.replica_id_in_sync_group if ctx is not None else 0
    replica = tf.cast(replica, tf.int64)
    return tf.stack([tf.cast(base_seed, tf.int64), tf.cast(step, tf.int64) * 1024 + replica])
