#!/usr/bin/env python3
"""Runs every criterion test executable that meson knows of in the given
build directories, each with a TAP report, and sums the results.

Usage: run-tests.py [--totals FILE] BUILD_DIR [BUILD_DIR ...]
Prints one line per executable (and the output of failing ones) and, last,
"tests: N passed, N failed, N skipped"; with --totals also writes
"N N N" (passed failed skipped) to FILE for scripts/test.sh to sum with
its other checks. Exits 1 if anything failed."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

TAP_LINE = re.compile(r'^(not ok|ok)\b\s*\d*\s*-?\s*(.*)$')


def run_one(build, test):
    env = dict(os.environ)
    env.update(test.get('env') or {})
    jobs = '1' if test.get('suite') and any('integration' in s for s in test['suite']) else '2'
    with tempfile.NamedTemporaryFile('r', suffix='.tap', delete=False) as tf:
        tap_path = tf.name
    cmd = test['cmd'] + ['--tap=' + tap_path, '-j' + jobs, '--verbose=0']
    timeout = test.get('timeout') or 600
    start = time.time()
    try:
        proc = subprocess.run(cmd, env=env, cwd=test.get('workdir') or build,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout)
        out, rc = proc.stdout.decode(errors='replace'), proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b'').decode(errors='replace') + '\n(timed out)\n'
        rc = -1
    took = time.time() - start
    passed = failed = skipped = 0
    failures = []
    with open(tap_path, errors='replace') as f:
        for line in f:
            m = TAP_LINE.match(line.strip())
            if not m:
                continue
            if m.group(1) == 'not ok':
                failed += 1
                failures.append(m.group(2))
            elif '# SKIP' in line.upper():
                skipped += 1
            else:
                passed += 1
    os.unlink(tap_path)
    if rc != 0 and failed == 0:
        # the executable died or timed out outside any test
        failed += 1
        failures.append('%s exited with status %d' % (test['name'], rc))
    return passed, failed, skipped, failures, out, took


def main():
    args = sys.argv[1:]
    totals_file = None
    if args[:1] == ['--totals']:
        totals_file, args = args[1], args[2:]
    builds = args
    only = os.environ.get('KILN_TEST_FILTER')
    total = [0, 0, 0]
    for build in builds:
        tests = json.loads(subprocess.check_output(
            ['meson', 'introspect', '--tests', build]))
        for test in tests:
            if only and only not in test['name']:
                continue
            p, f, s, failures, out, took = run_one(build, test)
            label = '%s/%s' % (os.path.basename(build.rstrip('/')), test['name'])
            print('%-40s %3d passed, %d failed, %d skipped  (%.1fs)' % (label, p, f, s, took),
                  flush=True)
            if f:
                for name in failures:
                    print('    FAILED: ' + name)
                print('    ---- output ----')
                print('\n'.join('    ' + l for l in out.splitlines()[-60:]))
            total[0] += p
            total[1] += f
            total[2] += s
    print('tests: %d passed, %d failed, %d skipped' % tuple(total))
    if totals_file:
        with open(totals_file, 'w') as f:
            f.write('%d %d %d\n' % tuple(total))
    return 1 if total[1] else 0


if __name__ == '__main__':
    sys.exit(main())
