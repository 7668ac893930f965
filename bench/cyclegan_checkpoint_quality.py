"""How is a CycleGAN run doing before it ends? Reads one checkpoint, writes nothing. Prints one JSON line.

    python bench/cyclegan_checkpoint_quality.py --flagfile=F --run_dir=RUN [--images=2000] [--checkpoint=PATH]

The same flags as ``trainers.cyclegan`` (the networks must be those of the run). Restores the newest good
checkpoint of RUN/cyclegan/checkpoints (or ``--checkpoint``), translates the first ``--images`` training images of
each domain as the stage would (G^ST with each image's own noise when ``--noise_shape`` is set), and reports:

- ``diversity``: the mean |a - b| (0-255) between two random images of G^ST(x_s), x_t, x_s and G^TS(x_t). A
  G^ST that paints one background behind every digit scores far below x_t (docs/benchmark.md, section 1b).
- ``same_image_two_codes`` (noise runs): the mean |G^ST(x_s, z1) - G^ST(x_s, z2)|; 0 means the noise is unused.
- ``source_net_accuracy``: the frozen source network (``--source_model``, by default RUN/source/model.keras) on
  x_s, G^ST(x_s), x_t and G^TS(x_t) against the true labels (a side is skipped when its labels are unknown).
- ``translated_sha256``: checksums of the translations, equal to those of the run's pair shards when these were
  written from the same step.
"""

import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from daaa_tf.config import CycleGANConfig  # noqa: E402
from trainers import flags as f  # noqa: E402

flags.DEFINE_integer("images", 2000, "Training images of each domain to translate (the first ones).", lower_bound=2)
flags.DEFINE_string("checkpoint", "", "A checkpoint path (without .index); empty = the run's newest good one.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from daaa_tf import UserError, runtime
    from daaa_tf.data import load_domain
    from daaa_tf.method.cyclegan import build_cyclegan
    from daaa_tf.models import load_classifier
    from daaa_tf.models.gan_nets import to_float, to_uint8
    from daaa_tf.report.translations import diversity, source_net_accuracy
    from daaa_tf.stages.callbacks import restore_newest_good

    cfg = f.from_flags(CycleGANConfig)
    runtime.set_precision(cfg.precision)
    model = build_cyclegan(cfg)
    if FLAGS.checkpoint:
        if not tf.io.gfile.exists(FLAGS.checkpoint + ".index"):
            raise UserError(f"--checkpoint: no checkpoint at {FLAGS.checkpoint!r} (expected PATH.index)")
        model.checkpoint().restore(FLAGS.checkpoint).expect_partial()
        path = FLAGS.checkpoint
    else:
        directory = os.path.join(cfg.out_dir, "checkpoints")
        manager = tf.train.CheckpointManager(model.checkpoint(), directory, max_to_keep=None)
        path = restore_newest_good(manager.checkpoint, manager, hint="pass the flags of the run that wrote them")
        if path is None:
            raise UserError(f"--run_dir: no CycleGAN checkpoint in {directory}")
    net = load_classifier(cfg.source_model) if tf.io.gfile.exists(cfg.source_model) else None
    translate = tf.function(model.translate, reduce_retracing=True)
    rng = np.random.default_rng(0)
    out = {"checkpoint": path, "step": model.step_count(), "images": FLAGS.images, "diversity": {},
           "source_net_accuracy": {}, "translated_sha256": {}}
    for spec, role, names, direction in ((cfg.source, "source", ("x_s", "G_ST(x_s)"), "st"),
                                         (cfg.target, "target", ("x_t", "G_TS(x_t)"), "ts")):
        domain = load_domain(spec, "train", cfg.image_size, role=role)
        batches = list(domain.dataset().take(FLAGS.images).batch(cfg.translate_batch_size).as_numpy_iterator())
        x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
        t = np.concatenate([translate(b[0], direction).numpy() for b in batches])  # the stage's batches
        out["translated_sha256"][role] = hashlib.sha256(t.tobytes()).hexdigest()
        for name, images in zip(names, (x, t)):
            out["diversity"][name] = diversity(images, rng)
            if net is not None and (y >= 0).all():
                out["source_net_accuracy"][name] = source_net_accuracy(net, images, y)
        if direction == "st" and model.noise_shape is not None:
            n = min(len(x), 250)
            codes = tf.random.stateless_normal((n, *model.noise_shape), [cfg.seed, 7])
            other = to_uint8(model.st(to_float(x[:n]), codes)).numpy()
            out["same_image_two_codes"] = float(np.abs(t[:n].astype(np.float32) - other.astype(np.float32)).mean())
    if net is None:
        out["source_net_accuracy"] = f"skipped: no source network at {cfg.source_model}"
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    f.define_flags(CycleGANConfig)
    f.run_main(main)
