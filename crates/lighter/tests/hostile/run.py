#!/usr/bin/env python3
"""Runs every case of cases.json against a lighter binary and checks it behaves cleanly.

    python3 run.py --lighter /path/to/lighter [--only SUBSTR] [--json out.json] [--record]
                   [--isolate] [--fast]

--fast skips the cases marked "slow" (seconds each, gigabytes of zeros written); CI runs the rest
through crates/lighter/tests/hostile.rs.

For each case: a fresh store (LIGHTER_ROOT and --root), an empty working directory, an empty
TMPDIR, `timeout 60` and `/usr/bin/time -v`. A case passes when the exit code and stderr phrase
are the recorded ones, nothing panicked, nothing hung, nothing was written outside the temp store
(escape markers, /etc/passwd and /etc/shadow unchanged, cwd and TMPDIR left empty) and the max RSS
stays under the case's `max_rss_mb` (default 512), stderr under `max_stderr_bytes` when given.
A case's "env" (an object) is added to the environment of its setup and command.

Cases with a "bug" field record a known bug: their expect/stderr_contains say what lighter
should do, the run reports them as KNOWN BUG (not a failure) while they misbehave and as FIXED?
once they pass (then drop the "bug" field and record the exit code).

--record prints the observed outcome of every case as JSON (to fill cases.json by hand).
--isolate (root only) re-runs itself in a private mount namespace where /etc is an overlay on a
tmpfs, so a layer that does escape into /etc writes into a throwaway upper directory, which is
then reported per case. Use it: several cases try to overwrite /etc/passwd.

The corpus is made by make.py (python3 make.py); recipes are materialised by make.materialise().
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make  # noqa: E402

UPPER = "/run/lighter-hostile-etc/upper"
WATCH = ["/etc/passwd", "/etc/shadow", "/etc/hosts"]
MARKERS = ["/etc/escape", "/escape", "/tmp/escape", "/tmp/escape-up", "/tmp/escape-deep",
           "/tmp/escape-pax", "/tmp/outer-escape", "/escape-up", "/escape-deep", "/escape-pax"]


def digest(p):
    try:
        with open(p, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        return "unreadable: %s" % e


def markers():
    found = [m for m in MARKERS if os.path.lexists(m)]
    found += ["/tmp/" + n for n in os.listdir("/tmp") if n.startswith(("escape", "outer-escape"))]
    return sorted(set(found))


def upper_entries():
    out = []
    if os.path.isdir(UPPER):
        for dp, dn, fn in os.walk(UPPER):
            for n in dn + fn:
                out.append(os.path.relpath(os.path.join(dp, n), UPPER))
    return sorted(out)


def extract_layer(archive, dest):
    """Writes the first layer of a docker-archive to dest (for `import`)."""
    with tarfile.open(archive, "r:*") as t:
        man = json.load(t.extractfile("manifest.json"))
        data = t.extractfile(man[0]["Layers"][0]).read()
    with open(dest, "wb") as o:
        o.write(data)
    return dest


def archive_tag(archive):
    try:
        with tarfile.open(archive, "r:*") as t:
            man = json.load(t.extractfile("manifest.json"))
            return man[0]["RepoTags"][0]
    except Exception:
        return "hostile/none:latest"


def run_one(lighter, case, keep=False):
    tmp = tempfile.mkdtemp(prefix="lighter-hostile-")
    store, cwd, tmpdir, work = (os.path.join(tmp, n) for n in ("store", "cwd", "tmpdir", "work"))
    for p in (cwd, tmpdir, work):
        os.makedirs(p)
    subs = {"{store}": store, "{work}": work}
    if "file" in case:
        subs["{file}"] = os.path.join(HERE, case["file"])
    if "recipe" in case:
        p = make.materialise(case["recipe"], work)
        subs["{file}"] = p
        subs["{dockerfile}"] = p
        subs["{ctx}"] = os.path.join(work, "ctx")
    if "{layer}" in json.dumps(case["command"]):
        subs["{layer}"] = extract_layer(subs["{file}"], os.path.join(work, "layer"))
    if "{tag}" in json.dumps(case.get("setup", [])) + json.dumps(case["command"]):
        subs["{tag}"] = archive_tag(subs["{file}"])

    def expand(argv):
        out = []
        for a in argv:
            for k, v in subs.items():
                a = a.replace(k, v)
            out.append(a)
        return out

    env = dict(os.environ, LIGHTER_ROOT=store, TMPDIR=tmpdir, NO_COLOR="1")
    env.pop("LIGHTER_DEBUG", None)
    env.update(case.get("env", {}))
    before = {p: digest(p) for p in WATCH}
    marks_before, upper_before = markers(), upper_entries()
    setup_failed = None
    for s in case.get("setup", []):
        r = subprocess.run(["timeout", "60", lighter, "--root", store] + expand(s), cwd=cwd,
                           env=env, capture_output=True)
        if r.returncode != 0:
            setup_failed = "setup %s exited %d: %s" % (s, r.returncode,
                                                      r.stderr.decode("utf-8", "replace")[:200])
    tf = os.path.join(tmp, "time")
    argv = ["/usr/bin/time", "-v", "-o", tf, "timeout", "-k", "5", "60", lighter,
            "--root", store] + expand(case["command"])
    t0 = time.monotonic()
    with open(os.path.join(tmp, "stdout"), "wb") as so:
        r = subprocess.run(argv, cwd=cwd, env=env, stdout=so, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    stderr = r.stderr.decode("utf-8", "replace")
    rss_kb = 0
    try:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(tf).read())
        rss_kb = int(m.group(1)) if m else 0
    except OSError:
        pass
    # time -v prints "Command exited with non-zero status N" into its -o file, not stderr.
    code = r.returncode
    problems = []
    if setup_failed:
        problems.append(setup_failed)
    if "panicked" in stderr:
        problems.append("panic")
    if code in (124, 137):
        problems.append("timeout (60 s)")
    if code < 0 or code > 128 and code not in (124, 137):
        problems.append("killed by signal %d" % (code - 128 if code > 128 else -code))
    if {p: digest(p) for p in WATCH} != before:
        problems.append("/etc/passwd, /etc/shadow or /etc/hosts changed")
    new_marks = sorted(set(markers()) - set(marks_before))
    if new_marks:
        problems.append("escape marker(s): %s" % new_marks)
    new_upper = sorted(set(upper_entries()) - set(upper_before))
    if new_upper:
        problems.append("written into /etc: %s" % new_upper)
    if os.listdir(cwd):
        problems.append("cwd not empty: %s" % os.listdir(cwd)[:5])
    if os.listdir(tmpdir):
        problems.append("TMPDIR not empty: %s" % os.listdir(tmpdir)[:5])
    extra = sorted(set(os.listdir(tmp)) - {"store", "cwd", "tmpdir", "work", "time", "stdout"})
    if extra:
        problems.append("written next to the store: %s" % extra)
    if "max_stderr_bytes" in case and len(stderr) > case["max_stderr_bytes"]:
        problems.append("stderr is %d bytes" % len(stderr))
    if rss_kb > case.get("max_rss_mb", 512) * 1024:
        problems.append("max RSS %d MB" % (rss_kb // 1024))
    first = next((l for l in stderr.splitlines() if l.strip()), "")
    obs = {"exit": code, "first_stderr": first[:300], "stderr_bytes": len(stderr),
           "seconds": round(elapsed, 2), "max_rss_mb": round(rss_kb / 1024, 1),
           "problems": problems}
    # Expectations.
    mismatch = []
    if "exit" in case and case["exit"] != code:
        mismatch.append("exit %d, expected %d" % (code, case["exit"]))
    if case.get("stderr_contains") and case["stderr_contains"] not in stderr:
        mismatch.append("stderr lacks %r" % case["stderr_contains"])
    if case.get("expect") == "ok" and code != 0:
        mismatch.append("expected success")
    if case.get("expect") == "error" and code == 0:
        mismatch.append("expected an error")
    obs["mismatch"] = mismatch
    if keep:
        obs["tmp"] = tmp
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return obs


def isolate():
    """Re-executes this script in a private mount namespace with /etc on a throwaway overlay."""
    script = (
        "set -e; mount --make-rprivate /; mkdir -p /run/lighter-hostile-etc; "
        "mount -t tmpfs none /run/lighter-hostile-etc; "
        "mkdir /run/lighter-hostile-etc/upper /run/lighter-hostile-etc/work; "
        "mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/lighter-hostile-etc/upper,"
        "workdir=/run/lighter-hostile-etc/work /etc; "
        'exec "$@"')
    args = [a for a in sys.argv if a != "--isolate"]
    os.execvp("unshare", ["unshare", "-m", "sh", "-c", script, "sh", sys.executable] + args)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lighter", required=True)
    ap.add_argument("--only", action="append")
    ap.add_argument("--json")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--isolate", action="store_true")
    ap.add_argument("--fast", action="store_true", help='skip cases marked "slow" (CI runs this)')
    a = ap.parse_args()
    if a.isolate:
        isolate()
    lighter = os.path.abspath(a.lighter)
    cases = json.load(open(os.path.join(HERE, "cases.json")))
    if not os.path.isdir(os.path.join(HERE, "corpus")):
        sys.exit("no corpus: run python3 make.py first")
    results = []
    failed = 0
    for c in cases:
        if a.only and not any(o in c["name"] for o in a.only):
            continue
        if a.fast and c.get("slow"):
            continue
        obs = run_one(lighter, c, a.keep)
        bad = obs["problems"] + obs["mismatch"]
        known = c.get("bug")
        if known:
            status = "KNOWN BUG" if bad else "FIXED?"
        else:
            status = "FAIL" if bad else "ok"
        if status == "FAIL":
            failed += 1
        print("%-9s %-52s exit=%-3s %6.2fs %7.1fMB  %s%s" % (
            status, c["name"], obs["exit"], obs["seconds"], obs["max_rss_mb"],
            obs["first_stderr"][:90], ("  [" + "; ".join(bad) + "]") if bad else ""), flush=True)
        results.append(dict(c, observed=obs))
    if a.json:
        with open(a.json, "w") as o:
            json.dump(results, o, indent=1)
    if a.record:
        print(json.dumps([{"name": r["name"], "exit": r["observed"]["exit"],
                           "first_stderr": r["observed"]["first_stderr"]} for r in results],
                         indent=1))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
