"""Callbacks shared by the stages: per-step scalars, a NaN guard, attention grids (Fig. 5), exact-resume backups.

None of them reads the device every update: the periodic ones count updates in Python from one read of
``optimizer.iterations`` at train begin and look at the metrics only every ``every`` updates and at epoch end
(docs/design.md, "Resume contract" and "Host synchronisation").
"""

import gc
import glob
import math
import os

import keras
import numpy as np
import tensorflow as tf

from daaa_tf import StageError, UserError, io, workers
from daaa_tf.method.attention import attention_map
from daaa_tf.models import preprocess


class Periodic(keras.callbacks.Callback):
    """Calls ``on_period(step, logs, epoch_end)`` after every ``every``-th update and at every epoch end.

    ``step`` is the number of updates done (read once from ``optimizer.iterations`` at train begin, so a resumed
    run continues its count, then counted in Python). Mid-epoch, the call happens at the start of the next
    update (``on_train_batch_begin``, no logs to convert) with the running metrics of the model, which have
    not changed since the update ended; at epoch end it gets the epoch's training logs. Requires
    ``steps_per_execution == 1``.
    """

    def __init__(self, every=10):
        super().__init__()
        if int(every) < 1:
            raise UserError(f"--log_every must be >= 1, got {every}")
        self.every = int(every)
        self.step = 0

    def on_train_begin(self, logs=None):
        self.step = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_begin(self, batch, logs=None):
        if batch > 0 and self.step % self.every == 0:  # batch 0: the last update was reported at epoch end
            self.on_period(self.step, self.model.get_metrics_result(), epoch_end=False)
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        train_logs = {k: v for k, v in (logs or {}).items() if not k.startswith("val_")}
        self.on_period(self.step, train_logs, epoch_end=True)

    def on_period(self, step, logs, epoch_end):
        raise NotImplementedError


class StepScalars(Periodic):
    """Writes the learning rate and the running losses to TensorBoard every ``every`` updates."""

    def __init__(self, log_dir, every=10):
        super().__init__(every)
        self.log_dir = log_dir
        self._writer = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._writer = self._writer or tf.summary.create_file_writer(self.log_dir)

    def on_period(self, step, logs, epoch_end):
        if step % self.every:
            return
        with self._writer.as_default(step=step):
            tf.summary.scalar("step/lr", self.model.current_learning_rate())
            for k, v in logs.items():
                tf.summary.scalar(f"step/{k}", v)


class NaNGuard(Periodic):
    """Stops training once the running loss is non-finite (checked every ``every`` updates and at epoch end).

    The running mean of an epoch stays non-finite from the first bad update on, so the check catches it at the
    next check point; ``bad_step`` is that update count (the first bad update lies after ``last_good_step``).
    The backup of the epoch is not written (``Backup`` skips non-finite epochs), so the last good one is kept.
    """

    def __init__(self, every=10):
        super().__init__(every)
        self.bad_step, self.last_good_step = None, 0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.last_good_step = self.step  # a resumed run starts from a finite backup

    def on_period(self, step, logs, epoch_end):
        loss = logs.get("loss")
        if loss is None or self.bad_step is not None:
            return
        if math.isfinite(float(loss)):
            self.last_good_step = step
        else:
            self.bad_step = step
            self.model.stop_training = True


def attention_grid(images, source, target, arch):
    """[rows of: image | source-net maps | target-net maps] as one float image [1, H', W', 3] in [0, 1].

    Each map is the normalised Eq. 4 attention of one tap, resized to the image size and scaled to [0, 1].
    """
    x = preprocess(images, arch)
    size = images.shape[1:3]
    maps = {name: [tf.reshape(attention_map(f), tf.shape(f)[:3]) for f in net(x, training=False)["taps"]]
            for name, net in (("source", source), ("target", target))}
    rows = []
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


