"""The results report: runs/<exp>/ -> results.md (Tables 1, 3, 4 style, mean ± std over seeds), results.json and
PNG plots (target accuracy per epoch, the L_AT trend of Fig. 4 left, the attention maps of Fig. 5).

Every number of ours is read from the runs' metrics.json files; the paper's published numbers are constants in
daaa_tf.experiments. Works on partial runs: a variant that was not run is a missing row, and the report lists what
it found.
Layout read (see ``daaa_tf.pipeline.adapt_dir``): <run_dir>/source/metrics.json (the source network),
<run_dir>/adapt/metrics.json (full method, first seed), <run_dir>/variants/<variant>/seed<k>/metrics.json.
"""

import dataclasses
import os
import re

import numpy as np

from daaa_tf import MissingFileError, UserError, io
from daaa_tf.experiments import ABLATION_ROWS, PAPER_SOURCE_TEST, TABLE1_ROWS, full_method, paper_value


@dataclasses.dataclass
class Run:
    variant: str
    seed: int
    path: str
    metrics: dict

    @property
    def accuracy(self):
        return float(self.metrics["target_test_accuracy"])


def _seed_of(path, metrics, default=0):
    seed = (metrics.get("config") or {}).get("seed")
    if seed is not None:
        return int(seed)
    m = re.search(r"seed(\d+)$", os.path.basename(os.path.normpath(path)))
    return int(m.group(1)) if m else default


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def collect(run_dir):
    """Finds every finished run. Returns (runs {variant: [Run, ...] sorted by seed}, incomplete [dirs], notes)."""
    if io.gfile.exists(run_dir) and not io.gfile.isdir(run_dir):
        raise UserError(f"run directory {run_dir!r} is a file (expected runs/<exp> written by trainers.pipeline)")
    if not io.gfile.isdir(run_dir):
        raise MissingFileError(f"run directory {run_dir!r} does not exist (expected runs/<exp> written by "
                               "trainers.pipeline)")
    runs, incomplete, notes = {}, [], []

    def add(variant, path):
        mfile = os.path.join(path, "metrics.json")
        try:
            metrics = io.read_json(mfile)
        except UserError as e:  # cut short or edited: a counted skip, named in the report
            notes.append(f"{str(e).split(';')[0]}; left out")
            return
        if metrics is None:
            incomplete.append(path)
            return
        if not isinstance(metrics, dict) or not _is_number(metrics.get("target_test_accuracy")):
            notes.append(f"{mfile} has no numeric target_test_accuracy; left out")
            return
        run = Run(variant, _seed_of(path, metrics), path, metrics)
        if any(r.seed == run.seed for r in runs.get(variant, [])):
            notes.append(f"{path}: a second {variant} run with seed {run.seed}; left out")
            return
        runs.setdefault(variant, []).append(run)

    if io.gfile.isdir(os.path.join(run_dir, "source")):
        add("source", os.path.join(run_dir, "source"))
    if io.gfile.isdir(os.path.join(run_dir, "adapt")):
        add("full", os.path.join(run_dir, "adapt"))
    for vdir in sorted(io.gfile.glob(os.path.join(run_dir, "variants", "*"))):
        for sdir in sorted(io.gfile.glob(os.path.join(vdir, "seed*"))):
            if io.gfile.isdir(sdir):
                add(os.path.basename(vdir), sdir)
    for v in runs:
        runs[v].sort(key=lambda r: r.seed)
    return runs, incomplete, notes


