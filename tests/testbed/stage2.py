"""The test bed VM's second stage, PID 1 in the overlay root (the host's
python3, copied into the job folder by testbed.py): mounts fresh
/proc, /sys, /dev, cgroup2, /tmp and the writable shares, brings loopback
up, runs the job's command in its folder with its environment, its output
on ttyS1, and writes its exit status to /testbed-job/rc. A heartbeat line
goes to ttyS2 every few seconds so the host can tell a busy VM from a
stalled one. Then every process left is killed and the VM powers off."""
import ctypes
import json
import os
import subprocess
import sys
import threading
import time

JOB = '/testbed-job'
libc = ctypes.CDLL(None, use_errno=True)


def log(msg):
    with open('/dev/console', 'w') as f:
        f.write('testbed-stage2: %s\n' % msg)


def mount(src, target, fstype, opts=''):
    os.makedirs(target, exist_ok=True)
    if libc.mount(src.encode(), target.encode(), fstype.encode(), 0,
                  opts.encode() if opts else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, 'mount %s on %s: %s' % (fstype, target, os.strerror(err)))


def setup(job):
    mount('proc', '/proc', 'proc')
    mount('sysfs', '/sys', 'sysfs')
    mount('devtmpfs', '/dev', 'devtmpfs')
    mount('devpts', '/dev/pts', 'devpts', 'gid=5,mode=620,ptmxmode=666')
    mount('tmpfs', '/dev/shm', 'tmpfs', 'mode=1777')
    mount('cgroup2', '/sys/fs/cgroup', 'cgroup2')
    mount('tmpfs', '/tmp', 'tmpfs', 'mode=1777')
    mount('tmpfs', '/run', 'tmpfs', 'mode=755')
    for name, target in (('fd', '/proc/self/fd'), ('stdin', '/proc/self/fd/0'),
                         ('stdout', '/proc/self/fd/1'), ('stderr', '/proc/self/fd/2')):
        if not os.path.lexists('/dev/' + name):
            os.symlink(target, '/dev/' + name)
    if os.path.lexists('/dev/ptmx') and not os.path.exists('/dev/ptmx'):
        os.unlink('/dev/ptmx')
    if not os.path.exists('/dev/ptmx'):
        os.symlink('pts/ptmx', '/dev/ptmx')
    # shares after /tmp, so a share under /tmp is not hidden by it
    for tag, path in job['shares']:
        mount(tag, path, '9p', 'trans=virtio,version=9p2000.L,msize=512000,cache=mmap')
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=False)
    with open('/proc/sys/kernel/hostname', 'w') as f:
        f.write('testbed')


KVM_CREATE_VM = 0xAE01
KVM_CREATE_IRQCHIP = 0xAE60
KVM_CREATE_VCPU = 0xAE41


def hold_a_kvm_vm():
    """Keeps one idle KVM VM, with an in-kernel irqchip and one vCPU that
    never runs, open for the whole session (PID 1 never closes the
    descriptors; they are not inherited).

    Why: KVM flips static keys when the system's first VM is created and
    its last destroyed (preempt_notifier_inc/_dec: a jump label in
    __schedule and finish_task_switch), and per vCPU local APIC
    (apic_sw_disabled, held while an APIC is software-disabled). Each kiln
    test starts and ends a VM, so without this hold the kernel's hottest
    code is rewritten through int3 (text_poke_bp) several times per test
    while the other vCPU runs it; under TCG's multi-threaded emulation this
    livelocks both vCPUs (each in exc_int3 / __schedule for good: the test
    bed's stall; reproduced within 100 create/destroy cycles, none in 2400
    with the hold). With the counts never back at zero, nothing is patched."""
    import fcntl
    fds = []
    try:
        fds.append(os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC))
        fds.append(fcntl.ioctl(fds[0], KVM_CREATE_VM, 0))
        fcntl.ioctl(fds[1], KVM_CREATE_IRQCHIP, 0)
        fds.append(fcntl.ioctl(fds[1], KVM_CREATE_VCPU, 0))
        for fd in fds[1:]:
            os.set_inheritable(fd, False)
    except OSError as exc:
        log('cannot hold a KVM VM open: %s' % exc)
    return fds


def raw_tty(path):
    import termios
    import tty
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    tty.setraw(fd, termios.TCSANOW)
    return fd


def heartbeat(period):
    fd = raw_tty('/dev/ttyS2')
    n = 0
    while True:
        n += 1
        with open('/proc/loadavg') as f:
            load = f.read().split()[0]
        os.write(fd, ('beat %d load %s\n' % (n, load)).encode())
        time.sleep(period)


def run_job(job):
    out = raw_tty('/dev/ttyS1')
    env = dict(job['env'])
    env['KILN_IN_TESTBED'] = '1'
    try:
        proc = subprocess.Popen(job['argv'], cwd=job['cwd'], env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, start_new_session=True)
    except OSError as exc:
        os.write(out, ('testbed: cannot run %s: %s\n' % (job['argv'], exc)).encode())
        return 127
    # PID 1 reaps every orphan while it waits for the command
    while True:
        pid, status = os.wait()
        if pid == proc.pid:
            return os.waitstatus_to_exitcode(status) if status & 0x7f == 0 else 128 + (status & 0x7f)


def main():
    rc = 125
    try:
        with open(os.path.join(JOB, 'job.json')) as f:
            job = json.load(f)
        setup(job)
        held = hold_a_kvm_vm()  # noqa: F841 (kept open until power-off)
        # for the host's stall report: symbols of this kernel (Debian ships
        # no System.map; nokaslr keeps the addresses stable)
        try:
            with open('/proc/kallsyms', 'rb') as src, open(os.path.join(JOB, 'kallsyms'), 'wb') as dst:
                dst.write(src.read())
        except OSError as exc:
            log('cannot save kallsyms: %s' % exc)
        threading.Thread(target=heartbeat, args=(job.get('heartbeat_s', 5),), daemon=True).start()
        rc = run_job(job)
        with open(os.path.join(JOB, 'rc'), 'w') as f:
            f.write('%d\n' % rc)
    except Exception as exc:  # PID 1 must not die: report and power off
        log('failed: %r' % (exc,))
    try:
        os.kill(-1, 9)
    except OSError:
        pass
    libc.sync()
    time.sleep(0.2)
    libc.reboot(0x4321FEDC)  # LINUX_REBOOT_CMD_POWER_OFF
    sys.exit(rc)


main()
