"""Stage 2: CycleGAN + translation into pair shards (paper section 3.1).

    python -m trainers.cyclegan --flagfile=configs/demo.flags

Trains G^ST, G^TS, D^S, D^T into <run_dir>/cyclegan (resumes from the last checkpoint when rerun), then
translates every source and target training image into <run_dir>/pairs (or --pairs_dir).
"""

import os

from absl import flags

from daaa_tf import runtime
from daaa_tf.data import load_domain
from daaa_tf.data.pipelines import conform_domain
from daaa_tf.io import write_json
from daaa_tf.method.cyclegan import CycleGANConfig
from daaa_tf.stages.cyclegan import train_cyclegan, translate_domains
from trainers import flags as f

FLAGS = flags.FLAGS


def cyclegan_config():
    return CycleGANConfig(
        image_size=FLAGS.image_size, gen_width=FLAGS.gen_width, gen_blocks=FLAGS.gen_blocks,
        upsample=FLAGS.cyclegan_upsample, disc_width=FLAGS.disc_width, disc_layers=FLAGS.disc_layers,
        gan_loss=FLAGS.gan_loss, cycle_weight=FLAGS.cycle_weight, identity_weight=FLAGS.identity_weight,
        pool_size=FLAGS.pool_size, lr=FLAGS.cyclegan_lr, beta1=FLAGS.cyclegan_beta1,
        batch_size=FLAGS.cyclegan_batch_size, steps=FLAGS.cyclegan_steps,
        steps_per_epoch=FLAGS.cyclegan_steps_per_epoch, seed=FLAGS.seed, semantic_weight=FLAGS.semantic_weight)


def main(argv):
    del argv
    cfg = cyclegan_config()
    runtime.set_seed(FLAGS.seed)
    runtime.set_precision(FLAGS.cyclegan_precision or FLAGS.precision)
    strategy = runtime.make_strategy(FLAGS.strategy)
    out = f.stage_dir("cyclegan")
    pairs_dir = f.path_or_default(FLAGS.pairs_dir if "pairs_dir" in FLAGS else "", "pairs")
    f.save_flags(out)
    source = conform_domain(load_domain(FLAGS.source, "train", FLAGS.image_size, role="source"),
                            FLAGS.image_size, FLAGS.on_size_mismatch, "--source")
    target = conform_domain(load_domain(FLAGS.target, "train", FLAGS.image_size, role="target"),
                            FLAGS.image_size, FLAGS.on_size_mismatch, "--target")
    semantic_net = None
    if cfg.semantic_weight:
        from daaa_tf.models import load_classifier

        semantic_net = load_classifier(f.path_or_default(FLAGS.source_model, "source", "model.keras"))
    model, metrics = train_cyclegan(cfg, source, target, out, strategy, semantic_net=semantic_net,
                                    semantic_arch=FLAGS.arch)
    print(f"cyclegan: {metrics['step']} steps -> {out} (samples.png, g_st.keras, g_ts.keras)")
    metrics["translation"] = translate_domains(
        model, source, target, pairs_dir, batch_size=FLAGS.translate_batch_size, shard_size=FLAGS.shard_size,
        fingerprint={"source": FLAGS.source, "target": FLAGS.target, "image_size": FLAGS.image_size})
    write_json(os.path.join(out, "metrics.json"), metrics)
    t = metrics["translation"]
    print(f"pairs: {t['translated']} images translated in {t['translate_seconds']:.0f} s -> {pairs_dir}")


if __name__ == "__main__":
    f.define_all()
    f.run_main(main)
