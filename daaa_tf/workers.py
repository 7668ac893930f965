"""Multi-worker training (docs/design.md, "Multi-worker"): who writes what, input sharding, barriers.

Under ``MultiWorkerMirroredStrategy`` every worker runs the same stage code. The chief (task "chief", or worker 0
when the cluster has no chief) writes the artifacts; the other workers do every collective step the chief does
(training, evaluation, checkpoint saves, which may all-reduce on-read variables) but write into private
temporary directories that they remove (the tf.distribute multi-worker pattern). With any other strategy the
process is the chief and these helpers change nothing.
"""

import contextlib
import hashlib
import os
import shutil
import tempfile

import tensorflow as tf

from daaa_tf import io


def _resolver(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else None


def _cluster(strategy):
    resolver = _resolver(strategy)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return resolver, [("chief", i) for i in range(len(spec.get("chief", [])))] + [
        ("worker", i) for i in range(len(spec.get("worker", [])))]


def num_workers(strategy):
    """The number of worker processes (1 unless ``strategy`` is a multi-worker strategy with a cluster)."""
    return max(1, len(_cluster(strategy)[1]))


def worker_index(strategy):
    """0 for the chief, 1..n-1 for the other workers (their order in TF_CONFIG's cluster)."""
    resolver, tasks = _cluster(strategy)
    return tasks.index((resolver.task_type, int(resolver.task_id))) if len(tasks) > 1 else 0


def is_chief(strategy):
    return worker_index(strategy) == 0


def fit_input(dataset):
    """The options of every dataset a stage feeds to ``fit`` / ``evaluate``.

    DATA auto-shard policy: every worker reads the whole (deterministic) stream and keeps its replicas' parts of
    each global batch, so the split is that of one machine whatever the number of input files. Autotuning off:
    ``tf.data.AUTOTUNE`` then stays at min(16, cores) parallel calls and no autotuning thread starts. That
    thread made the end of ``fit`` stall for up to a minute, because deleting the input iterator waits for it
    (docs/benchmark.md, "The end-of-fit stall")."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.autotune.enabled = False
    return dataset.with_options(options)


def barrier(strategy):
    """Returns once every worker has called it (an all-reduce of one number); a no-op for a single worker."""
    if num_workers(strategy) > 1:
        ones = strategy.run(lambda: tf.constant(1.0))
        strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None).numpy()


def scratch_dir(directory, index):
    """The temporary directory that stands for ``directory`` on worker ``index`` (see ``private_dir``)."""
    digest = hashlib.sha1(os.path.abspath(directory).encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"daaa_worker{index}_{digest}")


def private_dir(directory, strategy):
    """``directory`` on the chief; on the other workers an empty temporary directory named after ``directory`` and
    the worker (so a worker killed and restarted clears what it left there); remove it with ``release``."""
    if is_chief(strategy):
        return directory
    scratch = scratch_dir(directory, worker_index(strategy))
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    return scratch


def release(directory, strategy):
    """Removes a directory handed out by ``private_dir`` on a non-chief worker; nothing on the chief."""
    if not is_chief(strategy):
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def artifact_path(path, strategy):
    """Yields where to write the artifact ``path``: on the chief its atomic temporary name (renamed into place
    when the block succeeds, ``io.atomic_path``), on the other workers a private path removed afterwards."""
    if is_chief(strategy):
        with io.atomic_path(path) as tmp:
            yield tmp
        return
    scratch = tempfile.mkdtemp(prefix=f"daaa_worker{worker_index(strategy)}_")
    try:
        yield f"{scratch}/{path.rstrip('/').rsplit('/', 1)[-1]}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)



def _is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and num_workers(strategy) > 1


def fix_keras_for_multi_worker():
    """Works around two Keras 3 bugs that stop ``fit`` under MultiWorkerMirroredStrategy across processes
    (installed once by ``runtime.make_strategy("multi_worker")``; other strategies take Keras' own code):

    - keras-team/keras#20329: to build the model symbolically, ``fit`` all-reduces its first batch with
      ``strategy.reduce("MEAN", batch)``, which fails for a dict or tuple ("Attempt to convert a value
      ({'xs': PerReplica...}) with an unsupported type"). The build needs only shapes and dtypes: the first local
      replica's batch is used instead.
    - tensorflow/tensorflow#72388: the step's logs are reduced with ``strategy.reduce("MEAN", v, axis=0)``, which
      fails for scalars ("Invalid reduction dimension 0 for input with 0 dimensions"). They are reduced with
      ``axis=None`` (the mean over all replicas, as MirroredStrategy's logs are).
    """
    from keras.src.backend.tensorflow import trainer

    cls = trainer.TensorFlowTrainer
    if getattr(cls._maybe_symbolic_build, "_daaa_multi_worker", False):
        return
    original_build, original_reduce = cls._maybe_symbolic_build, trainer.reduce_per_replica

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or not _is_multi_worker(strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            data_batch = tf.nest.map_structure(
                lambda v: strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v, next(it))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and _is_multi_worker(strategy):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    _maybe_symbolic_build._daaa_multi_worker = True
    cls._maybe_symbolic_build = _maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
