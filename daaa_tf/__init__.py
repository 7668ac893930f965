"""daaa-tf: Deep Adversarial Attention Alignment (Kang et al., ECCV 2018) in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"


class StageError(RuntimeError):
    """A run cannot go on (diverged loss, a failed pipeline stage); the message says what to do next."""
