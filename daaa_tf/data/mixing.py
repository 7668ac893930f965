"""Batch mixing for the adaptation step: four streams in fixed proportions, paired in-batch.

Invariants: docs/design.md, "Batch layout and pairing".

A global batch of B images holds n_s real sources x_s (labelled), n_tf synthetic targets x~t = G_ST(x_s),
n_t real targets x_t and n_sf synthetic sources x~s = G_TS(x_t). In-batch pairing: on every replica, the
local x~t are the translations of the first local x_s, and the local x~s those of the first local x_t.
``tf.distribute`` splits every component of a batch evenly across replicas, so the global batch is laid out
replica-major: component k of replica r holds the partners of component k of replica r.
"""

import tensorflow as tf

# The batch-size rule is pure Python (daaa_tf.batching: the flag parser checks it before TensorFlow is imported);
# it is part of this module's API.
from daaa_tf.batching import DEFAULT_PROPORTIONS, STREAMS, replica_counts, stream_counts, working_batch_sizes  # noqa: F401


def _first_per_replica(x, n_take, num_replicas):
    """[R * m, ...] -> [R * (n_take / R), ...]: the first n_take/R elements of each replica's block."""
    r, rest = num_replicas, list(x.shape[1:])
    blocks = tf.reshape(x, [r, x.shape[0] // r, *rest])
    return tf.reshape(blocks[:, : n_take // r], [n_take, *rest])


def _stream(pairs_dir, kind, batch, seed, skip_batches, shuffle_buffer, with_index):
    from daaa_tf.data.pairs import pair_records

    records = pair_records(pairs_dir, kind)
    if with_index:  # (record index in manifest order, record): the shuffle's order does not depend on the elements
        records = records.enumerate()

    def one_pass(p):
        # A fixed shuffle per pass (graph seed ``seed + 1``, op seed the pass number), not one reshuffling
        # shuffle: that one draws each pass's order from a seed generator which tf.distribute's dataset rewrite
        # re-creates, so under (MultiWorker)MirroredStrategy the stream differed from the one-device stream.
        # set_seed here sets the seed of this function's graph only (never 0, so the tensor op seed is accepted).
        tf.random.set_seed(seed + 1)
        return records.shuffle(shuffle_buffer, seed=p, reshuffle_each_iteration=False)

    ds = tf.data.Dataset.counter().flat_map(one_pass)
    # Skip consumed batches *before* decoding, so a resumed run sees exactly the batches it would have seen.
    return ds.batch(batch, drop_remainder=True).skip(skip_batches)


def adaptation_dataset(pairs_dir, counts, num_replicas=1, seed=0, skip_batches=0, shuffle_buffer=10000,
                       with_index=False):
    """Infinite, deterministic tf.data of global batches {"xs", "ys", "xtf", "ytf", "xt", "xsf"} (uint8 images).

    Only the keys of active streams are present. ``skip_batches`` resumes the stream after that many batches.
    ``with_index`` adds "is" / "isf" (int64): the record index (manifest order) of each x_s / x~s, the key into
    the cached source-network maps (``daaa_tf.method.source_maps``); the images are the same either way.
    """
    from daaa_tf.data.pairs import parse_pairs, read_manifest

    shape = tuple(read_manifest(pairs_dir)["image_shape"])
    n_s, n_tf, n_t, n_sf = (counts[s] for s in STREAMS)
    m_s, r = max(n_s, n_tf), num_replicas
    parts = []
    if m_s:
        parts.append(_stream(pairs_dir, "source", m_s, seed, skip_batches, shuffle_buffer, with_index))
    if n_t:
        parts.append(_stream(pairs_dir, "target", n_t, seed + 1, skip_batches, shuffle_buffer, with_index))

    def arrange(*serialized):
        out, i = {}, 0
        if with_index:
            index, serialized = [s[0] for s in serialized], [s[1] for s in serialized]
        if m_s:
            src = parse_pairs(serialized[i], shape)
            if n_s:
                out["xs"] = _first_per_replica(src["image"], n_s, r)
                out["ys"] = _first_per_replica(src["label"], n_s, r)
                if with_index:
                    out["is"] = _first_per_replica(index[i], n_s, r)
            i += 1
            if n_tf:
                out["xtf"] = _first_per_replica(src["translated"], n_tf, r)
                out["ytf"] = _first_per_replica(src["label"], n_tf, r)
        if n_t:
            tgt = parse_pairs(serialized[i], shape)
            out["xt"] = tgt["image"]
            if n_sf:
                out["xsf"] = _first_per_replica(tgt["translated"], n_sf, r)
                if with_index:
                    out["isf"] = _first_per_replica(index[i], n_sf, r)
        return out

    ds = tf.data.Dataset.zip(tuple(parts))  # elements: one entry per stream, also when there is one stream
    ds = ds.map(arrange, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
