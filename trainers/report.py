"""Results report.  python -m trainers.report runs/<exp>   (or: python -m trainers.report --run_dir=runs/<exp>)

Writes <run_dir>/results.md (Table 1 / 3 / 4 style, mean ± std over the seeds found, the paper's numbers beside
ours), results.json and PNG plots (accuracy per epoch, the L_AT trend, attention maps), and prints results.md.
Works on partial runs: what was not run is listed as missing.
"""

import os
import sys

from daaa_tf import UserError
from daaa_tf.config import ReportConfig
from trainers import flags as f


def main(argv):
    if len(argv) > 2:
        raise UserError(f"expected at most one run directory, got {' '.join(argv[1:])}")
    from daaa_tf.report.tables import make_report

    cfg = f.from_flags(ReportConfig, **({"run_dir": argv[1]} if len(argv) == 2 else {}))
    out_dir = cfg.report_dir or cfg.run_dir
    result = make_report(cfg.run_dir, out_dir, cfg.report_images)
    with open(os.path.join(out_dir, "results.md")) as fh:
        print(fh.read())
    for note in result["notes"]:  # runs left out (e.g. a metrics.json that is not JSON), named once more here
        print(f"note: {note}", file=sys.stderr)
    plots = [p for p in result["plots"].values() if p]
    print(f"wrote {os.path.join(out_dir, 'results.md')}, results.json and {len(plots)} plot(s): {', '.join(plots)}")


if __name__ == "__main__":
    f.define_flags(ReportConfig)
    f.run_main(main)
