"""Resumable runs: everything a run needs to continue exactly, saved at every epoch end (tf.train.Checkpoint)."""

import os

import keras
import tensorflow as tf

from daaa_tf import io


class Backup(keras.callbacks.Callback):
    """Saves ``objects`` (a dict of trackables: models, optimizer, variables) into ``directory`` each epoch.

    ``restore()`` loads the newest backup, if any, and returns the number of completed epochs (0 when fresh);
    ``history`` then holds the per-epoch logs of those epochs (saved beside the checkpoint as history.json).
    A backup is written only when the epoch's loss is finite, so a run that diverges keeps its last good state.
    The optimizer's variables must exist before ``restore()`` (call ``optimizer.build(variables)``).
    """

    def __init__(self, directory, objects, max_to_keep=2):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
        self.checkpoint = tf.train.Checkpoint(epoch=self.epoch, **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)
        self.history_path = os.path.join(directory, "history.json")
        self.history = {}

    def restore(self):
        latest = self.manager.latest_checkpoint
        if latest is None:
            return 0
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        done = int(self.epoch.numpy())
        saved = io.read_json(self.history_path, {})
        self.history = {k: v[:done] for k, v in saved.items()}
        return done

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not tf.math.is_finite(float(loss)):
            return
        self.epoch.assign(epoch + 1)
        for k, v in (logs or {}).items():
            self.history[k] = self.history.get(k, [])[:epoch] + [float(v)]
        self.manager.save(checkpoint_number=epoch + 1)
        io.write_json(self.history_path, self.history)

    @staticmethod
    def exists(directory):
        return tf.train.latest_checkpoint(directory) is not None if os.path.isdir(directory) else False
