"""The cache of the frozen source network's attention maps (``daaa_tf.method.source_maps``): its rows are the maps
of the right pair images, the indexed batches are the unindexed ones plus the right record indices, and the DAAA
step gives the same L_AT and gradient from the cache as from the source network."""

import numpy as np
import pytest
import tensorflow as tf

from daaa_tf.data.mixing import adaptation_dataset, stream_counts
from daaa_tf.data.pair_writer import write_pair_shards
from daaa_tf.method.daaa import build_daaa
from daaa_tf.method.source_maps import SourceMapCache, source_map_cache, tap_widths
from daaa_tf.models import preprocess
from daaa_tf.stages.adapt import run_adaptation
from tests.test_adapt_stage import _cfg, workdir  # noqa: F401  (workdir: the stage's fixture)
from tests.test_adaptation import make_cfg, make_source

SIZE, N = 16, 37


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Pair shards whose translations differ from their originals, with the record index in pixel (0, 0, 0)."""
    root = tmp_path_factory.mktemp("source_maps") / "pairs"
    rng = np.random.default_rng(1)
    data = {}
    for kind in ("source", "target"):
        images = rng.integers(0, 256, (N, SIZE, SIZE, 3), dtype=np.uint8)
        translated = rng.integers(0, 256, (N, SIZE, SIZE, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = translated[:, 0, 0, 0] = np.arange(N)
        write_pair_shards(str(root), kind, images, translated, np.arange(N) % 10, shard_size=10)
        data[kind] = images, translated
    return str(root), data


def numpy_maps(net, images):
    """Eq. 4 and its normalisation with numpy, from the network's taps: [N, sum H*W]."""
    taps = net(preprocess(images, "digit_cnn"), training=False)["taps"]
    out = []
    for f in taps:
        a = (f.numpy().astype(np.float64) ** 2).sum(-1).reshape(len(images), -1)
        out.append(a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-6))
    return np.concatenate(out, axis=1)


def test_cache_rows_are_the_maps_of_x_s_and_of_the_translated_targets(pairs, capsys):
    pairs_dir, data = pairs
    net = make_source(SIZE)
    maps = source_map_cache(net, pairs_dir, "digit_cnn", batch_size=8)
    assert sorted(maps) == ["xs", "xsf"]
    assert maps["xs"].shape == (N, sum(tap_widths(net))) == (N, 16 * 16 + 8 * 8 + 4 * 4)
    np.testing.assert_allclose(maps["xs"], numpy_maps(net, data["source"][0]), rtol=1e-4, atol=1e-6)
    # x~s = G_TS(x_t): the "translated" field of the target shards, not the real x_t
    np.testing.assert_allclose(maps["xsf"], numpy_maps(net, data["target"][1]), rtol=1e-4, atol=1e-6)
    assert source_map_cache(net, pairs_dir, "digit_cnn", keys=("xsf",))["xsf"].shape == (N, 336)
    assert source_map_cache(net, pairs_dir, "digit_cnn", max_bytes=N * 336 * 4) is None  # both: twice that
    assert "not cached" in capsys.readouterr().out


@pytest.mark.parametrize("replicas", [1, 2])
def test_indexed_batches_are_the_same_batches_with_their_record_indices(pairs, replicas):
    pairs_dir, data = pairs
    counts = stream_counts(16, (0.375, 0.125, 0.375, 0.125), num_replicas=replicas)
    plain = adaptation_dataset(pairs_dir, counts, replicas, seed=3, skip_batches=1, shuffle_buffer=16)
    indexed = adaptation_dataset(pairs_dir, counts, replicas, seed=3, skip_batches=1, shuffle_buffer=16,
                                 with_index=True)
    for a, b in zip(plain.take(6), indexed.take(6)):  # 6 batches of 6 x_s: over several passes of 37 records
        assert sorted(b) == sorted([*a, "is", "isf"])
        for k in a:
            np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
        np.testing.assert_array_equal(b["is"].numpy(), b["xs"].numpy()[:, 0, 0, 0])
        np.testing.assert_array_equal(b["isf"].numpy(), b["xsf"].numpy()[:, 0, 0, 0])
        np.testing.assert_array_equal(data["target"][1][b["isf"].numpy()], b["xsf"].numpy())


@pytest.mark.parametrize("criterion", ["l2", "jmmd"])
def test_cached_step_gives_the_uncached_losses_and_gradients(pairs, criterion):
    pairs_dir, _ = pairs
    cfg = make_cfg(attention_criterion=criterion, threshold=0.0)
    source = make_source(SIZE)
    cached, counts = build_daaa(cfg, source, tf.distribute.get_strategy())
    plain, _ = build_daaa(cfg, source, tf.distribute.get_strategy())
    for m in (cached, plain):
        m.em_active.assign(1.0)
        # a target network that differs from the source network, so L_AT and its gradient are not ~0
        m.target.set_weights([w * 1.1 + 0.01 for w in source.get_weights()])
    cached.use_source_map_cache(source_map_cache(cached.source, pairs_dir, "digit_cnn", batch_size=8))
    batch = next(iter(adaptation_dataset(pairs_dir, counts, 1, seed=0, with_index=True)))
    # without indices in the batch the cached model runs the source network (and agrees)
    unindexed = {k: v for k, v in batch.items() if not k.startswith("i")}
    np.testing.assert_allclose(cached.compute_losses(unindexed)[0]["at"], plain.compute_losses(unindexed)[0]["at"],
                               rtol=1e-5)
    # with indices it reads the cache, not the network: spoil the network to show it
    rng = np.random.default_rng(0)  # (not a rescaling: a ReLU net's normalised maps would not change)
    cached.source.set_weights([w + rng.normal(0, 0.1, w.shape) for w in source.get_weights()])
    variables = {"cached": cached.target.trainable_variables, "plain": plain.target.trainable_variables}
    sums, grads = {}, {}
    for name, m in (("cached", cached), ("plain", plain)):
        with tf.GradientTape() as tape:
            s, _ = m.compute_losses(batch, training=True)
            loss = s["ce"] + s["em"] + s["at"]
        sums[name], grads[name] = s, tape.gradient(loss, variables[name])
    assert float(sums["plain"]["at"]) > 1e-3
    for k in ("ce", "em", "at"):
        np.testing.assert_allclose(sums["cached"][k], sums["plain"][k], rtol=1e-5)
    for g, h in zip(grads["cached"], grads["plain"]):  # round-off: the maps come from batches of other sizes
        np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-5 * float(tf.reduce_max(tf.abs(h))))
    assert abs(float(cached.compute_losses(unindexed)[0]["at"]) - float(sums["plain"]["at"])) > 1e-3


def test_adaptation_stage_trains_from_the_cache(workdir, tmp_path, monkeypatch):  # noqa: F811
    """run_adaptation builds the cache and feeds indexed batches, so the step reads the cache (not the network)."""
    looked_up = []
    lookup = SourceMapCache.lookup
    monkeypatch.setattr(SourceMapCache, "lookup", lambda self, data, key: looked_up.append(key) or
                        lookup(self, data, key))
    metrics = run_adaptation(_cfg(workdir, tmp_path / "adapt", epochs=1))
    assert metrics["steps"] == 4
    assert sorted(set(looked_up)) == ["xs", "xsf"]  # traced into the train step for both streams
