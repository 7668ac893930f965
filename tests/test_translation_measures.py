"""daaa_tf.report.translations against values computed here by hand."""

import numpy as np
import tensorflow as tf

from daaa_tf.report.translations import diversity, source_net_accuracy


def test_diversity_is_the_mean_abs_difference_over_the_drawn_pairs():
    images = np.stack([np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8),
                       np.full((2, 2, 3), 100, np.uint8)])
    i, j = np.random.default_rng(3).integers(0, 3, (2, 50))
    levels = np.array([0.0, 255.0, 100.0])
    assert diversity(images, np.random.default_rng(3), pairs=50) == np.abs(levels[i] - levels[j]).mean()
    assert diversity(images[:1].repeat(4, 0), np.random.default_rng(0)) == 0.0  # one image: no diversity


def test_source_net_accuracy_reads_every_chunk_in_order():
    # A "network" whose logits pick class round(mean pixel in [-1, 1] * 4) + 4, so the label of each image is known.
    def net(x, training=False):
        cls = tf.cast(tf.round(tf.reduce_mean(x, axis=[1, 2, 3]) * 4), tf.int32) + 4
        return {"logits": tf.one_hot(cls, 10)}

    values = np.array([0, 64, 128, 191, 255, 32, 224], np.float32)
    images = values[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3).astype(np.uint8)
    truth = np.round((values / 127.5 - 1.0) * 4).astype(int) + 4
    labels = truth.copy()
    labels[[1, 5]] = 9  # two wrong
    assert source_net_accuracy(net, images, truth, chunk=3) == 1.0
    assert source_net_accuracy(net, images, labels, chunk=3) == 5 / 7
