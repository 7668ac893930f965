"""RevGrad / DANN baseline (Ganin & Lempitsky).  python -m trainers.revgrad --flagfile=configs/demo.flags
    [--adapt_dir=runs/demo/variants/RevGrad/seed0] [--seed=0]

Starts from <run_dir>/source/model.keras; trains on labelled source train + unlabelled target train; writes
model.keras, metrics.json (target_test_accuracy, history with val_accuracy per epoch, ...) and flags.txt.
"""

from daaa_tf.config import RevGradConfig
from trainers import flags as f


def main(argv):
    del argv
    from daaa_tf.stages.revgrad import run_revgrad

    cfg = f.from_flags(RevGradConfig)
    m = run_revgrad(cfg)
    print(f"RevGrad: target test accuracy {m['target_test_accuracy']:.4f} (source test "
          f"{m['source_test_accuracy']:.4f}) after {m['steps']} steps -> {cfg.out_dir}/model.keras")


if __name__ == "__main__":
    f.define_flags(RevGradConfig)
    f.run_main(main)
