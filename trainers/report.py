"""Results report.  python -m trainers.report runs/<exp>   (or: python -m trainers.report --run_dir=runs/<exp>)

Writes <run_dir>/results.md (Table 1 / 3 / 4 style, mean ± std over the seeds found, the paper's numbers beside
ours), results.json and PNG plots (accuracy per epoch, the L_AT trend, attention maps), and prints results.md.
Works on partial runs: what was not run is listed as missing.
"""

import os

from absl import flags

from trainers import flags as f

FLAGS = flags.FLAGS


def define_report_flags():
    if "report_dir" in FLAGS:
        return
    flags.DEFINE_string("report_dir", "", "Where results.md, results.json and the plots go (default: the run "
                        "directory).")
    flags.DEFINE_integer("report_images", 6, "Target test images in the attention-map grid.", lower_bound=1)


def main(argv):
    if len(argv) > 2:
        raise ValueError(f"expected at most one run directory, got {' '.join(argv[1:])}")
    run_dir = argv[1] if len(argv) == 2 else FLAGS.run_dir
    from daaa_tf.report.tables import make_report

    out_dir = FLAGS.report_dir or run_dir
    result = make_report(run_dir, out_dir, FLAGS.report_images)
    with open(os.path.join(out_dir, "results.md")) as fh:
        print(fh.read())
    plots = [p for p in result["plots"].values() if p]
    print(f"wrote {os.path.join(out_dir, 'results.md')}, results.json and {len(plots)} plot(s): {', '.join(plots)}")


if __name__ == "__main__":
    f.define_all()
    define_report_flags()
    f.run_main(main)
