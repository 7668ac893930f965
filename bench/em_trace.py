"""What does EM add per M_post sync? (never run as a test). Prints one JSON object per sync and per epoch.

    python bench/em_trace.py --flagfile=configs/demo.flags [--adapt_dir=runs/demo/em_trace] [--trace_size=10000]

Runs the adaptation stage exactly as ``trainers.adapt`` does, plus one callback: right after every M_post sync
it passes the first ``--trace_size`` real target *training* images of the pair shards through M_post and
reports the kept fraction (max posterior >= p_t), the accuracy of the pseudo-labels of the kept samples, and
M_post's accuracy on all of them — against the true target labels, which the method never sees (the pair
shards carry them when the target domain has labels). The target-test accuracy after each epoch is printed too.
Also written to ``<adapt_dir>/em_trace.jsonl``.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from daaa_tf.data.pairs import pair_records, parse_pairs, read_manifest  # noqa: E402
from daaa_tf.models import preprocess  # noqa: E402

FLAGS = flags.FLAGS


class EMTrace(keras.callbacks.Callback):
    """After each sync (step % N == 0): kept fraction, pseudo-label accuracy of the kept, M_post accuracy.

    ``PosteriorSync`` copies at the start of the update after step t (or at the epoch end when t ends an
    epoch), so this callback, listed after it, looks at the start of each update and at each epoch end.
    """

    def __init__(self, pairs_dir, sync_every, threshold, arch, size, out_path):
        super().__init__()
        shape = tuple(read_manifest(pairs_dir)["image_shape"])
        images, labels = [], []
        for batch in pair_records(pairs_dir, "target").take(size).batch(1024):
            parsed = parse_pairs(batch, shape)
            images.append(parsed["image"].numpy())
            labels.append(parsed["label"].numpy())
        self.images, self.labels = np.concatenate(images), np.concatenate(labels)
        if (self.labels < 0).any():
            raise ValueError(f"{pairs_dir}: the target pairs carry no labels; em_trace needs a labelled target")
        self.sync_every, self.threshold, self.arch, self.out_path = sync_every, threshold, arch, out_path
        self.traced = 0

    def _emit(self, record):
        print(json.dumps(record), flush=True)
        with open(self.out_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_batch_begin(self, batch, logs=None):
        self._maybe_trace()

    def _maybe_trace(self):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.sync_every or step <= self.traced:
            return
        self.traced = step
        probs = []
        for i in range(0, len(self.images), 1024):
            x = preprocess(self.images[i:i + 1024], self.arch)
            probs.append(tf.nn.softmax(self.model.posterior(x, training=False)["logits"]).numpy())
        q = np.concatenate(probs)
        pred, kept = q.argmax(-1), q.max(-1) >= self.threshold
        self._emit({"measure": "em_sync", "step": step, "kept_fraction": float(kept.mean()),
                    "kept_pseudo_label_accuracy": float((pred[kept] == self.labels[kept]).mean()) if kept.any()
                    else None, "m_post_target_train_accuracy": float((pred == self.labels).mean()),
                    "lr_after_sync": float(self.model.current_learning_rate())})

    def on_epoch_end(self, epoch, logs=None):
        self._maybe_trace()
        self._emit({"measure": "epoch", "epoch": epoch + 1, "step": int(self.model.optimizer.iterations.numpy()),
                    "target_test_accuracy": float(logs.get("val_accuracy", float("nan"))),
                    "kept": float(logs.get("kept", float("nan"))), "em": float(logs.get("em", float("nan"))),
                    "at": float(logs.get("at", float("nan")))})


def main(argv):
    del argv
    from daaa_tf.config import AdaptConfig
    from daaa_tf.stages.adapt import run_adaptation
    from trainers import flags as f

    cfg = f.from_flags(AdaptConfig)
    f.save_flags(cfg.out_dir, cfg)
    trace = EMTrace(cfg.pairs_dir, cfg.sync_every, cfg.threshold, cfg.arch, FLAGS.trace_size,
                    os.path.join(cfg.out_dir, "em_trace.jsonl"))
    m = run_adaptation(cfg, extra_callbacks=[trace])
    print(json.dumps({"measure": "final", "target_test_accuracy": m["target_test_accuracy"], "steps": m["steps"],
                      "out_dir": cfg.out_dir}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from daaa_tf.config import AdaptConfig
    from trainers import flags as f

    f.define_flags(AdaptConfig)  # the adaptation stage's flags, as trainers.adapt defines them
    flags.DEFINE_integer("trace_size", 10000, "Target training images M_post is scored on after each sync.",
                         lower_bound=1)
    f.run_main(main)
