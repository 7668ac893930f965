"""How good are a CycleGAN's translations? The two measures both bench scripts report (docs/benchmark.md, §1b)."""

import numpy as np


def diversity(images, rng, pairs=2000):
    """Mean |a - b| (0-255) between the images of ``pairs`` random index pairs drawn from ``rng``: low when a G^ST
    paints one background behind every digit, against the same measure on the real targets."""
    i, j = rng.integers(0, len(images), (2, pairs))
    return float(np.abs(images[i].astype(np.float32) - images[j].astype(np.float32)).mean())


def source_net_accuracy(net, images, labels, chunk=1024):
    """Top-1 accuracy of the frozen digit ``net`` on uint8 ``images`` against ``labels``, read ``chunk`` at a time."""
    from daaa_tf.models import preprocess

    logits = [net(preprocess(images[i:i + chunk], "digit_cnn"), training=False)["logits"].numpy()
              for i in range(0, len(images), chunk)]
    return float((np.concatenate(logits).argmax(-1) == np.asarray(labels)).mean())