def summarize(runs):
    """{variant: {"n", "seeds", "accuracies", "mean", "std"}} in percent; std is the sample std (ddof=1), 0 if n=1."""
    out = {}
    for v, rs in runs.items():
        acc = np.array([r.accuracy for r in rs], np.float64) * 100.0
        out[v] = {"n": len(rs), "seeds": [r.seed for r in rs], "accuracies": acc.tolist(),
                  "mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0}
    return out


def _domain_letter(spec):
    base = os.path.basename(os.path.normpath(str(spec).partition(":")[2] or str(spec))).lower()
    return {"amazon": "A", "dslr": "D", "webcam": "W"}.get(base)


def detect_task(runs):
    """The paper's task name for these runs ("MNIST→MNIST-M", "D→A", ...), or None if it is not one of them."""
    src = runs.get("source", [None])[0]
    source = (src.metrics.get("source") if src else None) or ""
    target = (src.metrics.get("target") if src else None) or ""
    if not target:
        for rs in runs.values():
            target = (rs[0].metrics.get("config") or {}).get("target", "") or target
    if source.startswith("office31") and target.startswith("office31"):
        s, t = _domain_letter(source), _domain_letter(target)
        return f"{s}→{t}" if s and t else None
    if "mnist_m" in target or target == "demo":
        return "MNIST→MNIST-M"
    return None


def _fmt(s):
    return f"{s['mean']:.2f} ± {s['std']:.2f}" if s["n"] > 1 else f"{s['mean']:.2f}"


def _table(rows, stats, task, net):
    lines = ["| Method | Train data | Ours: target test acc. (%) | n | seeds | Paper (%) |",
             "|---|---|---|---|---|---|"]
    for row in rows:  # (variant, method, train data[, the paper's row to compare with])
        variant, method = row[0], row[1].format(net=net)
        data = row[2] if len(row) > 2 else "S + T_f + T + S_f"
        if variant in stats:
            s = stats[variant]
            lines.append(f"| {method} | {data} | {_fmt(s)} | {s['n']} | {','.join(map(str, s['seeds']))} | "
                         f"{paper_value(task, row[3] if len(row) > 3 else variant)} |")
    return lines


def _full(runs):
    """``experiments.full_method`` of the main run's settings: the pipeline's main run ("full") is whatever its
    flags say, e.g. the opt-in consistency config (--beta=0 --augment_*)."""
    return full_method(runs["full"][0].metrics.get("config") if runs.get("full") else None)


def _full_rows(rows, runs):
    """``rows`` with the "full" row named after the settings its run was made with (``_full``)."""
    method, _, paper = _full(runs)
    # The ablation table's reference row keeps its " (criterion L2, reference)".
    return [(v, method + m.removeprefix("Ours w L_AT"), "S + T_f + T + S_f", paper) if v == "full" else (v, m, *rest)
            for v, m, *rest in rows]


def _named(run_dir):
    """The run directory as the user named it (a published report carries no absolute temporary path)."""
    return str(run_dir) if io.is_remote(run_dir) else os.path.normpath(run_dir)


def _code_lines(runs):
    """Which code made the runs (their metrics.json "code"): one line, or one per version when they differ."""
    made, unknown = {}, "not recorded (runs from before daaa-tf recorded it)"
    for rs in runs.values():
        for r in rs:
            made.setdefault(r.metrics.get("code") or unknown, []).append(r)
    if len(made) == 1:
        return [f"- code: {next(iter(made))}, all runs"]
    return [f"- code: {code}: {len(rs)} run(s)" for code, rs in sorted(made.items())]


def results_markdown(run_dir, runs, stats, task, incomplete, notes, plots):
    """The text of results.md."""
    src = runs.get("source", [None])[0]
    arch = (src.metrics.get("arch") if src else None) or next(
        ((rs[0].metrics.get("config") or {}).get("arch") for rs in runs.values() if rs), None) or "digit_cnn"
    net = "ResNet-50" if arch == "resnet50" else "CNN"
    demo = bool(src and str(src.metrics.get("target", "")).startswith("demo"))
    lines = [f"# Results: {_named(run_dir)}", ""]
    task_note = task or "not one of the paper's tasks (no paper column)"
    if demo:
        task_note += " (the embedded demo: real MNIST digits -> an MNIST-M-style stand-in, far smaller than the " \
                     "paper's data; the paper column is for orientation only)"
    lines += [f"Task: {task_note}.", "",
              "Target-test accuracy in %, mean ± sample standard deviation (ddof=1) over the seeds found; n = "
              "number of seeds. Every number of ours is read from the runs' metrics.json.", "", "## What was found",
              ""]
    for v in [r[0] for r in TABLE1_ROWS] + [r[0] for r in ABLATION_ROWS[:-1]] + sorted(
            set(runs) - {r[0] for r in TABLE1_ROWS + ABLATION_ROWS}):
        if v in runs:
            paths = ", ".join(os.path.relpath(r.path, run_dir) for r in runs[v])
            lines.append(f"- {v}: {len(runs[v])} run(s): {paths}")
    missing = [r[0] for r in TABLE1_ROWS if r[0] not in runs]
    if missing:
        lines.append(f"- Table-1 rows not run (no metrics.json): {', '.join(missing)}")
    for path in incomplete:
        lines.append(f"- incomplete (directory without metrics.json: still running or stopped): "
                     f"{os.path.relpath(path, run_dir)}")
    lines += _code_lines(runs)
    lines += [f"- note: {n}" for n in notes]
    if not runs:
        lines.append("- no finished run at all: run `python -m trainers.pipeline` first")
    lines += ["", f"## Table 1 style ({task or 'this task'})", ""] + _table(
        _full_rows(TABLE1_ROWS, runs), stats, task, net)
    if src is not None and "source_test_accuracy" in src.metrics:
        lines += ["", f"Source network on the source test split: {100 * src.metrics['source_test_accuracy']:.2f} % "
                  f"(paper: {PAPER_SOURCE_TEST.get(task, '—')})."]
    if any(r[0] in stats for r in ABLATION_ROWS[:-1]):
        lines += ["", "## Ablations (Table 3: EM variants; Table 4: alignment criteria)", "",
                  "The paper reports these on Office-31 only; its column is filled for Office-31 tasks.", ""]
        lines += _table(_full_rows(ABLATION_ROWS, runs), stats, task, net)
    others = sorted(set(stats) - {r[0] for r in TABLE1_ROWS + ABLATION_ROWS})
    if others:
        lines += ["", "## Other variants", ""] + _table([(v, v, "—") for v in others], stats, task, net)
    lines += ["", "## Runs", "", "| Variant | Seed | Target test acc. (%) | Steps | Train seconds | Directory |",
              "|---|---|---|---|---|---|"]
    for v in sorted(runs):
        for r in runs[v]:
            steps, secs = r.metrics.get("steps"), r.metrics.get("train_seconds")
            if steps is None:
                steps = f"{r.metrics['epochs']} epochs" if "epochs" in r.metrics else "—"
            lines.append(f"| {v} | {r.seed} | {100 * r.accuracy:.2f} | {steps} | "
                         f"{'—' if secs is None else f'{secs:.0f}'} | {os.path.relpath(r.path, run_dir)} |")
    lines += ["", "## Plots", ""]
    for name, (path, caption) in plots.items():
        lines.append(f"- {caption}: ![{name}]({os.path.basename(path)})" if path else f"- {name}: {caption}")
    return "\n".join(lines) + "\n"


def make_report(run_dir, out_dir=None, num_images=6, load_images=None):
    """Writes results.md, results.json and the PNG plots into ``out_dir`` (default ``run_dir``).

    ``load_images(spec, image_size, n)`` -> (uint8 [n, H, W, 3], labels) picks the target test images of the
    attention grid (default: ``daaa_tf.report_plots.target_test_images``). Returns the results.json dict.
    """
    from daaa_tf.report import plots as rp

    out_dir = out_dir or run_dir
    runs, incomplete, notes = collect(run_dir)
    stats = summarize(runs)
    task = detect_task(runs)
    io.gfile.makedirs(out_dir)
    plots = {
        "accuracy": rp.plot_accuracy(runs, os.path.join(out_dir, "accuracy_vs_epoch.png")),
        "at_trend": rp.plot_at_trend(runs, os.path.join(out_dir, "at_trend.png")),
        "attention": rp.plot_attention(run_dir, runs, os.path.join(out_dir, "attention_maps.png"), num_images,
                                       load_images or rp.target_test_images),
    }
    text = results_markdown(run_dir, runs, stats, task, incomplete, notes, plots)
    io.write_text(os.path.join(out_dir, "results.md"), text)
    result = {"run_dir": _named(run_dir), "task": task, "stats": stats,
              "paper": {v: paper_value(task, _full(runs)[2] if v == "full" else v) for v in stats},
              "incomplete": [os.path.relpath(p, run_dir) for p in incomplete], "notes": notes,
              "plots": {k: (os.path.basename(p) if p else None) for k, (p, _) in plots.items()},
              "plot_notes": {k: c for k, (_, c) in plots.items()}}
    io.write_json(os.path.join(out_dir, "results.json"), result)
    return result
