#!/usr/bin/env python3
"""Runs every criterion test executable that meson knows of in the given
build directories, each with a TAP report, and sums the results.

Usage: run-tests.py [--totals FILE] [--work DIR] [--suite-in SUITE:BUILD ...]
                    BUILD_DIR [BUILD_DIR ...]

Executables in meson's 'kvm' suite open /dev/kvm. They run inside the test
bed (tests/testbed: a QEMU VM with an ordinary KVM), one VM boot per build
directory, unless KILN_TESTBED=host, which runs them directly on a host
whose /dev/kvm works; inside the test bed (KILN_IN_TESTBED=1) that is the
default. Everything else runs here. If the test bed stops
making progress (a stall, reported as such) the executables not yet done
run again in a new VM; an executable during which the VM stalled twice
counts as failed. Under TCG (the test bed's emulated CPU), when tests of
an executable failed and its output has a guest triple fault, or one of
them timed out, those tests
run again, each on its own, up to TCG_RERUNS times while their reruns
fail the same way; the last run counts. Every run is printed, and the
executables run again are listed before the totals (docs/testbed.md says
why).

--suite-in SUITE:BUILD runs the test bed's executables of meson suite
SUITE ('linux' or 'guests', tests/integration/meson.build) in BUILD only,
and in none of the other build directories given (when BUILD is one of
them): under TCG every
executable is slow, and scripts/test.sh runs each in one build (see
docs/testbed.md, "One build each"). KILN_TEST_ALL_BUILDS=1 ignores it.

Prints one line per executable with its time (and the output of failing
ones) and, last, "tests: N passed, N failed, N skipped"; with --totals also
writes "N N N" (passed failed skipped) to FILE for scripts/test.sh. --work
DIR holds the runner's state and the test bed's logs (shared with the VM);
default a temporary folder. Exits 1 if anything failed.

Internal: --inside STATE --names A,B,... runs just those executables and
appends a JSON line per executable to STATE (what the host reads back)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# KILN_TESTBED_SCRIPT: another test bed, for the runner's own tests
TESTBED = os.environ.get('KILN_TESTBED_SCRIPT') or os.path.join(TOP, 'tests', 'testbed', 'testbed.py')
# the bed's own kernel dies now and then under TCG (docs/testbed.md); an
# executable it died under runs in a new VM, and fails after this many deaths
MAX_STALLS_PER_TEST = 3
EXEC_TIMEOUT_CAP = 1200
# kiln's words when KVM reports a triple fault (vcpu/vcpu.c)
TRIPLE_FAULT = 'guest triple-faulted (KVM_EXIT_SHUTDOWN)'
# snap_where.c's words for a guest whose registers hold the bed's own kernel
# addresses (docs/testbed.md, "Guest registers from the bed"): the same
# emulation defect, treated as a triple fault
BED_REGISTERS = "registers hold the test bed's own kernel addresses"
# under TCG, how many times what failed with a triple fault runs again
TCG_RERUNS = 2


def time_scale():
    try:
        return max(1, int(os.environ.get('KILN_TIME_SCALE', '1')))
    except ValueError:
        return 1


def parse_tap(path):
    """(passed, failed, skipped, failures, states): the failures' TAP
    descriptions and each test's state by its name ('suite::test')"""
    passed = failed = skipped = 0
    failures = []
    states = {}
    try:
        f = open(path, errors='replace')
    except OSError:
        return 0, 0, 0, [], {}
    with f:
        for line in f:
            line = line.strip()
            state = 'not ok' if line.startswith('not ok') else 'ok' if line.startswith('ok') else None
            if state is None:
                continue
            rest = line[len(state):].strip().lstrip('0123456789').strip().lstrip('-').strip()
            name = rest.split()[0] if rest else ''
            if state == 'not ok':
                failed += 1
                failures.append(rest)
                states[name] = 'failed'
            elif '# SKIP' in line.upper():
                skipped += 1
                states[name] = 'skipped'
            else:
                passed += 1
                states[name] = 'passed'
    return passed, failed, skipped, failures, states


