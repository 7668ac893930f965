"""Batch mixing for the adaptation step: four streams in fixed proportions, paired in-batch.

Invariants: docs/design.md, "Batch layout and pairing".

A global batch of B images holds n_s real sources x_s (labelled), n_tf synthetic targets x~t = G_ST(x_s),
n_t real targets x_t and n_sf synthetic sources x~s = G_TS(x_t). In-batch pairing: on every replica, the
local x~t are the translations of the first local x_s, and the local x~s those of the first local x_t.
``tf.distribute`` splits every component of a batch evenly across replicas, so the global batch is laid out
replica-major: component k of replica r holds the partners of component k of replica r.
"""

import tensorflow as tf

STREAMS = ("s", "tf", "t", "sf")
DEFAULT_PROPORTIONS = (0.35, 0.15, 0.35, 0.15)


def stream_counts(batch_size, proportions=DEFAULT_PROPORTIONS, streams=STREAMS, num_replicas=1):
    """Per-stream sample counts of one global batch: {"s": n_s, "tf": n_tf, "t": n_t, "sf": n_sf}.

    Inactive streams get 0; the active proportions are renormalised to sum to 1 (so the Table-1 baselines,
    e.g. ``streams=("tf",)``, train on full batches). Every active count must be >= 1 and divisible by the
    number of replicas; x~t needs x_s (n_tf <= n_s when both are used) and x~s needs x_t (n_sf <= n_t).
    """
    proportions = [float(p) for p in proportions]
    if len(proportions) != 4 or any(p < 0 for p in proportions) or abs(sum(proportions) - 1.0) > 1e-6:
        raise ValueError(f"--proportions: expected four non-negative numbers (s, tf, t, sf) summing to 1, "
                         f"got {proportions}")
    unknown = [s for s in streams if s not in STREAMS]
    if unknown or not streams:
        raise ValueError(f"--streams: expected a non-empty subset of {','.join(STREAMS)}, got {streams}")
    if "sf" in streams and "t" not in streams:
        raise ValueError("--streams: sf (synthetic sources) takes its EM targets from real targets: add t")
    total = sum(p for s, p in zip(STREAMS, proportions) if s in streams)
    if total <= 0:
        raise ValueError(f"--proportions: the active streams {streams} all have proportion 0")
    counts = {s: (round(batch_size * p / total) if s in streams else 0) for s, p in zip(STREAMS, proportions)}
    largest = max(streams, key=lambda s: counts[s])
    counts[largest] += batch_size - sum(counts.values())
    for s in streams:
        if counts[s] < 1 or counts[s] % num_replicas:
            raise ValueError(f"--batch_size={batch_size} with --proportions={proportions} gives {counts[s]} "
                             f"'{s}' samples per batch; each active stream needs >= 1 and a multiple of the "
                             f"{num_replicas} replica(s): change --batch_size or --proportions")
    if "s" in streams and "tf" in streams and counts["tf"] > counts["s"]:
        raise ValueError(f"in-batch pairing needs n_tf <= n_s, got {counts['tf']} > {counts['s']}")
    if counts["sf"] > counts["t"]:
        raise ValueError(f"in-batch pairing needs n_sf <= n_t, got {counts['sf']} > {counts['t']}")
    return counts


def _first_per_replica(x, n_take, num_replicas):
    """[R * m, ...] -> [R * (n_take / R), ...]: the first n_take/R elements of each replica's block."""
    r, rest = num_replicas, list(x.shape[1:])
    blocks = tf.reshape(x, [r, x.shape[0] // r, *rest])
    return tf.reshape(blocks[:, : n_take // r], [n_take, *rest])


def _stream(pairs_dir, kind, batch, seed, skip_batches, shuffle_buffer):
    from daaa_tf.data.pairs import pair_records

    records = pair_records(pairs_dir, kind)

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


def adaptation_dataset(pairs_dir, counts, num_replicas=1, seed=0, skip_batches=0, shuffle_buffer=10000):
    """Infinite, deterministic tf.data of global batches {"xs", "ys", "xtf", "ytf", "xt", "xsf"} (uint8 images).

    Only the keys of active streams are present. ``skip_batches`` resumes the stream after that many batches.
    """
    from daaa_tf.data.pairs import parse_pairs, read_manifest

    shape = tuple(read_manifest(pairs_dir)["image_shape"])
    n_s, n_tf, n_t, n_sf = (counts[s] for s in STREAMS)
    m_s, r = max(n_s, n_tf), num_replicas
    parts = []
    if m_s:
        parts.append(_stream(pairs_dir, "source", m_s, seed, skip_batches, shuffle_buffer))
    if n_t:
        parts.append(_stream(pairs_dir, "target", n_t, seed + 1, skip_batches, shuffle_buffer))

    def arrange(*serialized):
        out, i = {}, 0
        if m_s:
            src = parse_pairs(serialized[i], shape)
            i += 1
            if n_s:
                out["xs"] = _first_per_replica(src["image"], n_s, r)
                out["ys"] = _first_per_replica(src["label"], n_s, r)
            if n_tf:
                out["xtf"] = _first_per_replica(src["translated"], n_tf, r)
                out["ytf"] = _first_per_replica(src["label"], n_tf, r)
        if n_t:
            tgt = parse_pairs(serialized[i], shape)
            out["xt"] = tgt["image"]
            if n_sf:
                out["xsf"] = _first_per_replica(tgt["translated"], n_sf, r)
        return out

    ds = parts[0] if len(parts) == 1 else tf.data.Dataset.zip(tuple(parts))
    ds = ds.map(arrange if len(parts) > 1 else (lambda s: arrange(s)), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
