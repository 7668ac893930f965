"""Stage 1: train the source network.  python -m trainers.source --flagfile=configs/demo.flags"""

from daaa_tf.config import SourceConfig
from trainers import flags as f


def main(argv):
    del argv
    from daaa_tf.stages.source import train_source

    cfg = f.from_flags(SourceConfig)
    m = train_source(cfg)
    print(f"source only: source test accuracy {m['source_test_accuracy']:.4f}, "
          f"target test accuracy {m['target_test_accuracy']:.4f}  ->  {cfg.out_dir}/model.keras")


if __name__ == "__main__":
    f.define_flags(SourceConfig)
    f.run_main(main)