def run_one(build, test, only=None):
    """Runs one executable in its own process group with its output in a
    file, so a timeout kills everything it started and nothing it left
    behind can keep the runner waiting. `only`: one test, 'suite/test'."""
    env = dict(os.environ)
    env.update(test.get('env') or {})
    jobs = '1' if any('integration' in s for s in test.get('suite') or []) else '2'
    fd, tap_path = tempfile.mkstemp(suffix='.tap')
    os.close(fd)
    out_file = tempfile.TemporaryFile()
    cmd = test['cmd'] + ['--tap=' + tap_path, '-j' + jobs, '--verbose=0']
    if only:
        cmd.append('--filter=' + only)
    timeout = min((test.get('timeout') or 600) * time_scale(), EXEC_TIMEOUT_CAP)
    start = time.time()
    proc = subprocess.Popen(cmd, env=env, cwd=test.get('workdir') or build,
                            stdin=subprocess.DEVNULL, stdout=out_file, stderr=subprocess.STDOUT,
                            start_new_session=True)
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        rc = -1
    try:  # the whole group: criterion's workers, kilns, helper scripts
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    if timed_out:
        proc.wait()
    took = time.time() - start
    out_file.seek(0)
    out = out_file.read().decode(errors='replace')
    out_file.close()
    passed, failed, skipped, failures, states = parse_tap(tap_path)
    os.unlink(tap_path)
    if timed_out:
        failed += 1
        failures.append('%s timed out after %d s (killed with its process group)'
                        % (test['name'], timeout))
    elif rc != 0 and failed == 0:
        failed += 1
        failures.append('%s exited with status %d outside any test' % (test['name'], rc))
    return {'name': test['name'], 'passed': passed, 'failed': failed, 'skipped': skipped,
            'failures': failures, 'states': states, 'output': out[-20000:], 'took': took,
            'assertions': assertion_heads(out.splitlines()) if failed else [],
            'triple_fault': TRIPLE_FAULT in out or BED_REGISTERS in out,
            'timed_out': any(' timed out' in f for f in failures)}


def report(build, res):
    label = '%s/%s' % (os.path.basename(build.rstrip('/')), res['name'])
    where = ' [test bed]' if res.get('testbed') else ''
    print('%-40s %3d passed, %d failed, %d skipped  (%.1fs)%s'
          % (label, res['passed'], res['failed'], res['skipped'], res['took'], where), flush=True)
    for name in res.get('rerun_after') or []:
        print('    RERUN after a guest triple fault under TCG; the first run failed: ' + name)
    if res['failed']:
        for name in res['failures']:
            print('    FAILED: ' + name)
        if res['output']:
            lines = res['output'].splitlines()  # the last 20000 characters
            heads = res.get('assertions')
            if heads:
                print('    ---- assertions (the first lines of each message) ----')
                print('\n'.join('    ' + l for l in heads))
            print('    ---- output (its end) ----')
            print('\n'.join('    ' + l for l in lines[-60:]), flush=True)


def assertion_heads(lines):
    """The lines criterion prints where an assertion fails, each with the
    first lines of its message: a message that quotes a guest's whole
    console would otherwise push its own first line out of the tail shown."""
    out = []
    for i, line in enumerate(lines):
        if 'Assertion Failed' in line or 'Unexpected signal' in line or 'Timed out' in line:
            out.extend(l[:300] for l in lines[i:i + 5])
            if len(out) >= 60:
                break
    return out[:60]


def meson_tests(build):
    return json.loads(subprocess.check_output(['meson', 'introspect', '--tests', build]))


def suites(test):
    return [s.split(':')[-1] for s in test.get('suite') or []]


def needs_kvm(test):
    return 'kvm' in suites(test)


def elsewhere(test, build, suite_in):
    """The build that runs `test` instead of `build` (--suite-in), or None."""
    for suite in suites(test):
        home = suite_in.get(suite)
        if home and os.path.realpath(home) != os.path.realpath(build):
            return home
    return None


