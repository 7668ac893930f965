"""The restartable annealing learning-rate schedule (section 3.3 C; the JAN/RevGrad annealing)."""

import keras
import tensorflow as tf

from daaa_tf import UserError


class RestartableAnnealing(keras.optimizers.schedules.LearningRateSchedule):
    """eta = eta0 * (1 + alpha * p)^(-power), p = min(1, (step - offset) / cycle_steps).

    ``restart(step)`` sets ``offset = step``: the schedule starts again from eta0 at that step. The
    posterior-sync callback calls it after every M_post update (variant C of section 3.3); without restarts
    (``--restart_lr=false``, EM-C) ``cycle_steps`` is the whole run.
    """

    def __init__(self, initial_learning_rate, cycle_steps, alpha=10.0, power=0.75):
        if cycle_steps < 1:
            raise ValueError(f"cycle_steps must be >= 1, got {cycle_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.cycle_steps = int(cycle_steps)
        self.alpha = float(alpha)
        self.power = float(power)
        self.offset = tf.Variable(0, dtype=tf.int64, trainable=False, name="lr_offset")

    def __call__(self, step):
        step = tf.cast(step, tf.int64)
        p = tf.cast(step - self.offset, tf.float32) / float(self.cycle_steps)
        p = tf.clip_by_value(p, 0.0, 1.0)
        return self.initial_learning_rate * tf.pow(1.0 + self.alpha * p, -self.power)

    def restart(self, step):
        self.offset.assign(tf.cast(step, tf.int64))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "cycle_steps": self.cycle_steps,
                "alpha": self.alpha, "power": self.power}


def make_optimizer(name, learning_rate, momentum=0.9):
    """adam (the paper's digits setting) or sgd with momentum (the JAN protocol for Office-31)."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    raise UserError(f"--optimizer: expected adam or sgd, got {name!r}")
