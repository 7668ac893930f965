"""Pair shards (daaa_tf.data.pairs): writer, manifest, reader API, resume and truncation handling."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from daaa_tf.data import pair_writer, pairs


def _arrays(n, seed=0, size=8):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return images, 255 - images, np.arange(n) % 10


def test_write_and_read_back(tmp_path):
    d = str(tmp_path)
    s_img, s_tr, s_lab = _arrays(23)
    t_img, t_tr, _ = _arrays(11, seed=1)
    pair_writer.write_pair_shards(d, "source", s_img, s_tr, s_lab, shard_size=10)
    with pytest.raises(ValueError, match="incomplete"):
        pairs.read_manifest(d)  # only one kind written yet
    pair_writer.write_pair_shards(d, "target", t_img, t_tr, -np.ones(11), shard_size=10)
    m = pairs.read_manifest(d, verify=True)
    assert m["complete"] and m["counts"] == {"source": 23, "target": 11}
    assert m["image_shape"] == [8, 8, 3]
    assert [e["file"] for e in m["shards"]["source"]] == [f"source-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert [e["records"] for e in m["shards"]["source"]] == [10, 10, 3]
    assert all(len(e["sha256"]) == 64 for k in pairs.KINDS for e in m["shards"][k])
    ds = pairs.pair_records(d, "source")
    assert ds.element_spec.dtype == tf.string  # not decoded: skip() is cheap
    batches = [pairs.parse_pairs(b) for b in ds.batch(7)]
    image = np.concatenate([b["image"].numpy() for b in batches])
    np.testing.assert_array_equal(image, s_img)  # deterministic order, lossless PNG
    np.testing.assert_array_equal(np.concatenate([b["translated"].numpy() for b in batches]), s_tr)
    label = np.concatenate([b["label"].numpy() for b in batches])
    assert label.dtype == np.int32 and list(label) == list(s_lab)
    skipped = pairs.parse_pairs(next(iter(ds.skip(12).batch(2))), image_shape=(8, 8, 3))
    np.testing.assert_array_equal(skipped["image"].numpy(), s_img[12:14])
    assert skipped["image"].shape.as_list() == [2, 8, 8, 3]
    one = pairs.parse_pairs(next(iter(pairs.pair_records(d, "target"))))
    assert one["image"].shape == (8, 8, 3) and int(one["label"]) == -1
    with pytest.raises(ValueError, match="kind"):
        pairs.pair_records(d, "both")


def test_missing_incomplete_and_truncated(tmp_path):
    d = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="manifest"):
        pairs.read_manifest(d)
    img, tr, lab = _arrays(5)
    pair_writer.write_pair_shards(d, "source", img, tr, lab, shard_size=2)
    pair_writer.write_pair_shards(d, "target", img, tr, lab, shard_size=2)
    shard = os.path.join(d, "target-00001-of-00003.tfrecord")
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)
    with pytest.raises(ValueError, match="target-00001-of-00003.tfrecord.*truncated"):
        pairs.read_manifest(d)
    os.remove(shard)
    with pytest.raises(FileNotFoundError, match="missing"):
        pairs.read_manifest(d)
    with pytest.raises(ValueError, match="must be"):
        pair_writer.write_pair_shards(d, "source", img, tr[:3], lab)


def test_resume_keeps_intact_shards_and_rewrites_truncated(tmp_path):
    d = str(tmp_path)
    img, _, lab = _arrays(25, size=4)
    calls = []

    def translate(batch):
        calls.append(len(batch))
        return 255 - batch

    def run(kind="source"):
        ds = tf.data.Dataset.from_tensor_slices((img, lab.astype(np.int32)))
        return pair_writer.write_translated_shards(d, kind, ds, 25, translate, batch_size=4, shard_size=10,
                                             fingerprint={"step": 7}, progress=False)

    m = run()
    assert sum(calls) == 25 and not m["complete"]  # target not written yet
    m = run("target")
    assert m["complete"]
    before = {e["file"]: e["sha256"] for e in m["shards"]["source"]}
    # A kill mid-shard leaves the earlier shards and a truncated (or missing) later one.
    victim = os.path.join(d, "source-00001-of-00003.tfrecord")
    with open(victim, "r+b") as f:
        f.truncate(100)
    manifest = json.load(open(os.path.join(d, "manifest.json")))
    manifest["complete"] = False
    json.dump(manifest, open(os.path.join(d, "manifest.json"), "w"))
    calls.clear()
    m = run()
    assert 10 <= sum(calls) < 10 + 4  # only the truncated shard (and at most one batch past it)
    assert {e["file"]: e["sha256"] for e in m["shards"]["source"]} == before
    assert m["complete"]
    pairs.read_manifest(d, verify=True)
    got = np.concatenate([pairs.parse_pairs(b)["translated"].numpy()
                          for b in pairs.pair_records(d, "source").batch(10)])
    np.testing.assert_array_equal(got, 255 - img)
    # A new generator (fingerprint) starts over; a new shard size removes the old shard files.
    calls.clear()
    ds = tf.data.Dataset.from_tensor_slices((img, lab.astype(np.int32)))
    m = pair_writer.write_translated_shards(d, "source", ds, 25, translate, batch_size=4, shard_size=20,
                                      fingerprint={"step": 8}, progress=False)
    assert sum(calls) == 25 and not m["complete"]
    assert sorted(f for f in os.listdir(d) if f.startswith("source")) == [
        "source-00000-of-00002.tfrecord", "source-00001-of-00002.tfrecord"]
