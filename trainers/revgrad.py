"""RevGrad / DANN baseline (Ganin & Lempitsky).  python -m trainers.revgrad --flagfile=configs/demo.flags
    [--adapt_dir=runs/demo/variants/RevGrad/seed0] [--seed=0]

Starts from <run_dir>/source/model.keras; trains on labelled source train + unlabelled target train; writes
model.keras, metrics.json (target_test_accuracy, history with val_accuracy per epoch, ...) and flags.txt.
"""

import os

from absl import flags

from daaa_tf.stages.revgrad import RevGradConfig, run_revgrad
from trainers import flags as f
from trainers.revgrad_flags import define_revgrad_flags

FLAGS = flags.FLAGS


def revgrad_config():
    try:
        hidden = tuple(int(h) for h in FLAGS.revgrad_hidden)
    except ValueError:
        raise ValueError(f"--revgrad_hidden: expected integers, got {','.join(FLAGS.revgrad_hidden)}") from None
    if any(h < 1 for h in hidden):
        raise ValueError(f"--revgrad_hidden: widths must be >= 1, got {','.join(FLAGS.revgrad_hidden)}")
    return RevGradConfig(
        out_dir=f.path_or_default(FLAGS.adapt_dir, "variants", "RevGrad", f"seed{FLAGS.seed}"),
        source_model=f.path_or_default(FLAGS.source_model, "source", "model.keras"),
        source=FLAGS.source, target=FLAGS.target, arch=FLAGS.arch, image_size=FLAGS.image_size,
        attention_layers=FLAGS.attention_layers, batch_size=FLAGS.batch_size,
        optimizer=FLAGS.revgrad_optimizer or FLAGS.optimizer, lr=FLAGS.revgrad_lr or FLAGS.lr,
        lr_alpha=FLAGS.lr_alpha, lr_power=FLAGS.lr_power, head_lr_mult=FLAGS.head_lr_mult,
        epochs=FLAGS.epochs, steps_per_epoch=FLAGS.steps_per_epoch, hidden=hidden, dropout=FLAGS.revgrad_dropout,
        gamma=FLAGS.revgrad_gamma, domain_weight=FLAGS.revgrad_weight, seed=FLAGS.seed, strategy=FLAGS.strategy,
        precision=FLAGS.precision, eval_batch_size=FLAGS.eval_batch_size, log_every=FLAGS.log_every)


def main(argv):
    del argv
    cfg = revgrad_config()
    os.makedirs(cfg.out_dir, exist_ok=True)
    f.save_flags(cfg.out_dir)
    m = run_revgrad(cfg)
    print(f"RevGrad: target test accuracy {m['target_test_accuracy']:.4f} (source test "
          f"{m['source_test_accuracy']:.4f}) after {m['steps']} steps -> {cfg.out_dir}/model.keras")


if __name__ == "__main__":
    f.define_all()
    define_revgrad_flags()  # idempotent: a no-op once define_all() includes it
    f.run_main(main)