def read_state(path):
    done, started = {}, None
    try:
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by the VM's end
                if 'start' in rec:
                    started = rec['start']
                else:
                    done[rec['name']] = rec
                    started = None
    except OSError:
        pass
    return done, started


def run_in_testbed(build, tests, work):
    """Runs `tests` inside the test bed, a new VM whenever one stalls;
    yields each executable's result as the host learns it."""
    state = os.path.join(work, 'state-%s.jsonl' % os.path.basename(os.path.abspath(build)))
    open(state, 'w').close()
    stalls = {}
    results = {}
    while True:
        todo = [t['name'] for t in tests if t['name'] not in results]
        if not todo:
            return results
        cmd = [sys.executable, TESTBED, '--share', TOP, '--share', work,
               '--log-dir', os.path.join(work, 'testbed'),
               '--', sys.executable, os.path.abspath(__file__),
               '--inside', state, '--names', ','.join(todo), build]
        print('# %s: %d executables in the test bed' % (build, len(todo)), flush=True)
        start = time.time()
        rc = subprocess.call(cmd, cwd=os.getcwd())
        done, started = read_state(state)
        for name, rec in done.items():
            if name not in results:
                rec['testbed'] = rec['reported'] = True
                results[name] = rec
        if rc in (0, 1) and all(n in results for n in todo):
            return results
        # the VM stalled, died or timed out: what ran then runs again in a new VM
        culprit = started or next((n for n in todo if n not in results), None)
        stalls[culprit] = stalls.get(culprit, 0) + 1
        if stalls[culprit] >= MAX_STALLS_PER_TEST:
            results[culprit] = {'name': culprit, 'passed': 0, 'failed': 1, 'skipped': 0,
                                'failures': ['the test bed failed %d times during %s (see the '
                                             'test bed messages above)'
                                             % (MAX_STALLS_PER_TEST, culprit)],
                                'output': '', 'took': 0.0, 'testbed': True}
        left = len([n for n in todo if n not in results])
        print('# test bed: the VM ended (status %d) after %.0f s during %s%s'
              % (rc, time.time() - start, culprit,
                 '; the %d executables left run in a new VM' % left if left else ''), flush=True)


def rerun_failed(build, test, res):
    """Runs again what failed in `res`: each failed test on its own when
    TAP named them all, else the whole executable. Returns the result that
    counts: `res`'s passes and skips, the reruns' outcomes."""
    names = [f.split()[0] for f in res['failures'] if f.split()]
    if len(names) != res['failed'] or not all('::' in n for n in names):
        new = run_one(build, test)
        new['took'] += res['took']
        return new
    new = dict(res, failed=0, failures=[], output='', assertions=[], triple_fault=False,
               timed_out=False)
    for name in names:
        one = run_one(build, test, only=name.replace('::', '/'))
        new['took'] += one['took']
        if one['states'].get(name) == 'passed' and not one['failed']:
            new['passed'] += 1
            continue
        new['failed'] += 1
        new['failures'] += one['failures'] or [name + ' (its rerun did not report it)']
        new['output'] += one['output']
        new['assertions'] += one['assertions']
        new['triple_fault'] |= one['triple_fault']
        new['timed_out'] = new.get('timed_out') or one.get('timed_out')
    new['output'] = new['output'][-20000:]
    return new


