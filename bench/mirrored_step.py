"""Benchmark: the DAAA adaptation step under MirroredStrategy over all visible GPUs against one device (never run
as a test). Prints one JSON object per line.

    python bench/mirrored_step.py [--arch=resnet50 --image_size=224 --per_replica_batch=32 --precision=mixed_float16]

Both runs go through ``keras.Model.fit`` on the same fake uint8 batches (built by ``daaa_tf.method.daaa.build_daaa``
with the per-replica stream counts of ``daaa_tf.data.mixing.stream_counts``), weak scaling: the global batch is
``--per_replica_batch`` x the number of replicas, so ``scaling`` = (images/s on R replicas) / (images/s on one) is
ideally R. Without GPUs (``--cpu_replicas``) the "replicas" are logical CPU devices that share the same cores: it
only shows that the step runs, not a speed-up.
"""

import json
import os
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

flags.DEFINE_enum("arch", "resnet50", ["digit_cnn", "resnet50"], "Classifier.")
flags.DEFINE_integer("image_size", 224, "Image side.")
flags.DEFINE_integer("per_replica_batch", 32, "Batch per replica (the global batch grows with the replicas).")
flags.DEFINE_string("precision", "float32", "Keras dtype policy.")
flags.DEFINE_integer("steps", 20, "Timed steps (after a warm-up epoch of --warmup steps).")
flags.DEFINE_integer("warmup", 3, "Warm-up steps (tracing, autotuning).")
flags.DEFINE_integer("cpu_replicas", 2, "Without GPUs: logical CPU devices for the mirrored run.")
FLAGS = flags.FLAGS


def _cfg(batch):
    return types.SimpleNamespace(
        arch=FLAGS.arch, image_size=FLAGS.image_size, attention_layers="all_conv", batch_size=batch,
        proportions=(0.35, 0.15, 0.35, 0.15), streams=("s", "tf", "t", "sf"), beta=1.0, attention_criterion="l2",
        threshold=0.0, sync_every=100, restart_lr=True, optimizer="sgd" if FLAGS.arch == "resnet50" else "adam",
        lr=1e-3, lr_alpha=10.0, lr_power=0.75, head_lr_mult=1.0, epochs=1, steps_per_epoch=1000)


def images_per_s(strategy, source_weights, num_classes):
    import tensorflow as tf

    from daaa_tf.method.daaa import build_daaa
    from daaa_tf.models import build_classifier

    replicas = strategy.num_replicas_in_sync
    cfg = _cfg(FLAGS.per_replica_batch * replicas)
    source = build_classifier(cfg.arch, num_classes, cfg.image_size, None, cfg.attention_layers)
    source.set_weights(source_weights)
    model, counts = build_daaa(cfg, source, strategy)
    model.em_active.assign(1.0)
    rng = np.random.default_rng(0)
    size = cfg.image_size

    def img(n):
        return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)

    batch = {"xs": img(counts["s"]), "ys": rng.integers(0, num_classes, counts["s"]).astype(np.int32),
             "xtf": img(counts["tf"]), "ytf": rng.integers(0, num_classes, counts["tf"]).astype(np.int32),
             "xt": img(counts["t"]), "xsf": img(counts["sf"])}
    data = tf.data.Dataset.from_tensors(batch).repeat().prefetch(2)
    model.fit(data, steps_per_epoch=FLAGS.warmup, epochs=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - t0
    return cfg.batch_size * FLAGS.steps / seconds, counts


def main(argv):
    del argv
    import tensorflow as tf

    from daaa_tf import runtime

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        runtime.split_cpu(FLAGS.cpu_replicas)
    runtime.set_seed(0)
    runtime.set_precision(FLAGS.precision)
    from daaa_tf.models import build_classifier

    num_classes = 31 if FLAGS.arch == "resnet50" else 10
    weights = build_classifier(FLAGS.arch, num_classes, FLAGS.image_size, None, "all_conv").get_weights()
    devices = [d.name for d in tf.config.list_logical_devices("GPU" if gpus else "CPU")]
    one = tf.distribute.OneDeviceStrategy(devices[0])
    mirrored = tf.distribute.MirroredStrategy(
        devices, cross_device_ops=None if gpus else tf.distribute.ReductionToOneDevice())
    single, _ = images_per_s(one, weights, num_classes)
    many, counts = images_per_s(mirrored, weights, num_classes)
    print(json.dumps({"measure": "mirrored_vs_one", "arch": FLAGS.arch, "image_size": FLAGS.image_size,
                      "precision": FLAGS.precision, "devices": "GPU" if gpus else "logical CPU",
                      "replicas": len(devices), "per_replica_batch": FLAGS.per_replica_batch,
                      "global_counts": counts, "one_device_images_per_s": round(single, 2),
                      "mirrored_images_per_s": round(many, 2), "scaling": round(many / single, 3),
                      "ideal_scaling": len(devices)}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
