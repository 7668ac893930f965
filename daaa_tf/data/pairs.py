"""Pair shards: the CycleGAN's translations stored beside their originals (paper section 3.1, Fig. 3).

Layout of ``pairs_dir`` (docs/design.md, "Stages and artifacts")::

    source-00000-of-00003.tfrecord   image = PNG(x_s), translated = PNG(G^ST(x_s)), label = y_s
    target-00000-of-00002.tfrecord   image = PNG(x_t), translated = PNG(G^TS(x_t)), label = y_t or -1
    manifest.json                    counts, image shape, shards (records, bytes, sha256), complete

Each shard is written under a temporary name and renamed when complete; the manifest is rewritten after
every shard, and ``"complete": true`` is written last. A rerun keeps the shards whose checksum matches the
manifest and rewrites the others (e.g. one cut short by a kill); the writers are in ``daaa_tf.data.pair_writer``.
Readers::

    m = read_manifest(pairs_dir)                 # raises FileNotFoundError / ValueError when missing / incomplete
    ds = pair_records(pairs_dir, "source")      # serialized records, deterministic order (cheap to skip())
    batch = parse_pairs(ds.batch(64) element)    # {"image": uint8 [B,H,W,3], "translated": ..., "label": int32 [B]}
"""

import os

import tensorflow as tf

from daaa_tf import MissingFileError, UserError
from daaa_tf.io import read_json, sha256_file, size

gfile = tf.io.gfile

KINDS = ("source", "target")
MANIFEST = "manifest.json"
_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "translated": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def shard_name(kind, index, num_shards):
    return f"{kind}-{index:05d}-of-{num_shards:05d}.tfrecord"


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"pair kind must be one of {KINDS}, got {kind!r}")


# ----------------------------------------------------------------------------------------------- reading


def read_manifest(pairs_dir, verify=False):
    """Returns the manifest of a complete pair directory as a dict.

    Keys: ``complete`` (True), ``image_shape`` [H, W, 3], ``counts`` {kind: records}, ``shards``
    {kind: [{"file", "records", "bytes", "sha256"}]}, ``shard_size``, ``fingerprint``. Checks every shard
    exists with the recorded size; ``verify=True`` also checks the sha256 checksums (the adaptation stage does,
    once per start: 0.03 s for the demo's 14 MB of shards, 0.4 s for full MNIST -> MNIST-M's 405 MB). Every
    problem is one line (UserError / MissingFileError) naming the file and the fix.
    """
    path = os.path.join(pairs_dir, MANIFEST)
    fix = f"rerun trainers.cyclegan with the same flags to rewrite the pair shards (or delete {pairs_dir} first)"
    if not gfile.exists(path):
        raise MissingFileError(f"{path}: no pair manifest (run trainers.cyclegan to translate the domains)")
    m = read_json(path)
    if not isinstance(m, dict):
        raise UserError(f"{path}: expected a JSON object (the pair manifest), got {type(m).__name__}; {fix}")
    if not m.get("complete"):
        raise UserError(f"{path}: the pair shards are incomplete (rerun trainers.cyclegan to finish them)")
    shards = m.get("shards")
    if not isinstance(shards, dict) or not all(isinstance(shards.get(k, []), list) for k in KINDS):
        raise UserError(f"{path}: no 'shards' {{kind: [entries]}} in the pair manifest; {fix}")
    for kind in KINDS:
        for entry in shards.get(kind, []):
            missing = [k for k in ("file", "records", "bytes", "sha256")
                       if not isinstance(entry, dict) or k not in entry]
            if missing:
                raise UserError(f"{path}: a {kind} shard entry lacks {', '.join(missing)}; {fix}")
            shard = os.path.join(pairs_dir, entry["file"])
            if not (gfile.exists(shard) and not gfile.isdir(shard)):
                raise MissingFileError(f"{shard}: pair shard listed in {path} is missing; {fix}")
            if size(shard) != entry["bytes"] or (verify and sha256_file(shard) != entry["sha256"]):
                raise UserError(f"{shard}: pair shard is truncated or changed (its size or sha256 differs from "
                                f"{path}); {fix}")
    return m


def pair_records(pairs_dir, kind):
    """tf.data of the serialized records of ``kind`` ("source" | "target"), shard by shard, in manifest order."""
    _check_kind(kind)
    m = read_manifest(pairs_dir)
    files = [os.path.join(pairs_dir, e["file"]) for e in m["shards"].get(kind, [])]
    if not files:
        raise UserError(f"{os.path.join(pairs_dir, MANIFEST)}: no {kind} pair shards")
    return tf.data.TFRecordDataset(files)


def parse_pairs(serialized, image_shape=None):
    """Parses a batch of serialized pair records: {"image", "translated": uint8 [B,H,W,3], "label": int32 [B]}.

    A scalar (unbatched) record gives unbatched tensors. ``image_shape`` (H, W, 3) fixes the static shape.
    """
    single = serialized.shape.rank == 0
    if single:
        serialized = tf.expand_dims(serialized, 0)
    f = tf.io.parse_example(serialized, _FEATURES)
    spec = tf.TensorSpec([None, None, 3], tf.uint8)

    def decode(png):
        return tf.map_fn(lambda b: tf.io.decode_png(b, channels=3), png, fn_output_signature=spec)

    out = {"image": decode(f["image"]), "translated": decode(f["translated"]),
           "label": tf.cast(f["label"], tf.int32)}
    if image_shape is not None:
        for key in ("image", "translated"):
            out[key] = tf.ensure_shape(out[key], [None, *image_shape])
    if single:
        out = {k: v[0] for k, v in out.items()}
    return out