def inside(state, names, build):
    """In the VM: run the named executables, one state line each."""
    by_name = {t['name']: t for t in meson_tests(build)}
    tcg = os.environ.get('KILN_TESTBED_ACCEL') == 'tcg'
    rc = 0
    for name in names:
        with open(state, 'a') as f:
            f.write(json.dumps({'start': name}) + '\n')
        res = run_one(build, by_name[name])
        rerun_after = []
        for _ in range(TCG_RERUNS if tcg else 0):
            if not (res['failed'] and (res['triple_fault'] or res.get('timed_out'))):
                break
            report(build, res)
            print('# %s: %s under TCG; running what failed once more (see docs/testbed.md, '
                  '"Rare triple faults")' % (name, 'a guest triple-faulted' if res['triple_fault']
                                             else 'a test timed out'), flush=True)
            rerun_after += res['failures']
            res = rerun_failed(build, by_name[name], res)
        if rerun_after:
            res['rerun_after'] = rerun_after
        with open(state, 'a') as f:
            f.write(json.dumps(res) + '\n')
            f.flush()
            os.fsync(f.fileno())
        report(build, res)
        if res['failed']:
            rc = 1
    return rc


def main():
    args = sys.argv[1:]
    totals_file = work = None
    if args[:1] == ['--inside']:
        names = args[3].split(',')
        return inside(args[1], names, args[4])
    if args[:1] == ['--totals']:
        totals_file, args = args[1], args[2:]
    if args[:1] == ['--work']:
        work, args = os.path.abspath(args[1]), args[2:]
    suite_in = {}
    while args[:1] == ['--suite-in']:
        suite, _, home = args[1].partition(':')
        if not home:
            print('--suite-in takes SUITE:BUILD, not %r' % args[1])
            return 2
        suite_in[suite], args = home, args[2:]
    if os.environ.get('KILN_TEST_ALL_BUILDS') == '1':
        suite_in = {}
    # a suite whose build is not in this run runs in every build that is
    given = [os.path.realpath(b) for b in args]
    suite_in = {k: v for k, v in suite_in.items() if os.path.realpath(v) in given}
    work = work or tempfile.mkdtemp(prefix='kiln-tests.')
    os.makedirs(work, exist_ok=True)
    # inside the test bed already (its stage2 sets KILN_IN_TESTBED): a bed
    # inside the bed would be TCG under TCG, so run everything right here
    default_where = 'host' if os.environ.get('KILN_IN_TESTBED') == '1' else 'vm'
    where = os.environ.get('KILN_TESTBED', default_where)
    if where not in ('vm', 'host'):
        print('KILN_TESTBED must be vm or host, not %r' % where)
        return 2
    only = os.environ.get('KILN_TEST_FILTER')
    total = [0, 0, 0]
    reruns = []
    for build in args:
        tests = [t for t in meson_tests(build) if not only or only in t['name']]
        moved = {}
        for t in tests:
            home = elsewhere(t, build, suite_in)
            if home:
                moved.setdefault(home, []).append(t['name'])
        for home, names in sorted(moved.items()):
            print('# %s: %d executables run in %s only (--suite-in): %s'
                  % (build, len(names), home, ', '.join(names)), flush=True)
        tests = [t for t in tests if not elsewhere(t, build, suite_in)]
        local = [t for t in tests if where == 'host' or not needs_kvm(t)]
        bed = [t for t in tests if t not in local]
        results = []
        for t in local:
            res = run_one(build, t)
            report(build, res)
            results.append(res)
        if bed:
            start = time.time()
            got = run_in_testbed(build, bed, work)
            print('# %s: test bed done in %.0f s' % (build, time.time() - start), flush=True)
            for t in bed:
                res = got[t['name']]
                if not res.get('reported'):  # the VM printed the others as they ran
                    report(build, res)
                results.append(res)
        for res in results:
            if res.get('rerun_after'):
                reruns.append('%s/%s' % (os.path.basename(build.rstrip('/')), res['name']))
            total[0] += res['passed']
            total[1] += res['failed']
            total[2] += res['skipped']
    if reruns:
        print('# run again after a guest triple fault under TCG (the last run counts): '
              + ', '.join(reruns))
    print('tests: %d passed, %d failed, %d skipped' % tuple(total))
    if totals_file:
        with open(totals_file, 'w') as f:
            f.write('%d %d %d\n' % tuple(total))
    return 1 if total[1] else 0


if __name__ == '__main__':
    sys.exit(main())
