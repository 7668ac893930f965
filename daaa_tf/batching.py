"""The batch-size rule of the adaptation step: how a global batch of B images splits into the four streams on R
replicas (docs/design.md, "Batch layout and pairing"). Pure Python: the flag parser checks --batch_size,
--proportions and --streams with it before TensorFlow is imported."""

import math

from daaa_tf import UserError

STREAMS = ("s", "tf", "t", "sf")
DEFAULT_PROPORTIONS = (0.35, 0.15, 0.35, 0.15)


def _check_streams(proportions, streams):
    proportions = [float(p) for p in proportions]
    valid = all(math.isfinite(p) and p >= 0 for p in proportions)
    if len(proportions) != 4 or not valid or abs(sum(proportions) - 1.0) > 1e-6:
        raise UserError(f"--proportions: expected four finite non-negative numbers (s, tf, t, sf) summing to 1, "
                        f"got {proportions}")
    unknown = [s for s in streams if s not in STREAMS]
    if unknown or not streams:
        raise UserError(f"--streams: expected a non-empty subset of {','.join(STREAMS)}, got {streams}")
    if "sf" in streams and "t" not in streams:
        raise UserError("--streams: sf (synthetic sources) takes its EM targets from real targets: add t")
    total = sum(p for s, p in zip(STREAMS, proportions) if s in streams)
    if total <= 0:
        raise UserError(f"--proportions: the active streams {streams} all have proportion 0")
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
        raise UserError(f"--batch_size={batch_size} {problem}: use --batch_size={near}")
    if "s" in streams and "tf" in streams and counts["tf"] > counts["s"]:
        raise UserError(f"--proportions: in-batch pairing needs n_tf <= n_s (each x~t is the translation of an x_s "
                        f"of the batch), got {counts['tf']} > {counts['s']} with --batch_size={batch_size}")
    if counts["sf"] > counts["t"]:
        raise UserError(f"--proportions: in-batch pairing needs n_sf <= n_t (each x~s is the translation of an x_t "
                        f"of the batch), got {counts['sf']} > {counts['t']} with --batch_size={batch_size}")
    return counts
