"""Flags of the RevGrad/DANN baseline (trainers.revgrad); the shared adapt flags (--epochs, --steps_per_epoch,
--batch_size, --lr, --optimizer, --lr_alpha, --lr_power, --head_lr_mult, --adapt_dir, ...) are reused.

``define_revgrad_flags()`` is idempotent, so ``trainers.flags.define_all()`` and trainers.revgrad may both call it.
"""

from absl import flags

FLAGS = flags.FLAGS


def define_revgrad_flags():
    if "revgrad_gamma" in FLAGS:
        return
    flags.DEFINE_list("revgrad_hidden", [], "Hidden widths of the RevGrad domain classifier (empty = Ganin & "
                      "Lempitsky's: 100 for digit_cnn, 1024,1024 for resnet50).")
    flags.DEFINE_float("revgrad_dropout", 0.0, "Dropout after each hidden layer of the domain classifier "
                       "(Ganin & Lempitsky used 0.5 on Office).", lower_bound=0.0, upper_bound=0.99)
    flags.DEFINE_float("revgrad_gamma", 10.0, "gamma of lambda_p = 2 / (1 + exp(-gamma p)) - 1.", lower_bound=0.0)
    flags.DEFINE_enum("revgrad_optimizer", "sgd", ["", "adam", "sgd"], "RevGrad optimizer ('' = --optimizer). "
                      "Ganin & Lempitsky: sgd (momentum 0.9) with --revgrad_lr=0.01; on the demo Adam 1e-3 (the "
                      "digits --optimizer) made the adversarial game diverge.")
    flags.DEFINE_float("revgrad_lr", 0.01, "RevGrad eta0 (0 = --lr).", lower_bound=0.0)
    flags.DEFINE_float("revgrad_weight", 1.0, "Weight of the domain-classifier loss (the reversal still scales "
                       "the feature gradient by lambda_p).", lower_bound=0.0)
