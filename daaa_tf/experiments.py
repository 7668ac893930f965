"""The experiment grid as data: each variant of the paper's Tables 1, 3 and 4 is a set of ``AdaptConfig`` field
overrides, and the paper's published numbers beside them. ``daaa_tf.stages.pipeline`` runs the variants and
``daaa_tf.report`` lays out the results from the same tables.
"""

from daaa_tf import UserError

# Adaptation variants: overrides of daaa_tf.config.AdaptConfig ("full" = the flags as given).
VARIANTS = {
    "S": {"streams": ("s",), "beta": 0.0},
    "Tf": {"streams": ("tf",), "beta": 0.0},
    "S+Tf": {"streams": ("s", "tf"), "beta": 0.0},
    "S+Tf+AT": {"streams": ("s", "tf")},
    "full-noAT": {"beta": 0.0},
    "full": {},
    "EM-A": {"sync_every": 1},
    "EM-B": {"threshold": 0.0},
    "EM-C": {"restart_lr": False},
    "EM-A-noAT": {"sync_every": 1, "beta": 0.0},
    "EM-B-noAT": {"threshold": 0.0, "beta": 0.0},
    "EM-C-noAT": {"restart_lr": False, "beta": 0.0},
    "AT-l1": {"attention_criterion": "l1"},
    "AT-mmd": {"attention_criterion": "mmd"},
    "AT-jmmd": {"attention_criterion": "jmmd"},
    # Beyond the paper (opt-in): target consistency for L_EM (docs/benchmark.md).
    "full+augT": {"augment_streams": ("t",)},
}
TABLE1 = ("S", "Tf", "S+Tf", "S+Tf+AT", "full-noAT", "full")
TABLE3 = ("EM-A", "EM-B", "EM-C", "EM-A-noAT", "EM-B-noAT", "EM-C-noAT", "full", "full-noAT")
TABLE4 = ("AT-l1", "AT-mmd", "AT-jmmd", "full")
BEYOND = ("full+augT", "full")
GROUPS = {"table1": TABLE1, "table3": TABLE3, "table4": TABLE4, "beyond": BEYOND}


def expand(names):
    """Variant names and group names (table1, table3, table4, beyond) -> the variant names, in order, once each."""
    out = []
    for name in names:
        if name not in VARIANTS and name not in GROUPS:
            raise UserError(f"--variants: unknown variant {name!r}; expected some of "
                            f"{', '.join([*VARIANTS, *GROUPS])}")
        out.extend(GROUPS.get(name, (name,)))
    return tuple(dict.fromkeys(out))


# ------------------------------------------------------------------------------------- the paper's numbers

PAPER_SOURCE_TEST = {"MNIST→MNIST-M": "99.3"}  # section 4.3: the source network on the MNIST test set
# Table 1 (MNIST -> MNIST-M): the same number serves the source network and the S variant.
PAPER_MNIST = {"source": "45.6", "S": "45.6", "RevGrad": "81.5", "Tf": "75.0", "S+Tf": "78.5", "S+Tf+AT": "85.7",
               "full-noAT": "93.5", "full": "95.6"}
OFFICE_TASKS = ("A→W", "D→W", "W→D", "A→D", "D→A", "W→A")
PAPER_OFFICE_T2 = {  # Table 2, in the order of OFFICE_TASKS
    "source": "68.4 96.7 99.3 68.9 62.5 60.7", "RevGrad": "82.0 96.9 99.1 79.7 68.2 67.4",
    "Tf": "81.1 98.5 99.8 83.3 61.0 60.2", "S+Tf": "81.9 98.5 99.8 83.7 66.5 64.8",
    "full-noAT": "87.1 99.3 100 87.1 72.3 72.2", "full": "86.8 99.3 100 88.8 74.3 73.9"}
