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


def _check_streams(proportions, streams):
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
    return {s: (p / total if s in streams else 0.0) for s, p in zip(STREAMS, proportions)}


def replica_counts(per_replica_batch, shares):
    """Per-replica counts by largest remainder: floor(b * share) each, the b - sum(floors) leftover samples to
    the largest fractional parts (ties: the larger share, then stream order), then every active stream raised to
    >= 1 (taken from the largest). None when ``b`` is smaller than the number of active streams."""
    active = [s for s in STREAMS if shares[s] > 0]
    b = per_replica_batch
    if b < len(active):
        return None
    exact = {s: b * shares[s] for s in STREAMS}
    counts = {s: int(exact[s] + 1e-9) for s in STREAMS}
    by_fraction = sorted(active, key=lambda s: (-round(exact[s] - counts[s], 9), -shares[s]))
    for s in by_fraction[: b - sum(counts.values())]:
        counts[s] += 1
    for s in active:
        if counts[s] < 1:
            counts[max(active, key=lambda k: counts[k])] -= 1
            counts[s] = 1
    return counts


def _counts_or_problem(batch_size, shares, num_replicas):
    if batch_size < 1 or batch_size % num_replicas:
        return None, f"is not a multiple of the {num_replicas} replicas (tf.distribute splits a batch evenly)"
    local = replica_counts(batch_size // num_replicas, shares)
    if local is None:
        active = sum(1 for v in shares.values() if v > 0)
        return None, (f"gives {batch_size // num_replicas} samples per replica, fewer than the {active} active "
                      "streams (each needs >= 1 per replica)")
    return {s: n * num_replicas for s, n in local.items()}, None


def working_batch_sizes(batch_size, proportions=DEFAULT_PROPORTIONS, streams=STREAMS, num_replicas=1):
    """The nearest global batch sizes below and above ``batch_size`` that ``stream_counts`` accepts."""
    shares = _check_streams(proportions, streams)
    below = next((b for b in range(batch_size - 1, 0, -1) if _counts_or_problem(b, shares, num_replicas)[0]),
                 None)
    above = next(b for b in range(batch_size + 1, batch_size + 8 * num_replicas * 4 + 2)
                 if _counts_or_problem(b, shares, num_replicas)[0])
    return [b for b in (below, above) if b]


def stream_counts(batch_size, proportions=DEFAULT_PROPORTIONS, streams=STREAMS, num_replicas=1):
    """Per-stream sample counts of one global batch: {"s": n_s, "tf": n_tf, "t": n_t, "sf": n_sf}.

    Inactive streams get 0; the active proportions are renormalised to sum to 1 (so the Table-1 baselines,
    e.g. ``streams=("tf",)``, train on full batches). The counts are made per replica (docs/design.md, "Batch
    layout and pairing"): the per-replica batch b = B / R is split by ``replica_counts`` (largest remainder, every
    active stream >= 1) and each global count is R times the local one, so any B that is a multiple of R with
    b >= the number of active streams works; any other B is refused naming the nearest sizes that work. x~t needs
    x_s (n_tf <= n_s when both are used) and x~s needs x_t (n_sf <= n_t).
    """
    shares = _check_streams(proportions, streams)
    counts, problem = _counts_or_problem(batch_size, shares, num_replicas)
    if problem:
        near = " or ".join(map(str, working_batch_sizes(batch_size, proportions, streams, num_replicas)))
        raise ValueError(f"--batch_size={batch_size} {problem}: use --batch_size={near}")
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

    ds = pair_records(pairs_dir, kind)
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
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
