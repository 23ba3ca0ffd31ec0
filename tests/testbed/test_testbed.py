#!/usr/bin/env python3
"""Tests of the test bed (tests/testbed/testbed.py) and of the runner's use
of it (scripts/run-tests.py). The VM tests boot real test-bed VMs (about
10-15 s each under TCG); the runner tests use a fake test bed.

    python3 tests/testbed/test_testbed.py [-v] [-k PATTERN]"""
import contextlib
import importlib.util
import json
import os
import socket
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
TESTBED = os.path.join(HERE, 'testbed.py')


def testbed(*args, env=None, timeout=600, cwd=None):
    p = subprocess.run([sys.executable, TESTBED] + list(args), env=env, cwd=cwd or TOP,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors='replace'), p.stderr.decode(errors='replace')


class Vm(unittest.TestCase):
    def test_status_env_cwd_kvm_shares_and_leftovers_in_one_boot(self):
        """One VM boot checks what needs no other: the exit status, the
        environment and folder, a real KVM with the modules and devices
        kiln's tests use, a writable share over a root whose writes stay
        inside, and that a process the command leaves behind does not keep
        the VM up (each boot costs half a minute under TCG)."""
        env = dict(os.environ, KILN_TESTBED_PROBE='a value with spaces')
        with tempfile.TemporaryDirectory() as share:
            outside = tempfile.mkdtemp()
            try:
                script = ('echo "cwd=$(pwd)"; echo "probe=$KILN_TESTBED_PROBE"; '
                          'python3 -c "import fcntl,os; fd=os.open(\'/dev/kvm\', os.O_RDWR); '
                          'print(\'api\', fcntl.ioctl(fd, 0xAE00))"; '
                          'ls /sys/module | grep -E "^kvm_(amd|intel)$"; '
                          'ls -d /dev/net/tun /dev/vhost-vsock; '
                          'stat -f -c "cgroup=%%T" /sys/fs/cgroup; '
                          'ip -o link show lo | grep -o "state [A-Z]*\\|UP" | head -1; '
                          'echo from-the-vm > %s/made-inside; touch %s/not-shared 2>/dev/null; '
                          'setsid sleep 1000 & exit 7' % (share, outside))
                start = time.monotonic()
                rc, out, err = testbed('--share', share, '--', 'sh', '-c', script, env=env,
                                       cwd=os.path.join(TOP, 'tests'))
                self.assertEqual(rc, 7, err)
                self.assertIn('cwd=%s' % os.path.join(TOP, 'tests'), out)
                self.assertIn('probe=a value with spaces', out)
                self.assertIn('api 12', out)
                self.assertRegex(out, r'kvm_(amd|intel)')
                self.assertIn('/dev/net/tun', out)
                self.assertIn('/dev/vhost-vsock', out)
                self.assertIn('cgroup=cgroup2fs', out)
                self.assertRegex(err, r'testbed: (KVM|TCG) \(')
                with open(os.path.join(share, 'made-inside')) as f:
                    self.assertEqual(f.read(), 'from-the-vm\n')
                # the rest of the host's root is an overlay: writes stay inside
                self.assertFalse(os.path.exists(os.path.join(outside, 'not-shared')))
                # the setsid sleep left behind did not hold the VM
                self.assertLess(time.monotonic() - start, 120)
            finally:
                os.rmdir(outside)

    def test_timeout_stops_the_vm_and_leftovers_die_with_it(self):
        start = time.monotonic()
        rc, out, err = testbed('--timeout', '75', '--', 'sh', '-c', 'sleep 1000 & echo started; sleep 1000')
        self.assertEqual(rc, 124, err)
        self.assertIn('started', out)
        self.assertLess(time.monotonic() - start, 165)

    def test_a_frozen_vm_is_reported_as_a_stall(self):
        """QMP 'stop' freezes the VM: no heartbeat, which the test bed must
        report as a stall (status 125), with the vCPUs' RIPs, within
        --stall seconds and not wait for the command."""
        logs = tempfile.mkdtemp()
        proc = subprocess.Popen([sys.executable, TESTBED, '--stall', '20', '--log-dir', logs,
                                 '--', 'sh', '-c', 'echo ready; sleep 600'], cwd=TOP,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = proc.stdout.readline().decode()
        self.assertEqual(out.strip(), 'ready')
        jobdir = os.path.join(logs, os.listdir(logs)[0])
        s = socket.socket(socket.AF_UNIX)
        s.connect(os.path.join(jobdir, 'qmp.sock'))
        s.recv(4096)
        s.sendall(b'{"execute":"qmp_capabilities"}\n')
        s.recv(4096)
        s.sendall(b'{"execute":"stop"}\n')
        s.recv(4096)
        s.close()  # QEMU's QMP socket takes one client at a time
        start = time.monotonic()
        _, err = proc.communicate(timeout=180)
        self.assertEqual(proc.returncode, 125, err)
        self.assertIn('STALL', err.decode())
        self.assertIn('sample 1: cpu0', err.decode())
        self.assertIn('cpu0 stack', err.decode())
        self.assertLess(time.monotonic() - start, 90)

    def test_sigterm_ends_qemu_too(self):
        """A runner's SIGTERM (timeout(1), a killed job) must not leave the
        VM running on its own: QEMU goes with the test bed."""
        logs = tempfile.mkdtemp()
        try:
            proc = subprocess.Popen([sys.executable, TESTBED, '--log-dir', logs, '--',
                                     'sleep', '1000'], cwd=TOP,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            def qemus():
                found = []
                for pid in filter(str.isdigit, os.listdir('/proc')):
                    try:
                        with open('/proc/%s/cmdline' % pid, 'rb') as f:
                            argv = f.read().split(b'\0')
                        if b'qemu-system' in argv[0] and any(logs.encode() in a for a in argv):
                            found.append(pid)
                    except OSError:
                        pass
                return found

            deadline = time.monotonic() + 60
            while not qemus() and time.monotonic() < deadline:
                time.sleep(0.5)
            self.assertTrue(qemus(), 'QEMU never started')
            proc.terminate()
            proc.wait(timeout=30)
            deadline = time.monotonic() + 10
            while qemus() and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(qemus(), [], 'QEMU outlived the test bed')
        finally:
            shutil.rmtree(logs, ignore_errors=True)

    def test_missing_qemu_is_said_clearly(self):
        env = dict(os.environ, PATH=os.path.dirname(sys.executable) + ':/usr/sbin:/sbin')
        rc, out, err = testbed('--', 'true', env=env)
        self.assertEqual(rc, 125)
        self.assertIn('qemu-system-x86_64 is missing', err)


def load_runner():
    spec = importlib.util.spec_from_file_location('run_tests', os.path.join(TOP, 'scripts', 'run-tests.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# A fake test bed: plays a script of what each "VM" does, from a JSON file.
# Each boot takes the next entry: {"run": [names to finish], "start": name
# being run when it ends, "rc": status}.
FAKE = r'''
import json, os, sys
args = sys.argv[1:]
i = args.index('--inside')
state, names = args[i + 1], args[i + 3].split(',')
plan_path = os.environ['FAKE_PLAN']
plan = json.load(open(plan_path))
boot = plan.pop(0)
json.dump(plan, open(plan_path, 'w'))
with open(os.environ['FAKE_LOG'], 'a') as f:
    f.write(','.join(names) + '\n')
with open(state, 'a') as f:
    for n in boot['run']:
        assert n in names, (n, names)
        f.write(json.dumps({'start': n}) + '\n')
        f.write(json.dumps({'name': n, 'passed': 1, 'failed': 0, 'skipped': 0,
                            'failures': [], 'output': '', 'took': 0.1}) + '\n')
    if boot.get('start'):
        f.write(json.dumps({'start': boot['start']}) + '\n')
        f.write('{"name": "cut by the VM\'s end')
sys.exit(boot['rc'])
'''


class Runner(unittest.TestCase):
    def run_plan(self, plan, names):
        work = tempfile.mkdtemp()
        fake = os.path.join(work, 'fake.py')
        with open(fake, 'w') as f:
            f.write(FAKE)
        with open(os.path.join(work, 'plan.json'), 'w') as f:
            json.dump(plan, f)
        os.environ.update(KILN_TESTBED_SCRIPT=fake, FAKE_PLAN=os.path.join(work, 'plan.json'),
                          FAKE_LOG=os.path.join(work, 'boots'))
        try:
            runner = load_runner()
            res = runner.run_in_testbed('build', [{'name': n} for n in names], work)
        finally:
            for k in ('KILN_TESTBED_SCRIPT', 'FAKE_PLAN', 'FAKE_LOG'):
                del os.environ[k]
        with open(os.path.join(work, 'boots')) as f:
            boots = f.read().split()
        return res, boots

    def test_after_a_stall_the_rest_runs_in_a_new_vm(self):
        res, boots = self.run_plan([{'run': ['a'], 'start': 'b', 'rc': 125},
                                    {'run': ['b', 'c'], 'rc': 0}], ['a', 'b', 'c'])
        self.assertEqual(boots, ['a,b,c', 'b,c'])
        self.assertEqual(sorted(res), ['a', 'b', 'c'])
        self.assertTrue(all(r['failed'] == 0 for r in res.values()))

    def test_two_stalls_in_one_executable_then_it_passes(self):
        res, boots = self.run_plan([{'run': [], 'start': 'a', 'rc': 125},
                                    {'run': [], 'start': 'a', 'rc': 125},
                                    {'run': ['a', 'b'], 'rc': 0}], ['a', 'b'])
        self.assertEqual(boots, ['a,b', 'a,b', 'a,b'])
        self.assertEqual(res['a']['failed'], 0)
        self.assertEqual(res['b']['passed'], 1)

    def test_three_stalls_in_one_executable_fail_it_and_the_rest_still_runs(self):
        res, boots = self.run_plan([{'run': [], 'start': 'a', 'rc': 125},
                                    {'run': [], 'start': 'a', 'rc': 125},
                                    {'run': [], 'start': 'a', 'rc': 125},
                                    {'run': ['b'], 'rc': 0}], ['a', 'b'])
        self.assertEqual(boots, ['a,b', 'a,b', 'a,b', 'b'])
        self.assertEqual(res['a']['failed'], 1)
        self.assertIn('failed 3 times', res['a']['failures'][0])
        self.assertEqual(res['b']['passed'], 1)

    def test_a_failing_test_is_a_result_not_a_stall(self):
        res, boots = self.run_plan([{'run': ['a', 'b'], 'rc': 1}], ['a', 'b'])
        self.assertEqual(boots, ['a,b'])


class SuiteIn(unittest.TestCase):
    """--suite-in SUITE:BUILD: the suite's executables run in that build only."""

    def run_main(self, argv, env=None):
        runner = load_runner()
        ran = []
        tests = [{'name': 'lx', 'suite': ['kiln:integration', 'kiln:kvm', 'kiln:linux']},
                 {'name': 'gx', 'suite': ['kiln:integration', 'kiln:kvm', 'kiln:guests']},
                 {'name': 'ux', 'suite': ['kiln:unit']}]
        runner.meson_tests = lambda build: tests
        runner.run_one = lambda build, test, only=None: ran.append((build, test['name'])) or {
            'name': test['name'], 'passed': 1, 'failed': 0, 'skipped': 0, 'failures': [],
            'output': '', 'took': 0.0}
        runner.report = lambda build, res: None
        saved = (sys.argv, dict(os.environ))
        sys.argv = ['run-tests.py', '--work', tempfile.mkdtemp()] + argv
        os.environ.update(KILN_TESTBED='host', **(env or {}))
        os.environ.pop('KILN_TEST_FILTER', None)
        try:
            with open(os.devnull, 'w') as null, contextlib.redirect_stdout(null):
                rc = runner.main()
        finally:
            sys.argv = saved[0]
            os.environ.clear()
            os.environ.update(saved[1])
        return rc, sorted(ran)

    def test_each_suite_runs_in_its_build_and_unit_tests_in_both(self):
        rc, ran = self.run_main(['--suite-in', 'linux:b1', '--suite-in', 'guests:b2', 'b1', 'b2'])
        self.assertEqual(rc, 0)
        self.assertEqual(ran, [('b1', 'lx'), ('b1', 'ux'), ('b2', 'gx'), ('b2', 'ux')])

    def test_a_build_not_given_moves_nothing(self):
        _, ran = self.run_main(['--suite-in', 'linux:b1', 'b2'])
        self.assertEqual(ran, [('b2', 'gx'), ('b2', 'lx'), ('b2', 'ux')])

    def test_all_builds_overrides_it(self):
        _, ran = self.run_main(['--suite-in', 'linux:b1', 'b1', 'b2'], {'KILN_TEST_ALL_BUILDS': '1'})
        self.assertEqual(len(ran), 6)

    def test_a_malformed_argument_is_refused(self):
        rc, ran = self.run_main(['--suite-in', 'linux', 'b1'])
        self.assertEqual((rc, ran), (2, []))


class Rerun(unittest.TestCase):
    """inside(): what failed with a guest triple fault runs again under TCG,
    at most runner.TCG_RERUNS times, and only then."""

    def inside(self, outcomes, accel):
        """outcomes: per call, (failed, triple fault[, failure names])"""
        runner = load_runner()
        calls = []

        def fake_run_one(build, test, only=None):
            failed, tf, *names = outcomes[len(calls)]
            calls.append(only or test['name'])
            names = names[0] if names else ['t%d' % len(calls)] * failed
            states = {n.split()[0]: 'failed' for n in names}
            if only and not failed:
                states[only.replace('/', '::')] = 'passed'
            return {'name': test['name'], 'passed': 0 if failed else 1, 'failed': failed,
                    'skipped': 0, 'failures': names,
                    'timed_out': any(' timed out' in n for n in names), 'states': states, 'output': 'out%d' % len(calls),
                    'took': 1.0, 'triple_fault': tf, 'assertions': []}

        runner.run_one = fake_run_one
        runner.meson_tests = lambda build: [{'name': 'x'}]
        runner.report = lambda build, res: None
        state = os.path.join(tempfile.mkdtemp(), 'state')
        old = os.environ.get('KILN_TESTBED_ACCEL')
        os.environ['KILN_TESTBED_ACCEL'] = accel
        try:
            rc = runner.inside(state, ['x'], 'build')
        finally:
            if old is None:
                del os.environ['KILN_TESTBED_ACCEL']
            else:
                os.environ['KILN_TESTBED_ACCEL'] = old
        done, _ = runner.read_state(state)
        return rc, calls, done['x']

    def test_a_triple_fault_under_tcg_runs_again_and_the_second_run_counts(self):
        rc, calls, res = self.inside([(1, True), (0, False)], 'tcg')
        self.assertEqual((rc, calls), (0, ['x', 'x']))
        self.assertEqual((res['passed'], res['failed']), (1, 0))
        self.assertEqual(res['rerun_after'], ['t1'])
        self.assertEqual(res['took'], 2.0)

    def test_only_the_named_failures_run_again_and_the_passes_stay(self):
        rc, calls, res = self.inside([(2, True, ['s::a  (1.0s)', 's::b  (2.0s)']),
                                      (0, False), (1, False, ['s::b  (3.0s)'])], 'tcg')
        self.assertEqual(calls, ['x', 's/a', 's/b'])
        self.assertEqual((rc, res['failed'], res['failures']), (1, 1, ['s::b  (3.0s)']))
        self.assertEqual(res['passed'], 1)  # s::a on its rerun
        self.assertEqual(res['output'], 'out3')
        self.assertEqual(res['took'], 3.0)

    def test_two_reruns_at_most_and_the_last_failure_counts(self):
        rc, calls, res = self.inside([(1, True), (1, True), (1, True), (0, False)], 'tcg')
        self.assertEqual((rc, calls, res['failed']), (1, ['x', 'x', 'x'], 1))
        self.assertEqual(res['rerun_after'], ['t1', 't2'])

    def test_a_timeout_under_tcg_runs_again(self):
        rc, calls, res = self.inside([(1, False, ['s::a timed out (180.0s)']), (0, False)], 'tcg')
        self.assertEqual((rc, calls, res['failed']), (0, ['x', 's/a'], 0))
        self.assertEqual(res['rerun_after'], ['s::a timed out (180.0s)'])

    def test_a_failure_without_a_triple_fault_is_not_rerun(self):
        rc, calls, res = self.inside([(1, True), (1, False), (0, False)], 'tcg')
        self.assertEqual((rc, calls, res['failed']), (1, ['x', 'x'], 1))

    def test_no_rerun_on_kvm_or_without_a_triple_fault(self):
        for outcome, accel in (((1, True), 'kvm'), ((1, False), 'tcg'), ((0, True), 'tcg')):
            rc, calls, res = self.inside([outcome, (0, False)], accel)
            self.assertEqual(calls, ['x'], (outcome, accel))
            self.assertNotIn('rerun_after', res)

    def test_the_bed_registers_words_match_what_snap_where_prints(self):
        runner = load_runner()
        with open(os.path.join(TOP, 'tests', 'integration', 'snap_where.c')) as f:
            src = f.read()
        self.assertIn(runner.BED_REGISTERS, src)

    def test_assertion_heads_keep_the_message_a_long_console_would_hide(self):
        runner = load_runner()
        lines = ['[----] t.c:12: Assertion Failed', '[----]   no "ready"; kiln exited with status 2',
                 '[----]   console 1', '[----]   console 2', '[----]   console 3'] + \
                ['[----]   console %d' % i for i in range(4, 500)]
        heads = runner.assertion_heads(lines)
        self.assertEqual(heads[:2], lines[:2])
        self.assertEqual(len(heads), 5)


if __name__ == '__main__':
    unittest.main()
