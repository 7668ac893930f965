"""M_post and its asynchronous update (Eq. 11, paper section 3.3 A-C; docs/design.md, "Eq. 11: M_post").

``PosteriorSync`` is the one place of the rule: the period N, the copy theta_post <- theta, the switch-on of
L_EM at the first copy and the restart of the learning-rate schedule.
"""

import keras
import tensorflow as tf

from daaa_tf import UserError


class PosteriorSync(keras.callbacks.Callback):
    """Copies the target network into M_post every ``sync_every`` updates and restarts the LR schedule.

    Works on a ``daaa_tf.method.daaa.DAAA`` model (``target``, ``posterior``, ``em_active``, ``schedule``).
    Rule (Eq. 11): once update t with t % N == 0 is done, theta_post <- theta_t, so updates t+1 .. t+N use
    theta_post = theta_{floor(t/N)*N}. The first copy switches L_EM on (before it the paper's p_t = 1 keeps
    every target sample out); every copy restarts the LR schedule at step t unless ``restart_lr`` is False
    (EM-C).

    No host round trip per step: the update count t is read from ``optimizer.iterations`` once at train begin
    (so a resumed run continues its count) and then counted in Python; the copy is one ``tf.function`` that
    assigns every target variable (trainable or not) into M_post's on the device. The copy runs at the *start*
    of update t+1 (``on_train_batch_begin``, whose logs are empty, so Keras converts nothing to host), and at
    the end of an epoch or of training when due, so a backup and the final state are never behind.
    Requires ``steps_per_execution == 1`` (one batch callback per update).

    Observable record: the step of every copy is written as the TensorBoard scalar ``posterior/sync`` (under
    ``log_dir``), and each epoch's logs get ``posterior_step``, the update whose weights M_post holds.
    """

    def __init__(self, sync_every, restart_lr=True, log_dir=None):
        super().__init__()
        if sync_every < 1:
            raise UserError(f"--sync_every must be >= 1, got {sync_every}")
        self.sync_every = int(sync_every)
        self.restart_lr = bool(restart_lr)
        self.log_dir = log_dir
        self._writer = None
        self._copy = None
        self.step = 0  # updates done (Python count, from optimizer.iterations at train begin)
        self.synced_step = None  # the update M_post was last copied from in this run

    @staticmethod
    def sync_steps(sync_every, total_steps):
        """The updates after which a run of ``total_steps`` updates copies the target net into M_post."""
        return list(range(int(sync_every), int(total_steps) + 1, int(sync_every)))

    def on_train_begin(self, logs=None):
        model = self.model
        if getattr(model, "steps_per_execution", 1) not in (1, None):
            raise ValueError("PosteriorSync counts updates per batch callback: compile with steps_per_execution=1")
        if self.log_dir and self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        self.step = int(model.optimizer.iterations.numpy())  # the one host read (a resumed run continues)
        self.synced_step = None
        self._copy = _make_copy(model, self.restart_lr)

    def on_train_batch_begin(self, batch, logs=None):
        self._sync_if_due()
        self.step += 1  # this batch is update self.step

    def on_epoch_end(self, epoch, logs=None):
        self._sync_if_due()
        if logs is not None:
            logs["posterior_step"] = float((self.step // self.sync_every) * self.sync_every)

    def on_train_end(self, logs=None):
        self._sync_if_due()

    def _sync_if_due(self):
        t = self.step
        if t == 0 or t % self.sync_every or self.synced_step == t:
            return
        self._copy(tf.constant(t, tf.int64))
        self.synced_step = t
        if self._writer is not None:
            with self._writer.as_default(step=t):
                tf.summary.scalar("posterior/sync", 1.0)
                tf.summary.scalar("posterior/lr_after_sync", self.model.current_learning_rate())


def _make_copy(model, restart_lr):
    """A tf.function(step): theta_post <- theta (every variable), L_EM on, LR schedule restarted at ``step``."""
    pairs = list(zip(model.posterior.weights, model.target.weights))
    if len(model.posterior.weights) != len(model.target.weights) or any(
            tuple(p.shape) != tuple(t.shape) for p, t in pairs):
        raise ValueError("M_post and the target network must have the same architecture")
    schedule = model.schedule if restart_lr else None

    @tf.function
    def copy(step):
        for post, target in pairs:
            post.assign(target.value)
        model.em_active.assign(1.0)
        if schedule is not None:
            schedule.restart(step)

    return copy
