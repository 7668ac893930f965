"""M_post and its asynchronous update (Eq. 11, section 3.3 A-C)."""

import keras
import tensorflow as tf


def sync_posterior(posterior, target):
    """Eq. 11: theta_post <- theta (an exact copy of every weight of the target network)."""
    posterior.set_weights(target.get_weights())


class PosteriorSync(keras.callbacks.Callback):
    """Copies the target network into M_post every ``sync_every`` updates and restarts the LR schedule.

    After update t (``optimizer.iterations == t``) with t % N == 0 the copy gives theta_post = theta_t, so the
    next N updates use theta_post = theta_{floor(t/N)*N} (Eq. 11). The first sync switches L_EM on (before
    it the paper's p_t = 1 keeps every target sample out); every sync restarts the LR schedule unless
    ``restart_lr`` is False (EM-C). Works on a ``daaa_tf.adaptation.DAAA`` model.
    """

    def __init__(self, sync_every, restart_lr=True, log_dir=None):
        super().__init__()
        if sync_every < 1:
            raise ValueError(f"--sync_every must be >= 1, got {sync_every}")
        self.sync_every = int(sync_every)
        self.restart_lr = bool(restart_lr)
        self.log_dir = log_dir
        self._writer = None
        self.syncs = []

    def on_train_begin(self, logs=None):
        if self.log_dir:
            self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.sync_every:
            return
        self.model.sync_posterior(restart_lr=self.restart_lr, step=step)
        self.syncs.append(step)
        if self._writer is not None:
            with self._writer.as_default(step=step):
                tf.summary.scalar("posterior/sync", 1.0)
                tf.summary.scalar("posterior/lr_after_sync", float(self.model.current_learning_rate()))
