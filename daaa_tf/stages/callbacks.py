"""Callbacks that show a run: per-step scalars (lr, losses), attention-map grids (Fig. 5), a NaN guard."""

import math

import keras
import numpy as np
import tensorflow as tf

from daaa_tf.method.attention import attention_map
from daaa_tf.models import preprocess


class StepScalars(keras.callbacks.Callback):
    """Writes the learning rate and every step's running losses to TensorBoard every ``every`` steps."""

    def __init__(self, log_dir, every=10):
        super().__init__()
        self.log_dir, self.every = log_dir, int(every)
        self.history = []

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        lr = float(self.model.current_learning_rate())
        self.history.append((step, lr))
        if step % self.every:
            return
        with self._writer.as_default(step=step):
            tf.summary.scalar("step/lr", lr)
            for k, v in (logs or {}).items():
                tf.summary.scalar(f"step/{k}", float(v))


def attention_grid(images, source, target, arch):
    """[rows of: image | source-net maps | target-net maps] as one float image [1, H', W', 3] in [0, 1].

    Each map is the normalised Eq. 4 attention of one tap, resized to the image size and scaled to [0, 1].
    """
    x = preprocess(images, arch)
    size = images.shape[1:3]
    rows = []
    maps = {}
    for name, net in (("source", source), ("target", target)):
        maps[name] = [tf.reshape(attention_map(f), tf.shape(f)[:3]) for f in net(x, training=False)["taps"]]
    for i in range(images.shape[0]):
        tiles = [tf.cast(images[i], tf.float32) / 255.0]
        for name in ("source", "target"):
            for m in maps[name]:
                a = m[i][..., None]
                a = (a - tf.reduce_min(a)) / (tf.reduce_max(a) - tf.reduce_min(a) + 1e-8)
                tiles.append(tf.image.grayscale_to_rgb(tf.image.resize(a, size, method="nearest")))
        rows.append(tf.concat(tiles, axis=1))
    return tf.concat(rows, axis=0)[None]


class AttentionImages(keras.callbacks.Callback):
    """Each epoch: a TensorBoard image of fixed target images with source-net and target-net attention maps."""

    def __init__(self, log_dir, images, arch):
        super().__init__()
        self.log_dir, self.images, self.arch = log_dir, np.asarray(images), arch

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        grid = attention_grid(self.images, self.model.source, self.model.target, self.arch)
        with self._writer.as_default(step=int(self.model.optimizer.iterations.numpy())):
            tf.summary.image("attention/input|source_net_taps|target_net_taps", grid)


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers the step (the last good backup is kept)."""

    def __init__(self):
        super().__init__()
        self.bad_step = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_step = int(self.model.optimizer.iterations.numpy())
            self.model.stop_training = True
