"""The ``Domain`` object every reader returns, and the helpers the readers share.

A domain is one split of one image source: uint8 RGB images of a fixed square size with int32 labels. Digit
domains are small and held in memory (``images``/``labels`` numpy arrays); Office-31 is held as file paths
and decoded inside ``tf.data``.
"""

import hashlib
import os

import numpy as np
import tensorflow as tf
from absl import logging

from daaa_tf import MissingFileError, UserError
from daaa_tf.io import atomic_path

SPLITS = ("train", "test")
ROLES = ("source", "target")


class Domain:
    """One split of one image domain.

    Attributes:
      name: the canonical spec (e.g. ``"demo:mnist_m"``, ``"mnist:/abs/dir"``).
      split: ``"train"`` or ``"test"``.
      image_size: side of the square RGB images ``dataset()`` yields.
      num_examples, num_classes, class_names: sizes and the label names (index = label).
      skipped: how many unreadable files were left out; ``skipped_files`` names them.
      images, labels: numpy arrays when the domain is held in memory (``images`` is None otherwise).
      paths: numpy array of file paths when images are decoded in ``tf.data`` (else None).
      info: reader-specific extras (e.g. the demo's photo and digit provenance per example).
    """

    def __init__(self, name, split, class_names, image_size, *, images=None, labels=None, paths=None,
                 make_dataset=None, num_examples=None, skipped_files=(), info=None):
        self.name = name
        self.split = split
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.image_size = int(image_size)
        self.images = images
        self.labels = None if labels is None else np.asarray(labels, np.int32)
        self.paths = paths
        self._make_dataset = make_dataset
        if num_examples is None:
            num_examples = len(self.labels)
        self.num_examples = int(num_examples)
        self.skipped_files = list(skipped_files)
        self.skipped = len(self.skipped_files)
        self.info = dict(info or {})

    def dataset(self):
        """Unbatched ``tf.data.Dataset`` of ``(uint8 [S, S, 3], int32 label)`` in a fixed order."""
        if self._make_dataset is not None:
            return self._make_dataset()
        if self.images is not None:
            return tf.data.Dataset.from_tensor_slices((self.images, self.labels))
        size = self.image_size
        ds = tf.data.Dataset.from_tensor_slices((self.paths, self.labels))
        return ds.map(lambda p, y: (decode_file(p, size), y), num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)

    def __repr__(self):
        return (f"Domain({self.name!r}, split={self.split!r}, num_examples={self.num_examples}, "
                f"num_classes={self.num_classes}, image_size={self.image_size}, skipped={self.skipped})")


def cache_root(cache_dir=None):
    """``cache_dir``, else ``$DAAA_TF_CACHE``, else ``~/.cache/daaa_tf``."""
    path = cache_dir or os.environ.get("DAAA_TF_CACHE") or os.path.join("~", ".cache", "daaa_tf")
    return os.path.abspath(os.path.expanduser(path))


def fingerprint(*parts):
    """A short stable hex digest of ``parts`` (used to name cache files)."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def save_npz(path, **arrays):
    """Writes an uncompressed .npz atomically (a crash never leaves a half-written cache file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path):
    """Loads every array of an .npz into memory; None if it is missing or unreadable (then rebuilt)."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        logging.warning("ignoring unreadable cache file %s (%s); rebuilding it", path, e)
        return None


def try_save_npz(path, **arrays):
    """``save_npz``, but a cache that cannot be written is only a warning."""
    try:
        save_npz(path, **arrays)
    except OSError as e:
        logging.warning("could not write the cache file %s (%s); continuing without it", path, e)


def to_rgb(images):
    """[N, H, W] or [N, H, W, 1|3|4] -> [N, H, W, 3] (grey replicated, alpha dropped)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    if images.shape[-1] == 4:
        return images[..., :3]
    return images


def resize_uint8(images, size, chunk=8192):
    """Bilinear resize (antialiased when shrinking) of [N, H, W, C] images to [N, size, size, C] uint8.

    Rounded and clipped to 0..255. Runs on the CPU so a rebuilt cache is bit-identical on any machine.
    """
    images = np.asarray(images)
    n, h, w, c = images.shape
    if (h, w) == (size, size):
        return np.clip(np.round(images), 0, 255).astype(np.uint8) if images.dtype != np.uint8 else images
    out = np.empty((n, size, size, c), np.uint8)
    with tf.device("/CPU:0"):
        for i in range(0, n, chunk):
            x = tf.image.resize(tf.constant(images[i:i + chunk], tf.float32), [size, size],
                                method="bilinear", antialias=True)
            out[i:i + chunk] = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8).numpy()
    return out


def decode_file(path, size):
    """tf.data map function: file path -> uint8 [size, size, 3] (grey replicated, alpha dropped).

    Any format ``tf.io.decode_image`` reads (JPEG, PNG, BMP, GIF's first frame); bilinear resize
    (antialiased when shrinking), skipped when the image already has the size.
    """
    img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)

    def resize():
        x = tf.image.resize(img, [size, size], method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)

    same = tf.logical_and(tf.equal(tf.shape(img)[0], size), tf.equal(tf.shape(img)[1], size))
    img = tf.cond(same, lambda: img, resize)
    img.set_shape([size, size, 3])
    return img


def decode_files(paths, size, batch=1024):
    """Decodes every file in parallel with ``decode_file``; unreadable files are left out.

    Returns (uint8 [M, size, size, 3], int64 [M] indices into ``paths`` of the files that decoded).
    """
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths), dtype=np.int64), np.asarray(paths)))
    ds = ds.map(lambda i, p: (i, decode_file(p, size)), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True).ignore_errors().batch(batch)
    kept, images = [np.zeros([0], np.int64)], [np.zeros([0, size, size, 3], np.uint8)]
    for i, x in ds.as_numpy_iterator():
        kept.append(i)
        images.append(x)
    return np.concatenate(images), np.concatenate(kept)


def check_split(spec, split):
    if split not in SPLITS:
        raise UserError(f"{spec}: split must be one of {SPLITS}, got {split!r}")


def require_dir(path, what):
    """FileNotFoundError naming ``path`` unless it is a directory."""
    if not os.path.isdir(path):
        raise MissingFileError(f"{what}: directory {path} does not exist")
