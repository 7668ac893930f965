"""Writing pair shards (the layout and the readers: ``daaa_tf.data.pairs``): translating a domain into shards
resumably, the manifest, the multi-worker split, and ``write_pair_shards`` for tests and tools."""

import math
import os
import re
import sys

import numpy as np
import tensorflow as tf

from daaa_tf import UserError
from daaa_tf.data.pairs import KINDS, MANIFEST, _check_kind, shard_name
from daaa_tf.io import atomic_path, read_json, remove_stale_temporaries, remove_tree, sha256_file, size, write_json

gfile = tf.io.gfile


@tf.function(reduce_retracing=True)
def _encode_png_batch(images):
    return tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string, parallel_iterations=16)


def _encode_pngs(images):
    return _encode_png_batch(tf.convert_to_tensor(images, tf.uint8)).numpy()


def _example(image_png, translated_png, label):
    return tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_png])),
        "translated": tf.train.Feature(bytes_list=tf.train.BytesList(value=[translated_png])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
    })).SerializeToString(deterministic=True)  # map order fixed: same bytes in every process


class _Manifest:
    """The manifest being built: ``complete`` false until every kind is written."""

    def __init__(self, pairs_dir, image_shape, shard_size, fingerprint):
        self.path = os.path.join(pairs_dir, MANIFEST)
        old = read_json(self.path, {}) or {}
        same = (old.get("fingerprint") == fingerprint and old.get("image_shape") == list(image_shape)
                and old.get("shard_size") == shard_size)
        self.data = old if same else {"fingerprint": fingerprint, "image_shape": list(image_shape),
                                      "shard_size": shard_size, "counts": {}, "shards": {}, "kinds_complete": {}}
        self.data["complete"] = False

    def done_entry(self, pairs_dir, kind, name, records):
        """The manifest entry of shard ``name`` if its file is intact (size and sha256 match), else None."""
        for e in self.data["shards"].get(kind, []):
            path = os.path.join(pairs_dir, name)
            if (e["file"] == name and e["records"] == records and gfile.exists(path)
                    and size(path) == e["bytes"] and sha256_file(path) == e["sha256"]):
                return e
        return None

    def save(self):
        write_json(self.path, self.data)


def write_translated_shards(pairs_dir, kind, dataset, num_examples, translate_fn, batch_size=256,
                            shard_size=10000, fingerprint=None, progress=True, complete_when=KINDS, worker=(0, 1)):
    """Translates an unbatched ``(uint8 [H, W, 3], label)`` dataset into ``kind`` pair shards, resumably.

    ``translate_fn``: uint8 [B, H, W, 3] -> uint8 [B, H, W, 3] (a generator). ``dataset`` must yield its
    ``num_examples`` elements in a fixed order. Shards whose checksum matches the manifest are kept (and not
    translated again); the manifest becomes ``complete`` once every kind in ``complete_when`` is written.
    A changed ``fingerprint`` (e.g. another generator step) starts the directory over.
    ``worker=(k, n)``: worker k of n writes shards k, k + n, ...; the others list theirs beside the manifest until
    the chief (k = 0) calls ``merge_worker_shards``. Returns the manifest dict (worker 0's view).
    """
    shape = [int(d) for d in dataset.element_spec[0].shape]

    def batches_from(start):
        for images, labels in dataset.skip(start).batch(batch_size).prefetch(2):
            images = images.numpy()
            yield images, np.asarray(translate_fn(images)), labels.numpy()

    return _write_shards(pairs_dir, kind, shape, num_examples, batches_from, shard_size, fingerprint or {},
                         progress, complete_when, worker=worker)


def _worker_list(pairs_dir, kind, k):
    return os.path.join(pairs_dir, f".{kind}.worker-{k}.json")


def _write_shards(pairs_dir, kind, shape, num_examples, batches_from, shard_size, fingerprint, progress,
                  complete_when, reuse=True, worker=(0, 1)):
    """Writes the missing shards of ``kind``; ``batches_from(start)`` yields (images, translated, labels)."""
    _check_kind(kind)
    if num_examples < 1:
        raise UserError(f"no {kind} images to translate into {pairs_dir}")
    if worker[1] == 1:  # several workers: the chief removes them before any worker writes (translate_domains)
        remove_stale_temporaries(pairs_dir, recursive=False)  # a shard cut short by a kill
    manifest = _Manifest(pairs_dir, shape, int(shard_size), fingerprint)
    num_shards = math.ceil(num_examples / shard_size)
    names = [shard_name(kind, i, num_shards) for i in range(num_shards)]
    sizes = [min(shard_size, num_examples - i * shard_size) for i in range(num_shards)]
    entries = [manifest.done_entry(pairs_dir, kind, n, c) if reuse else None for n, c in zip(names, sizes)]
    k, n_workers = worker
    if k:  # another worker: its shards' entries go to its own list, the chief merges them into the manifest
        path = _worker_list(pairs_dir, kind, k)
        manifest.save = lambda: write_json(path, {"fingerprint": fingerprint, "shards": [
            e for i, e in enumerate(entries) if e and i % n_workers == k]})
    else:
        _remove_stale(pairs_dir, kind, set(names))
    manifest.data["counts"][kind] = num_examples
    manifest.data["kinds_complete"][kind] = False
    manifest.data["shards"][kind] = [e for e in entries if e]
    manifest.save()
    todo = [i for i, e in enumerate(entries) if e is None and i % n_workers == k]
    bar = _progress(sum(sizes[i] for i in todo), f"translating {kind}") if progress and todo else None
    reader = None
    for i in todo:
        start = i * shard_size
        if reader is None or reader.position != start:  # reposition only after kept shards
            reader = _Reader(batches_from(start), start)
        entries[i] = _write_shard(pairs_dir, names[i], sizes[i], reader, bar)
        manifest.data["shards"][kind] = [e for e in entries if e]
        manifest.save()
    manifest.data["kinds_complete"][kind] = all(entries)
    manifest.data["complete"] = all(manifest.data["kinds_complete"].get(k) for k in complete_when)
    manifest.save()  # "complete": true is the last thing written
    return manifest.data


