"""The per-stage ``tf.data`` pipelines (docs/design.md, "Batch layout and pairing").

source stage: ``batched``, ``epoch_batches``; CycleGAN stage: ``conform_domain``/``conform_images`` (size policy),
``training_pairs``, ``first_images``; RevGrad: ``batch_counts``, ``revgrad_dataset``; export: ``take_examples``.
The adaptation stage's four-stream mixing lives in ``daaa_tf.data.mixing``.
"""

import numpy as np
import tensorflow as tf

from daaa_tf import UserError
from daaa_tf.models import preprocess
from daaa_tf.models.gan_nets import to_float

SIZE_POLICIES = ("resize", "error")

# ------------------------------------------------------------------------------------------- source stage


def batched(domain, arch, batch_size):
    """(uint8, label) domain -> batched (preprocessed float image, label) tf.data pipeline, in order (evaluation;
    training batches: ``epoch_batches``)."""
    ds = domain.dataset().batch(batch_size)
    ds = ds.map(lambda x, y: (preprocess(x, arch), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def epoch_batches(domain, arch, batch_size, seed, first_epoch, epochs):
    """Training batches of epochs ``first_epoch`` .. ``epochs - 1``, ``num_examples // batch_size`` per epoch.

    Epoch e is the domain shuffled with the seed ``(seed, e)`` alone (a shuffle re-created per epoch), so a run
    resumed at epoch e sees exactly the batches the uninterrupted run saw from epoch e on (docs/design.md,
    "Resume contract"); nothing before ``first_epoch`` is read or decoded.
    """
    base, buffer = domain.dataset(), min(max(domain.num_examples, 1), 20000)
    steps = domain.num_examples // batch_size
    # One dataset per epoch with a Python int seed (a tensor seed inside flat_map fails in tf.random's
    # get_seed when the global seed is 0), read one after the other by a flat choose_from_datasets.
    per_epoch = [base.shuffle(buffer, seed=seed * 1_000_003 + e, reshuffle_each_iteration=False)
                 .batch(batch_size, drop_remainder=True) for e in range(first_epoch, epochs)]
    if not per_epoch:
        return base.batch(batch_size).take(0)
    order = tf.data.Dataset.range(len(per_epoch)).flat_map(lambda k: tf.data.Dataset.from_tensors(k).repeat(steps))
    ds = tf.data.Dataset.choose_from_datasets(per_epoch, order)
    ds = ds.map(lambda x, y: (preprocess(x, arch), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------------------- CycleGAN stage


def conform_images(dataset, image_size, on_mismatch="resize", name="--source"):
    """Makes a dataset of (image, label) yield uint8 [S, S, 3]; resizes/converts or raises (``on_mismatch``)."""
    if on_mismatch not in SIZE_POLICIES:
        raise UserError(f"--on_size_mismatch: expected one of {SIZE_POLICIES}, got {on_mismatch!r}")
    spec = dataset.element_spec[0]
    shape = spec.shape
    if not shape.is_fully_defined():
        shape = next(iter(dataset.take(1)))[0].shape
    want = (image_size, image_size, 3)
    if tuple(shape) == want and spec.dtype == tf.uint8:
        return dataset.map(lambda x, y: (tf.ensure_shape(x, want), y))
    if on_mismatch == "error":
        raise UserError(f"{name}: images are {'x'.join(map(str, shape))} {spec.dtype.name}, the CycleGAN needs "
                        f"{image_size}x{image_size}x3 uint8 (--image_size); pass --on_size_mismatch=resize")

    def fix(x, y):
        x = tf.convert_to_tensor(x)
        if x.dtype != tf.uint8:
            x = tf.cast(tf.clip_by_value(tf.round(tf.cast(x, tf.float32)), 0, 255), tf.uint8)
        x = x[..., :3] if x.shape[-1] and x.shape[-1] >= 3 else tf.image.grayscale_to_rgb(x[..., :1])
        x = tf.image.resize(x, (image_size, image_size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8), y

    return dataset.map(fix, num_parallel_calls=tf.data.AUTOTUNE)


class _Conformed:
    def __init__(self, domain, image_size, on_mismatch, name):
        self.domain, self.num_examples = domain, domain.num_examples
        self._args = (image_size, on_mismatch, name)
        self.dataset()  # fails now (one line) rather than inside training

    def dataset(self):
        return conform_images(self.domain.dataset(), *self._args)


def conform_domain(domain, image_size, on_mismatch="resize", name="--source"):
    """A view of ``domain`` whose ``.dataset()`` yields uint8 [S, S, 3] (see ``conform_images``)."""
    return _Conformed(domain, image_size, on_mismatch, name)


def training_pairs(source, target, batch_size, seed=0, skip_steps=0):
    """Unpaired batches ``(x_s, x_t)`` in [-1, 1], reshuffled every pass, deterministic given ``seed``.

    ``source``/``target``: (unbatched (uint8 image, label) dataset, number of examples). ``skip_steps``
    fast-forwards a resumed run to where the checkpointed one stopped. Resets TF's global seed to ``seed``
    (tf.data combines it with the op seeds), so the order does not depend on what ran before.
    """
    tf.random.set_seed(seed)

    def stream(domain, offset):
        ds, n = domain
        if n * int(np.prod(ds.element_spec[0].shape)) < (1 << 30):
            ds = ds.cache()  # decoded uint8 images, no augmentation to freeze
        ds = ds.map(lambda x, y: x).shuffle(min(n, 10000), seed=seed + offset, reshuffle_each_iteration=True)
        return ds.repeat().batch(batch_size, drop_remainder=True)

    ds = tf.data.Dataset.zip((stream(source, 0), stream(target, 7919)))
    if skip_steps:
        ds = ds.skip(skip_steps)
    return ds.map(lambda a, b: (to_float(a), to_float(b)), num_parallel_calls=tf.data.AUTOTUNE) \
        .prefetch(tf.data.AUTOTUNE)


def first_images(dataset, n):
    """The first ``n`` images of an unbatched (image, label) dataset, stacked (the fixed sample-grid inputs)."""
    return np.stack([x.numpy() for x, _ in dataset.take(n)])


# ------------------------------------------------------------------------------------------------ RevGrad


def batch_counts(batch_size, num_replicas=1):
    """{"s": n_s, "t": n_t}: per replica, half of b = B / R source (rounded down), the rest target; the global
    counts are R times those (docs/design.md, "Batch layout and pairing"). B must be a multiple of R with b >= 2."""
    b, r = batch_size // num_replicas, num_replicas
    if batch_size % r or b < 2:
        near = sorted({max(2 * r, batch_size - batch_size % r), batch_size - batch_size % r + r} - {batch_size})
        raise UserError(f"--batch_size={batch_size}: RevGrad needs a multiple of the {r} replica(s) with at least "
                        f"one source and one target image per replica: use --batch_size={' or '.join(map(str, near))}")
    return {"s": r * (b // 2), "t": r * (b - b // 2)}


def revgrad_dataset(source, target, counts, seed=0, skip_batches=0):
    """Infinite deterministic global batches {"xs": uint8, "ys": int32, "xt": uint8} from two ``Domain``s."""
    def stream(domain, n, s):
        ds = domain.dataset().shuffle(min(max(domain.num_examples, 1), 20000), seed=s,
                                      reshuffle_each_iteration=True)
        return ds.repeat().batch(n, drop_remainder=True)

    ds = tf.data.Dataset.zip((stream(source, counts["s"], seed), stream(target, counts["t"], seed + 1)))
    ds = ds.skip(skip_batches)  # a resumed run sees exactly the batches it would have seen
    ds = ds.map(lambda s, t: {"xs": s[0], "ys": tf.cast(s[1], tf.int32), "xt": t[0]},
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------------- export


def take_examples(dataset, limit=0, shuffle_seed=None, buffer=2048):
    """First ``limit`` (0 = all) (uint8 image, label) pairs of an unbatched dataset as numpy arrays.

    With ``shuffle_seed``: ``limit`` examples drawn at random from the first max(``buffer``, ``limit``), by NumPy
    from the seed alone (calibration sets). A tf.data shuffle would combine the seed with TF's global seed, which
    the stages run before in the same process set: the pipeline's int8 model then differed from a standalone
    export of the same model.
    """
    if shuffle_seed is not None:
        images, labels = take_examples(dataset, max(buffer, limit) if limit else 0)
        order = np.random.default_rng(shuffle_seed).permutation(len(images))[:limit or None]
        return images[order], labels[order]
    if limit:
        dataset = dataset.take(limit)
    images, labels = [], []
    for x, y in dataset.batch(256).as_numpy_iterator():
        images.append(np.asarray(x, np.uint8))
        labels.append(np.asarray(y, np.int64))
    if not images:
        raise ValueError("the dataset is empty")
    return np.concatenate(images), np.concatenate(labels)
