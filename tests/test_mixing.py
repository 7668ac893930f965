"""Batch mixing with asymmetric proportions: every stream's count lands on its own stream, in-batch pairing."""

import numpy as np
import pytest

from daaa_tf.data.mixing import adaptation_dataset, stream_counts
from daaa_tf.data.pairs import write_pair_shards

SIZE = 8
PROPORTIONS = (0.4, 0.1, 0.3, 0.2)  # n_s != n_t and n_tf != n_sf: a swap of any two shares shows


def test_asymmetric_stream_counts():
    assert stream_counts(20, PROPORTIONS) == {"s": 8, "tf": 2, "t": 6, "sf": 4}
    assert stream_counts(20, PROPORTIONS, num_replicas=2) == {"s": 8, "tf": 2, "t": 6, "sf": 4}
    # the rounding remainder goes to the largest stream, so the counts always add up to B
    for b in (7, 11, 13, 17, 23):
        assert sum(stream_counts(b, (0.35, 0.15, 0.35, 0.15)).values()) == b
    assert stream_counts(10, PROPORTIONS, streams=("s", "tf")) == {"s": 8, "tf": 2, "t": 0, "sf": 0}
    assert stream_counts(12, PROPORTIONS, streams=("t", "sf")) == {"s": 0, "tf": 0, "t": 7, "sf": 5}


@pytest.mark.parametrize("proportions, match", [
    ((0.3, 0.2, 0.4, 0.1), None),
    ((0.1, 0.4, 0.4, 0.1), "n_tf <= n_s"),
    ((0.4, 0.1, 0.1, 0.4), "n_sf <= n_t"),
])
def test_pairing_needs_enough_originals(proportions, match):
    if match is None:
        stream_counts(10, proportions)
    else:
        with pytest.raises(ValueError, match=match):
            stream_counts(10, proportions)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for kind, offset in (("source", 0), ("target", 100)):
        n = 30
        images = rng.integers(0, 200, (n, SIZE, SIZE, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = np.arange(n)  # an id pixel
        write_pair_shards(str(root), kind, images, 255 - images, (np.arange(n) + offset) % 10, shard_size=16)
    return str(root)


@pytest.mark.parametrize("replicas", [1, 2])
def test_mixer_gives_each_stream_its_own_share_and_pairs_in_batch(pairs_dir, replicas):
    counts = stream_counts(20, PROPORTIONS, num_replicas=replicas)
    batch = next(iter(adaptation_dataset(pairs_dir, counts, replicas, seed=0)))
    shapes = {k: tuple(v.shape) for k, v in batch.items()}
    assert shapes == {"xs": (8, SIZE, SIZE, 3), "ys": (8,), "xtf": (2, SIZE, SIZE, 3), "ytf": (2,),
                      "xt": (6, SIZE, SIZE, 3), "xsf": (4, SIZE, SIZE, 3)}
    xs, xtf, xt, xsf = (batch[k].numpy() for k in ("xs", "xtf", "xt", "xsf"))
    ys, ytf = batch["ys"].numpy(), batch["ytf"].numpy()
    for r in range(replicas):
        s = slice(r * 8 // replicas, (r + 1) * 8 // replicas)
        tf_ = slice(r * 2 // replicas, (r + 1) * 2 // replicas)
        t = slice(r * 6 // replicas, (r + 1) * 6 // replicas)
        sf = slice(r * 4 // replicas, (r + 1) * 4 // replicas)
        np.testing.assert_array_equal(255 - xtf[tf_], xs[s][: 2 // replicas])  # x~t = G_ST(first local x_s)
        np.testing.assert_array_equal(ytf[tf_], ys[s][: 2 // replicas])
        np.testing.assert_array_equal(255 - xsf[sf], xt[t][: 4 // replicas])  # x~s = G_TS(first local x_t)
    np.testing.assert_array_equal(ys, xs[:, 0, 0, 0] % 10)  # each source keeps its own label
    assert len(set(xt[:, 0, 0, 0])) == 6


def test_table1_baselines_keep_only_their_streams(pairs_dir):
    counts = stream_counts(10, PROPORTIONS, streams=("s", "tf"))
    batch = next(iter(adaptation_dataset(pairs_dir, counts, 1, seed=0)))
    assert {k: tuple(v.shape)[0] for k, v in batch.items()} == {"xs": 8, "ys": 8, "xtf": 2, "ytf": 2}
    counts = stream_counts(12, PROPORTIONS, streams=("t", "sf"))
    batch = next(iter(adaptation_dataset(pairs_dir, counts, 1, seed=0)))
    assert {k: tuple(v.shape)[0] for k, v in batch.items()} == {"xt": 7, "xsf": 5}
    np.testing.assert_array_equal(255 - batch["xsf"].numpy(), batch["xt"].numpy()[:5])
