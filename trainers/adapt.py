"""Stage 3: DAAA adaptation.  python -m trainers.adapt --flagfile=configs/office31/d2a.flags"""

from daaa_tf.config import AdaptConfig
from trainers import flags as f


def main(argv):
    del argv
    from daaa_tf.stages.adapt import run_adaptation

    cfg = f.from_flags(AdaptConfig)
    m = run_adaptation(cfg)
    print(f"adapted: target test accuracy {m['target_test_accuracy']:.4f} after {m['steps']} steps "
          f"-> {cfg.out_dir}/model.keras")


if __name__ == "__main__":
    f.define_flags(AdaptConfig)
    f.run_main(main)
