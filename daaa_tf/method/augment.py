"""Colour augmentation of the target network's inputs (opt-in, beyond the paper: ``--augment_streams``).

``colour_augment`` changes only colours (and greys out a square with ``--augment_cutout``), never positions, so
every attention pair of Eq. 5 stays aligned pixel for pixel; only ``--augment_shift`` moves pixels, which is why
it is refused while L_AT is on. Applied to the real targets x_t while M_post still sees the clean x_t, it makes L_EM
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


def colour_augment(images, seed, cutout=0.0, shift=0):
    """uint8 (or float 0..255) [N, H, W, 3] -> float32 [N, H, W, 3] in 0..255, colours changed per image.

    Per image, independently: when ``shift`` > 0, first a translation by up to ``shift`` pixels along each axis
    (``shift_images``; the only draw that moves pixels); a random channel permutation; inversion (255 - x) with
    probability 1/2; contrast scaled around the image mean by U(0.5, 1.5); brightness shifted by U(-0.15, 0.15) *
    255; then, when ``cutout`` > 0, one square of side round(cutout * H) centred on a uniform pixel (clipped at the
    border) set to grey 127.5 (``cutout_mask``). ``seed``: int32 [2] for the stateless draws.
    """
    x = tf.cast(images, tf.float32)
    n = tf.shape(x)[0]
    # six draws; the first five are those of the split into five that runs made before the shift existed
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)
    if shift > 0:
        x = shift_images(x, shift, seeds[5])
    perm = tf.gather(tf.constant(_PERMUTATIONS, tf.int32), tf.random.stateless_uniform([n], seeds[0], 0, 6, tf.int32))
    x = tf.gather(x, perm, axis=3, batch_dims=1)
    invert = tf.cast(tf.random.stateless_uniform([n, 1, 1, 1], seeds[1]) < 0.5, tf.float32)
    x = invert * (255.0 - x) + (1.0 - invert) * x
    contrast = tf.random.stateless_uniform([n, 1, 1, 1], seeds[2], 0.5, 1.5)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * contrast + mean
    x = x + tf.random.stateless_uniform([n, 1, 1, 1], seeds[3], -0.15, 0.15) * 255.0
    x = tf.clip_by_value(x, 0.0, 255.0)
    if cutout > 0:
        keep = cutout_mask(tf.shape(x), cutout, seeds[4])
        x = keep * x + (1.0 - keep) * 127.5
    return x


def shift_images(x, max_shift, seed):
    """[N, H, W, C] -> the same images, each translated by (dy, dx), two independent uniform integers in
    [-max_shift, max_shift]; pixels shifted in from outside repeat the nearest border pixel."""
    n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    d = tf.random.stateless_uniform([n, 2], seed, -max_shift, max_shift + 1, tf.int32)
    rows = tf.clip_by_value(tf.range(h)[None, :] - d[:, :1], 0, h - 1)  # output row r reads input row r - dy
    cols = tf.clip_by_value(tf.range(w)[None, :] - d[:, 1:], 0, w - 1)
    x = tf.gather(x, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def cutout_mask(shape, fraction, seed):
    """float32 [N, H, W, 1]: 0 inside one square per image (side round(fraction * H), centre uniform over the
    pixels, clipped at the border), 1 elsewhere."""
    n, h, w = shape[0], shape[1], shape[2]
    side = tf.cast(tf.round(fraction * tf.cast(h, tf.float32)), tf.int32)
    size = tf.cast(tf.stack([h, w]), tf.float32)
    centre = tf.minimum(tf.cast(tf.random.stateless_uniform([n, 2], seed) * size, tf.int32), tf.stack([h, w]) - 1)
    lo = centre - side // 2
    rows = tf.range(h)[None, :] - lo[:, :1]  # [N, H]: row index relative to the square's top edge
    cols = tf.range(w)[None, :] - lo[:, 1:]
    inside_r = tf.cast((rows >= 0) & (rows < side), tf.float32)
    inside_c = tf.cast((cols >= 0) & (cols < side), tf.float32)
    return (1.0 - inside_r[:, :, None] * inside_c[:, None, :])[..., None]


def step_seed(base_seed, step):
    """The stateless seed of one step on this replica: (base_seed, step * 1024 + replica id)."""
    ctx = tf.distribute.get_replica_context()
    replica = ctx.replica_id_in_sync_group if ctx is not None else 0
    replica = tf.cast(replica, tf.int64)
    return tf.stack([tf.cast(base_seed, tf.int64), tf.cast(step, tf.int64) * 1024 + replica])