def restore_newest_good(checkpoint, manager, log=print, hint=""):
    """Restores the newest checkpoint of ``manager`` that loads (a truncated or changed newest one falls back to
    the previous one, said in one line); returns its path, or None when there is none. None that loads: a
    StageError naming the directory (and ``hint``)."""
    candidates = list(reversed(manager.checkpoints))  # newest first; the manager keeps the last max_to_keep
    if not candidates:  # no state file, or one TF could not parse (it then ignores every checkpoint silently)
        numbered = glob.glob(os.path.join(manager.directory, "*-*.index"))
        numbered = [p[:-len(".index")] for p in numbered if p[:-len(".index")].rsplit("-", 1)[1].isdigit()]
        candidates = sorted(numbered, key=lambda p: int(p.rsplit("-", 1)[1]), reverse=True)
        if candidates:
            log(f"warning: {manager.directory}: the checkpoint state file is missing or unreadable; restoring from "
                f"the checkpoint files themselves (newest: {os.path.basename(candidates[0])})")
    failures = []
    for path in candidates:
        if _restores(checkpoint, path, failures):
            if failures:
                log(f"warning: checkpoint {failures[0][0]} in {manager.directory} is damaged ({failures[0][1]}); "
                    f"resuming from the previous good one, {os.path.basename(path)}")
            return path
    if failures:
        raise StageError(f"{manager.directory}: no checkpoint can be restored ({', '.join(n for n, _ in failures)}: "
                         f"{failures[0][1]}); "
                         f"{hint + '; or ' if hint else ''}delete that folder to start the stage afresh (--overwrite "
                         "moves aside only a run with other settings), or use another --run_dir")
    return None


def _restores(checkpoint, path, failures):
    """Restores ``path`` into ``checkpoint``; False (and (name, reason) appended to ``failures``) when it cannot.
    TF's warnings about the half-restored attempt (logged when it is garbage-collected) are silenced."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
        return True
    except (tf.errors.OpError, ValueError, IndexError, KeyError, AssertionError, OSError) as e:
        first = str(e).splitlines()[0][:200] if str(e) else ""
        failures.append((os.path.basename(path), f"{type(e).__name__}: {first}"))
        return False
    finally:
        gc.collect()
        logger.setLevel(level)


class Backup(keras.callbacks.Callback):
    """Saves ``objects`` (a dict of trackables: models, optimizer, variables) into ``directory`` each epoch.

    The resume contract (docs/design.md, "Resume contract"): ``restore()`` loads the newest backup, if any, and
    returns the number of completed epochs (0 when fresh); ``history`` then holds the per-epoch logs of those
    epochs (saved beside the checkpoint as history.json). A backup is written only when the epoch's loss is
    finite, so a run that diverges keeps its last good state. The optimizer's variables must exist before
    ``restore()`` (call ``optimizer.build(variables)``).

    Under a multi-worker ``strategy`` every worker saves (a save may all-reduce on-read variables) but only the
    chief into ``directory``; the others save into a private temporary directory and remove it, and all restore
    from ``directory`` (docs/design.md, "Multi-worker").
    """

    def __init__(self, directory, objects, max_to_keep=2, strategy=None):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
        self.checkpoint = tf.train.Checkpoint(epoch=self.epoch, **objects)
        self.directory, self.max_to_keep = directory, max_to_keep
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = workers.is_chief(self.strategy)
        # Every worker reads (restores) through the chief's manager; only the chief saves through it.
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)
        self.history_path = os.path.join(directory, "history.json")
        self.history = {}

    def restore(self):
        if restore_newest_good(self.checkpoint, self.manager) is None:
            return 0
        done = int(self.epoch.numpy())
        saved = io.read_json(self.history_path, {})
        self.history = {k: v[:done] for k, v in saved.items()}
        return done

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        self.epoch.assign(epoch + 1)
        for k, v in (logs or {}).items():
            self.history[k] = self.history.get(k, [])[:epoch] + [float(v)]
        if self.chief:
            self.manager.save(checkpoint_number=epoch + 1)
            io.write_json(self.history_path, self.history)
            return
        scratch = workers.private_dir(self.directory, self.strategy)
        tf.train.CheckpointManager(self.checkpoint, scratch, max_to_keep=1).save(checkpoint_number=epoch + 1)
        workers.release(scratch, self.strategy)

    @staticmethod
    def exists(directory):
        return tf.train.latest_checkpoint(directory) is not None if io.gfile.isdir(directory) else False
