"""Batch mixing with asymmetric proportions: every stream's count lands on its own stream, in-batch pairing."""

import numpy as np
import pytest

from daaa_tf.data.mixing import adaptation_dataset, stream_counts
from daaa_tf.data.pair_writer import write_pair_shards

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


# --------------------------------------------------------------------- any global batch on any replica count

PAPER = (0.35, 0.15, 0.35, 0.15)


@pytest.mark.parametrize("batch_size, replicas, expected", [
    (64, 1, (22, 10, 22, 10)), (64, 2, (22, 10, 22, 10)), (64, 4, (24, 8, 24, 8)), (64, 8, (24, 8, 24, 8)),
    (40, 1, (14, 6, 14, 6)), (40, 4, (16, 4, 16, 4)), (40, 8, (8, 8, 16, 8)),
    (128, 4, (44, 20, 44, 20)), (128, 8, (48, 16, 48, 16)), (256, 8, (88, 40, 88, 40)),
])
def test_paper_proportions_work_on_every_replica_count(batch_size, replicas, expected):
    counts = stream_counts(batch_size, PAPER, num_replicas=replicas)
    assert tuple(counts.values()) == expected and sum(expected) == batch_size
    assert all(n % replicas == 0 for n in expected)  # every replica gets the same per-stream counts


def test_per_replica_counts_are_largest_remainder_of_the_per_replica_batch():
    from daaa_tf.data.mixing import replica_counts

    shares = dict(zip(("s", "tf", "t", "sf"), PAPER))
    assert replica_counts(16, shares) == {"s": 6, "tf": 2, "t": 6, "sf": 2}  # 5.6, 2.4, 5.6, 2.4
    assert replica_counts(5, shares) == {"s": 1, "tf": 1, "t": 2, "sf": 1}  # every active stream >= 1
    assert replica_counts(3, shares) is None  # fewer samples than streams
    for b in range(4, 200):
        counts = replica_counts(b, shares)
        assert sum(counts.values()) == b and counts["tf"] <= counts["s"] and counts["sf"] <= counts["t"]
        exact = [b * p for p in PAPER]
        if min(exact) >= 1:
            assert all(abs(n - x) < 1 for n, x in zip(counts.values(), exact)), (b, counts)


@pytest.mark.parametrize("batch_size, replicas, match", [
    (66, 4, "--batch_size=66 is not a multiple of the 4 replicas .*: use --batch_size=64 or 68"),
    (20, 8, "--batch_size=20 is not a multiple of the 8 replicas .*: use --batch_size=32$"),
    (24, 8, "gives 3 samples per replica, fewer than the 4 active streams .*: use --batch_size=32$"),
    (7, 2, "use --batch_size=8$"),
])
def test_batch_sizes_that_cannot_work_name_the_nearest_that_do(batch_size, replicas, match):
    with pytest.raises(ValueError, match=match):
        stream_counts(batch_size, PAPER, num_replicas=replicas)


@pytest.mark.parametrize("replicas", [4, 8])
def test_layout_keeps_pairs_on_4_and_8_replicas(pairs_dir, replicas):
    counts = stream_counts(64, PAPER, num_replicas=replicas)
    batch = {k: v.numpy() for k, v in next(iter(adaptation_dataset(pairs_dir, counts, replicas, seed=0))).items()}
    local = {k: counts[s] // replicas for k, s in (("xs", "s"), ("xtf", "tf"), ("xt", "t"), ("xsf", "sf"))}
    for r in range(replicas):
        part = {k: batch[k][r * n:(r + 1) * n] for k, n in local.items()}
        np.testing.assert_array_equal(255 - part["xtf"], part["xs"][: local["xtf"]])
        np.testing.assert_array_equal(255 - part["xsf"], part["xt"][: local["xsf"]])
        n = local["xtf"]
        np.testing.assert_array_equal(batch["ytf"][r * n:(r + 1) * n], batch["ys"][r * local["xs"]:][:n])


_DISTRIBUTED = """
import json, sys
import numpy as np
import tensorflow as tf
from daaa_tf.runtime import split_cpu
split_cpu(8)
from daaa_tf.data.mixing import adaptation_dataset, stream_counts
cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
out = {}
for replicas, batch_size in ((1, 40), (2, 40), (4, 40), (8, 40), (4, 64), (8, 64), (8, 128), (4, 256)):
    strategy = tf.distribute.MirroredStrategy(cpus[:replicas], cross_device_ops=tf.distribute.ReductionToOneDevice())
    counts = stream_counts(batch_size, (0.35, 0.15, 0.35, 0.15), num_replicas=replicas)
    ds = strategy.experimental_distribute_dataset(adaptation_dataset(sys.argv[1], counts, replicas, seed=0))
    batch = next(iter(ds))
    ok = True
    for r in range(replicas):
        local = {k: (strategy.experimental_local_results(v)[r]).numpy() for k, v in batch.items()}
        ok &= bool(np.array_equal(255 - local["xtf"], local["xs"][: len(local["xtf"])]))
        ok &= bool(np.array_equal(255 - local["xsf"], local["xt"][: len(local["xsf"])]))
        ok &= bool(np.array_equal(local["ytf"], local["ys"][: len(local["ytf"])]))
        ok &= [len(local[k]) for k in ("xs", "xtf", "xt", "xsf")] == [counts[s] // replicas for s in counts]
    out[f"{batch_size}/{replicas}"] = {"counts": list(counts.values()), "paired": ok}
print(json.dumps(out))
"""


def test_mirrored_strategy_on_1_2_4_8_logical_cpus_keeps_pairs_per_replica(pairs_dir):
    """Each replica of a real MirroredStrategy (8 logical CPUs, in a fresh process) gets its own x~t / x~s
    partners and the per-replica counts."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", _DISTRIBUTED, pairs_dir], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(v["paired"] for v in result.values()), result
    assert result["40/8"]["counts"] == [8, 8, 16, 8] and result["64/4"]["counts"] == [24, 8, 24, 8]
    print(result)
