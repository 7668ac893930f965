"""The per-stage ``tf.data`` pipelines (docs/design.md, "Batch layout and pairing").

source stage: ``batched``; CycleGAN stage: ``conform_domain``/``conform_images`` (size policy),
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


def batched(domain, arch, batch_size, shuffle=False, seed=0):
    """(uint8, label) domain -> batched (preprocessed float image, label) tf.data pipeline."""
    ds = domain.dataset()
    if shuffle:
        ds = ds.shuffle(min(domain.num_examples, 20000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=shuffle)
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
    """{"s": n_s, "t": n_t}: half source, half target; each >= 1 and a multiple of the number of replicas."""
    n_s = batch_size // 2
    counts = {"s": n_s, "t": batch_size - n_s}
    for k, n in counts.items():
        if n < 1 or n % num_replicas:
            raise UserError(f"--batch_size={batch_size}: RevGrad splits it into {counts['s']} source + "
                            f"{counts['t']} target images; each needs >= 1 and a multiple of the {num_replicas} "
                            f"replica(s) ({k!r} has {n}): use a multiple of {2 * num_replicas}")
    return counts


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

    With ``shuffle_seed`` the examples are drawn through a seeded shuffle buffer (calibration sets).
    """
    if shuffle_seed is not None:
        dataset = dataset.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
    if limit:
        dataset = dataset.take(limit)
    images, labels = [], []
    for x, y in dataset.batch(256).as_numpy_iterator():
        images.append(np.asarray(x, np.uint8))
        labels.append(np.asarray(y, np.int64))
    if not images:
        raise ValueError("the dataset is empty")
    return np.concatenate(images), np.concatenate(labels)