def merge_worker_shards(pairs_dir, num_workers, complete_when=KINDS):
    """The chief, once every worker has written its shards (``worker=(k, n)``): adds the other workers' intact
    shards to the manifest, removes their lists, and marks the manifest complete when every shard is there."""
    path = os.path.join(pairs_dir, MANIFEST)
    m = read_json(path)
    for kind in KINDS:
        if kind not in m["counts"]:
            continue
        have = {e["file"]: e for e in m["shards"].get(kind, [])}
        for k in range(1, num_workers):
            listed = read_json(_worker_list(pairs_dir, kind, k), {}) or {}
            for e in listed.get("shards", []) if listed.get("fingerprint") == m["fingerprint"] else []:
                shard = os.path.join(pairs_dir, e["file"])
                if gfile.exists(shard) and size(shard) == e["bytes"]:
                    have[e["file"]] = e
            remove_tree(_worker_list(pairs_dir, kind, k))
        num_shards = math.ceil(m["counts"][kind] / m["shard_size"])
        names = [shard_name(kind, i, num_shards) for i in range(num_shards)]
        m["shards"][kind] = [have[name] for name in names if name in have]
        m["kinds_complete"][kind] = len(m["shards"][kind]) == num_shards
    m["complete"] = all(m["kinds_complete"].get(k) for k in complete_when)
    write_json(path, m)
    return m


class _Reader:
    """Hands out exactly ``n`` records at a time from an iterator of batches, splitting batches as needed."""

    def __init__(self, batches, position):
        self.batches, self.position, self.carry = batches, position, None

    def take(self, n):
        if self.carry is None:
            self.carry = next(self.batches)
        images, translated, labels = self.carry
        n = min(n, len(images))
        self.carry = (images[n:], translated[n:], labels[n:]) if n < len(images) else None
        self.position += n
        return images[:n], translated[:n], labels[:n]


def _write_shard(pairs_dir, name, count, reader, bar):
    path = os.path.join(pairs_dir, name)
    with atomic_path(path) as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            written = 0
            while written < count:
                images, translated, labels = reader.take(count - written)
                for a, b, y in zip(_encode_pngs(images), _encode_pngs(translated), labels):
                    writer.write(_example(a, b, y))
                written += len(images)
                if bar is not None:
                    bar.add(len(images))
        entry = {"file": name, "records": count, "bytes": size(tmp), "sha256": sha256_file(tmp)}
    return entry


def _remove_stale(pairs_dir, kind, keep):
    """Deletes ``kind`` shards of another shard count (a rerun with a new --shard_size)."""
    if not gfile.isdir(pairs_dir):
        return
    pattern = re.compile(rf"^{kind}-\d{{5}}-of-\d{{5}}\.tfrecord$")
    for name in gfile.listdir(pairs_dir):
        if pattern.match(name) and name not in keep:
            gfile.remove(os.path.join(pairs_dir, name))


def _progress(total, label):
    import keras

    print(label, file=sys.stderr)
    return keras.utils.Progbar(total, unit_name="image")


def write_pair_shards(pairs_dir, kind, images, translated, labels, shard_size=1000):
    """Writes given arrays as ``kind`` pair shards (for tests and tools): uint8 [N, H, W, 3] x 2, labels [N].

    Call it for both "source" and "target"; the manifest is complete once both are written.
    """
    images, translated = np.asarray(images, np.uint8), np.asarray(translated, np.uint8)
    labels = np.asarray(labels, np.int64)
    if images.shape != translated.shape or images.ndim != 4 or len(labels) != len(images):
        raise ValueError(f"write_pair_shards: images {images.shape}, translated {translated.shape} and labels "
                         f"{labels.shape} must be [N, H, W, 3], [N, H, W, 3], [N]")

    def batches_from(start, batch=256):
        for i in range(start, len(images), batch):
            yield images[i:i + batch], translated[i:i + batch], labels[i:i + batch]

    return _write_shards(pairs_dir, kind, list(images.shape[1:]), len(images), batches_from, int(shard_size),
                         {"written_by": "write_pair_shards"}, False, KINDS, reuse=False)
