"""Stage 1: train the source network.  python -m trainers.source --flagfile=configs/demo.flags"""

from absl import flags

from daaa_tf.stages.source import SourceConfig, train_source
from trainers import flags as f

FLAGS = flags.FLAGS


def main(argv):
    del argv
    out = f.stage_dir("source")
    f.save_flags(out)
    m = train_source(SourceConfig(
        out_dir=out, source=FLAGS.source, target=FLAGS.target, arch=FLAGS.arch, image_size=FLAGS.image_size,
        weights=FLAGS.weights, attention_layers=FLAGS.attention_layers, epochs=FLAGS.source_epochs,
        batch_size=FLAGS.source_batch_size, optimizer=FLAGS.source_optimizer, lr=FLAGS.source_lr,
        seed=FLAGS.seed, strategy=FLAGS.strategy, precision=FLAGS.precision))
    print(f"source only: source test accuracy {m['source_test_accuracy']:.4f}, "
          f"target test accuracy {m['target_test_accuracy']:.4f}  ->  {out}/model.keras")


if __name__ == "__main__":
    f.define_all()
    f.run_main(main)
