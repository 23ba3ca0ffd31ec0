"""Where a benchmark runs, said before its figures.

Each bench script calls `where()` first. On a host whose /dev/kvm answers,
kiln and QEMU run here. Without one (or with KILN_TESTBED=vm), the script
runs itself again inside the test bed (tests/testbed: a QEMU VM with an
ordinary KVM), where kiln and QEMU -accel kvm run side by side on the VM's
KVM; under an emulated test-bed CPU (TCG) absolute figures say little and
the kiln/QEMU ratios are what to read."""
import fcntl
import os
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KVM_GET_API_VERSION = 0xAE00


def kvm_usable():
    try:
        fd = os.open('/dev/kvm', os.O_RDWR)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, KVM_GET_API_VERSION) == 12
    except OSError:
        return False
    finally:
        os.close(fd)


def describe():
    """One line: which KVM this process sees."""
    mods = [m for m in ('kvm_amd', 'kvm_intel', 'kvm_pvm') if os.path.isdir('/sys/module/' + m)]
    kind = {'kvm_amd': 'KVM (AMD SVM)', 'kvm_intel': 'KVM (Intel VMX)',
            'kvm_pvm': 'KVM (paravirtual PVM, nested)'}.get(mods[0] if mods else '', 'KVM')
    if os.environ.get('KILN_IN_TESTBED'):
        accel = 'TCG: an emulated CPU, read the ratios' if os.environ.get('KILN_TIME_SCALE') \
            else 'hardware-accelerated'
        return '%s inside the kiln test bed (%s)' % (kind, accel)
    return '%s on this host' % kind


def where():
    """Re-executes the calling script inside the test bed when this host has
    no usable /dev/kvm; else prints the platform line and returns."""
    inside = os.environ.get('KILN_IN_TESTBED')
    if not inside and (os.environ.get('KILN_TESTBED') == 'vm' or not kvm_usable()):
        print('platform: no usable /dev/kvm here (or KILN_TESTBED=vm); '
              'running inside the test bed', flush=True)
        testbed = os.path.join(TOP, 'tests', 'testbed', 'testbed.py')
        rc = subprocess.call([sys.executable, testbed, '--',
                              sys.executable, os.path.abspath(sys.argv[0])] + sys.argv[1:])
        sys.exit(rc)
    print('platform: ' + describe(), flush=True)
