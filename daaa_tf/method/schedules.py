"""Learning-rate schedules: the restartable annealing of the target network (section 3.3 C; the JAN/RevGrad
annealing), and the CycleGAN's constant-then-linear decay (the paper is silent; the CycleGAN paper's)."""

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


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """eta = eta0 for the first ``start`` steps, then falling linearly to 0 at step ``total``:
    eta0 * clip(1 - (step - start) / (total - start), 0, 1) (the CycleGAN paper: constant for half its epochs,
    then linear to 0). ``start`` >= ``total`` is the constant eta0."""

    def __init__(self, initial_learning_rate, total, start):
        if start < 0 or total < 1:
            raise ValueError(f"expected 0 <= start and 1 <= total, got start={start}, total={total}")
        self.initial_learning_rate, self.total, self.start = float(initial_learning_rate), int(total), int(start)

    def __call__(self, step):
        if self.start >= self.total:
            return tf.constant(self.initial_learning_rate, tf.float32)
        done = tf.cast(tf.cast(step, tf.int64) - self.start, tf.float32) / float(self.total - self.start)
        return self.initial_learning_rate * tf.clip_by_value(1.0 - done, 0.0, 1.0)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "total": self.total, "start": self.start}


def cyclegan_lr(lr, steps, decay):
    """The CycleGAN's learning rate: ``lr`` constant (``decay`` = 1), or constant for the first ``decay``
    fraction of ``steps`` and then linear to 0 at the last step (``--cyclegan_lr_decay``)."""
    return lr if decay >= 1 else LinearDecay(lr, steps, int(decay * steps))


def make_optimizer(name, learning_rate, momentum=0.9):
    """adam (the paper's digits setting) or sgd with momentum (the JAN protocol for Office-31)."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    raise UserError(f"--optimizer: expected adam or sgd, got {name!r}")
