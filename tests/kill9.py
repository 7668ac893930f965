"""Runs a trainer module as ``__main__`` and kills its own process with SIGKILL at a chosen point.

  python tests/kill9.py step=N   trainers.source --run_dir=...   # SIGKILL after the N-th training update
  python tests/kill9.py shard=N  trainers.cyclegan --run_dir=... # SIGKILL after the N-th pair shard is written

A real ``kill -9`` (no cleanup, no ``finally``), delivered at a fixed point instead of after polling for a file, so
the kill lands mid-epoch (or between two shards) however loaded the machine is. Used by tests/test_kill_resume.py.
"""

import os
import runpy
import signal
import sys


def _die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after_updates(n):
    """Every ``keras.Model.fit`` in this process gets a callback that dies after the n-th update of the process."""
    import keras

    class KillAt(keras.callbacks.Callback):
        done = 0

        def on_train_batch_end(self, batch, logs=None):
            KillAt.done += 1
            if KillAt.done >= n:
                _die()

    fit = keras.Model.fit

    def fit_then_die(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=[*(callbacks or []), KillAt()], **kwargs)

    keras.Model.fit = fit_then_die


def kill_after_shards(n):
    """Dies right after the n-th pair shard of this process is renamed into place (before the manifest update)."""
    from daaa_tf.data import pair_writer

    write, count = pair_writer._write_shard, [0]

    def write_then_die(*args, **kwargs):
        entry = write(*args, **kwargs)
        count[0] += 1
        if count[0] >= n:
            _die()
        return entry

    pair_writer._write_shard = write_then_die


if __name__ == "__main__":
    point, module = sys.argv[1], sys.argv[2]
    kind, n = point.split("=")
    {"step": kill_after_updates, "shard": kill_after_shards}[kind](int(n))
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
