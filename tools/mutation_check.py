"""Mutation check of the method, data and export code (outside the normal suite; see tools/mutations.py).

Copies the repository's files (tracked + untracked, not ignored) to a scratch directory once, then for each
listed one-line mutation: applies it to the scratch copy, runs the mutation's own small test selection with a
timeout, restores the file. A mutation is *caught* when its tests fail (or error, or time out) and *survives*
when they pass (or none of its test files exist). Prints a table and ``score: caught/total``.

    PYTHONPATH=$PWD nice python tools/mutation_check.py                  # all mutations
    PYTHONPATH=$PWD nice python tools/mutation_check.py --list           # the list, no runs
    PYTHONPATH=$PWD nice python tools/mutation_check.py --only 3,7       # some of them (ids)
    PYTHONPATH=$PWD nice python tools/mutation_check.py --tests-from=<commit>   # the tests as at a commit
    PYTHONPATH=$PWD nice python tools/mutation_check.py --baseline       # first check every selection is green

Exit status: 0 when every selected mutation is caught, 1 otherwise (2: a mutation no longer applies, i.e. its
original text is not found exactly once: update the list together with the code).
Every bug found later gets a mutation here (the list grows; the goal stays "all caught").
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mutations import MUTATIONS  # noqa: E402

REPO = os.path.dirname(HERE)


def copy_repo(dest, tests_from=None):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = os.path.join(REPO, rel)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))
    if tests_from:
        shutil.rmtree(os.path.join(dest, "tests"), ignore_errors=True)
        archive = subprocess.run(["git", "archive", tests_from, "tests"], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)


def selection(tests, root):
    """The mutation's pytest arguments whose test files exist in ``root`` (node ids and -k kept)."""
    out = []
    for t in tests:
        path = t.split("::")[0]
        if path.startswith("-") or os.path.exists(os.path.join(root, path)):
            out.append(t)
    return out if any(not t.startswith("-") for t in out) else []


def run_pytest(root, args, timeout):
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "addopts=", *args]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        rc, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-1:]
    except subprocess.TimeoutExpired:
        rc, tail = "timeout", ["timeout"]
    return rc, (tail[0] if tail else ""), time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--list", action="store_true", help="print the mutations and exit")
    p.add_argument("--only", default="", help="comma-separated mutation ids")
    p.add_argument("--tests-from", default=None, help="use the tests/ directory of this git commit")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per mutation's test run")
    p.add_argument("--baseline", action="store_true", help="run each selection unmutated first (must pass)")
    args = p.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or str(m["id"]) in args.only.split(",")]
    if args.list:
        for m in chosen:
            print(f"{m['id']:>3} {m['file']}: {m['what']}\n      tests: {' '.join(m['tests'])}")
        print(f"{len(chosen)} mutations")
        return 0
    scratch = tempfile.mkdtemp(prefix="daaa_mutation_")
    try:
        copy_repo(scratch, args.tests_from)
        for m in chosen:  # every mutation must still apply to the current code
            text = open(os.path.join(scratch, m["file"])).read()
            if text.count(m["old"]) != 1:
                print(f"mutation {m['id']} ({m['file']}): original text found {text.count(m['old'])} times, "
                      "expected once: update tools/mutations.py", file=sys.stderr)
                return 2
        if args.baseline:
            seen = set()
            for m in chosen:
                sel = tuple(selection(m["tests"], scratch))
                if sel and sel not in seen:
                    seen.add(sel)
                    rc, tail, secs = run_pytest(scratch, list(sel), args.timeout)
                    print(f"baseline {' '.join(sel)}: rc={rc} {tail} ({secs:.0f} s)", flush=True)
                    if rc != 0:
                        print("baseline not green: the scores below would be meaningless", file=sys.stderr)
                        return 2
        caught, t0 = 0, time.perf_counter()
        print(f"{'id':>3}  {'result':<9} {'secs':>5}  mutation", flush=True)
        for m in chosen:
            path = os.path.join(scratch, m["file"])
            original = open(path).read()
            sel = selection(m["tests"], scratch)
            try:
                with open(path, "w") as f:
                    f.write(original.replace(m["old"], m["new"], 1))
                if sel:
                    rc, tail, secs = run_pytest(scratch, sel, args.timeout)
                else:
                    rc, tail, secs = 0, "no test files", 0.0
            finally:
                with open(path, "w") as f:
                    f.write(original)
            ok = rc not in (0, 5)  # 5: no tests collected
            caught += ok
            print(f"{m['id']:>3}  {'caught' if ok else 'SURVIVED':<9} {secs:>5.0f}  {m['file']}: {m['what']}"
                  f"  [{tail}]", flush=True)
        print(f"score: {caught}/{len(chosen)} caught ({time.perf_counter() - t0:.0f} s)")
        return 0 if caught == len(chosen) else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
