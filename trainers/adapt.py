"""Stage 3: DAAA adaptation.  python -m trainers.adapt --flagfile=configs/office31/d2a.flags"""

import os

from absl import flags

from daaa_tf.stages.adapt import AdaptConfig, run_adaptation
from trainers import flags as f

FLAGS = flags.FLAGS


def adapt_config():
    if FLAGS.profile_steps and len(FLAGS.profile_steps) != 2:
        raise ValueError(f"--profile_steps: expected 'start,stop', got {','.join(FLAGS.profile_steps)}")
    try:
        proportions = tuple(float(p) for p in FLAGS.proportions)
    except ValueError:
        raise ValueError(f"--proportions: expected four numbers, got {','.join(FLAGS.proportions)}") from None
    return AdaptConfig(
        out_dir=f.path_or_default(FLAGS.adapt_dir, "adapt"),
        source_model=f.path_or_default(FLAGS.source_model, "source", "model.keras"),
        pairs_dir=f.path_or_default(FLAGS.pairs_dir, "pairs"), target=FLAGS.target, arch=FLAGS.arch,
        image_size=FLAGS.image_size, attention_layers=FLAGS.attention_layers, batch_size=FLAGS.batch_size,
        proportions=proportions, streams=tuple(FLAGS.streams), beta=FLAGS.beta,
        attention_criterion=FLAGS.attention_criterion, threshold=FLAGS.threshold, sync_every=FLAGS.sync_every,
        restart_lr=FLAGS.restart_lr, optimizer=FLAGS.optimizer, lr=FLAGS.lr, lr_alpha=FLAGS.lr_alpha,
        lr_power=FLAGS.lr_power, head_lr_mult=FLAGS.head_lr_mult, epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch, seed=FLAGS.seed, strategy=FLAGS.strategy,
        precision=FLAGS.precision, eval_batch_size=FLAGS.eval_batch_size, log_every=FLAGS.log_every,
        profile_steps=tuple(int(s) for s in FLAGS.profile_steps), augment_streams=tuple(FLAGS.augment_streams))


def main(argv):
    del argv
    cfg = adapt_config()
    os.makedirs(cfg.out_dir, exist_ok=True)
    f.save_flags(cfg.out_dir)
    m = run_adaptation(cfg)
    print(f"adapted: target test accuracy {m['target_test_accuracy']:.4f} after {m['steps']} steps "
          f"-> {cfg.out_dir}/model.keras")


if __name__ == "__main__":
    f.define_all()
    f.run_main(main)