PAPER_OFFICE_T34 = {  # Table 3 (A→W, A→D, D→A, W→A; our EM-A/EM-C keep L_AT) and Table 4 (D→A, W→A)
    "EM-A": dict(zip(("A→W", "A→D", "D→A", "W→A"), ("80.4", "79.1", "66.4", "58.4"))),
    "EM-C": dict(zip(("A→W", "A→D", "D→A", "W→A"), ("86.2", "86.6", "71.8", "73.7"))),
    "EM-B": dict.fromkeys(("A→W", "A→D", "D→A", "W→A"), "very low"),
    "AT-l1": dict.fromkeys(("D→A", "W→A"), "very low"),
    "AT-mmd": {"D→A": "66.2", "W→A": "64.5"}, "AT-jmmd": {"D→A": "67.4", "W→A": "66.3"}}

TABLE1_ROWS = (  # (variant, method, train data)
    ("source", "{net} (the source network, source/)", "S"),
    ("S", "{net} (adaptation stage, --streams=s)", "S"),
    ("RevGrad", "RevGrad [5]", "S + T"),
    ("Tf", "{net}", "T_f"),
    ("S+Tf", "{net}", "S + T_f"),
    ("S+Tf+AT", "{net} + L_AT", "S + T_f"),
    ("full-noAT", "Ours wo L_AT", "S + T_f + T + S_f"),
    ("full", "Ours w L_AT", "S + T_f + T + S_f"))
ABLATION_ROWS = (  # Table 3 (EM variants with and without L_AT) and Table 4 (criteria); "full" last, the reference
    ("EM-A", "EM-A + L_AT (synchronous M_post, --sync_every=1)"),
    ("EM-B", "EM-B + L_AT (no threshold, --threshold=0)"),
    ("EM-C", "EM-C + L_AT (no LR restart, --norestart_lr)"),
    ("EM-A-noAT", "EM-A wo L_AT (--sync_every=1 --beta=0)"),
    ("EM-B-noAT", "EM-B wo L_AT (--threshold=0 --beta=0)"),
    ("EM-C-noAT", "EM-C wo L_AT (--norestart_lr --beta=0)"),
    ("AT-l1", "criterion L1 (--attention_criterion=l1)"),
    ("AT-mmd", "criterion MMD (--attention_criterion=mmd)"),
    ("AT-jmmd", "criterion JMMD (--attention_criterion=jmmd)"),
    ("full+augT", "beyond the paper: target consistency for L_EM (--augment_streams=t)"),
    ("full", "Ours w L_AT (criterion L2, reference)"))


def full_method(config):
    """What the pipeline's main run ("full": the flags as given) is, read from the settings it ran with.

    Returns (method, short, paper_variant): the Table-1 method text, a short label for the plots, and the paper's
    row to compare it with: "full" (Ours w L_AT), "full-noAT" when --beta=0, None (no paper figure) when a
    setting beyond the paper (--augment_*) is on. Runs recorded before a setting existed ran without it.
    """
    config = config or {}
    with_at = float(config.get("beta", 1.0)) > 0
    method = "Ours w L_AT" if with_at else "Ours wo L_AT (--beta=0)"
    short = "w L_AT (DAAA)" if with_at else "wo L_AT (beta = 0)"
    streams = list(config.get("augment_streams") or ())
    if not streams:
        return method, short, ("full" if with_at else "full-noAT")
    beyond = [f"--augment_streams={','.join(streams)}"] + [
        f"--augment_{k}={config[f'augment_{k}']:g}" for k in ("cutout", "shift") if config.get(f"augment_{k}")]
    return f"{method} + beyond the paper ({' '.join(beyond)})", f"{short}\n+ beyond the paper", None


def paper_value(task, variant):
    """The paper's accuracy (a string, % or 'very low') for ``variant`` on ``task``, or '—'."""
    if task == "MNIST→MNIST-M":
        return PAPER_MNIST.get(variant, "—")
    if task in OFFICE_TASKS:
        if variant in PAPER_OFFICE_T2:
            return PAPER_OFFICE_T2[variant].split()[OFFICE_TASKS.index(task)]
        return PAPER_OFFICE_T34.get(variant, {}).get(task, "—")
    return "—"
