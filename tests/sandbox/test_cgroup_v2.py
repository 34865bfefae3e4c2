"""The cgroup v2 path of app/sandbox/cgroup.py, for real, on a host that has cgroup v1.

One kernel has one v2 hierarchy, and a controller bound to a v1 hierarchy (memory and pids here:
/sys/fs/cgroup/memory holds hundreds of groups, this process's among them) cannot be enabled in it
until that v1 hierarchy is unmounted everywhere and empty; a cgroup2 mount of our own, even in a
private mount namespace, shows the same hierarchy with only the unbound controllers (hugetlb here).
So the check boots Debian 12's own kernel in QEMU (TCG, about a minute: under this host's /dev/kvm,
a nested PVM, Debian's kernel stops right after its real-mode setup), with the host's root read-only over 9p and a cgroup2 hierarchy that holds
every controller, and runs vm/cgroup_v2_check.py there as PID 1 (`make vm-kernel` fetches the kernel
and busybox with apt-get download into .cache/vm; qemu-system-x86 is one of the Makefile's packages).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.sandbox import cgroup

from .conftest import IN_CI

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VM_CACHE = ROOT / ".cache" / "vm"
HERE = Path(__file__).parent / "vm"
QEMU = shutil.which("qemu-system-x86_64")
CHECKS = ("create", "pool_group", "zygote_in_its_leaf", "bomb", "neighbour", "removed")


def _newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A cpio archive in the kernel's initramfs format: (name, mode, data, rdev) each."""
    out = bytearray()
    for ino, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", 0)], start=1):
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, os.major(rdev), os.minor(rdev), len(name) + 1, 0]
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def _initramfs(kernel_dir: Path) -> bytes:
    modules = ["virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci"]
    modules += ["fscache", "netfs", "9pnet", "9pnet_virtio", "9p", "overlay"]
    found = {p.stem: p for p in kernel_dir.glob("lib/modules/*/kernel/**/*.ko")}
    directory = stat.S_IFDIR | 0o755
    entries = [(d, directory, b"", 0) for d in ("bin", "dev", "proc", "sys", "host", "rw", "newroot", "modules")]
    entries.append(("dev/console", stat.S_IFCHR | 0o600, b"", os.makedev(5, 1)))
    entries.append(("bin/busybox", stat.S_IFREG | 0o755, (VM_CACHE / "busybox" / "bin" / "busybox").read_bytes(), 0))
    entries.append(("init", stat.S_IFREG | 0o755, (HERE / "init").read_bytes(), 0))
    entries += [(f"modules/{m}.ko", stat.S_IFREG | 0o644, found[m].read_bytes(), 0) for m in modules]
    return _newc(entries)


def test_cgroup_v2_path_on_a_v2_kernel(tmp_path: Path) -> None:
    kernels = sorted((VM_CACHE / "kernel" / "boot").glob("vmlinuz-*"))
    if QEMU is None or not kernels or not (VM_CACHE / "busybox" / "bin" / "busybox").exists():
        message = "needs qemu-system-x86_64 and `make vm-kernel` (Debian's kernel and busybox in .cache/vm)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    (tmp_path / "initrd").write_bytes(_initramfs(VM_CACHE / "kernel"))
    console = tmp_path / "console.log"
    python = Path(sys.executable).absolute()
    append = (
        f"console=ttyS0 rdinit=/init panic=-1 quiet gw_python={python} "
        f"gw_check={HERE / 'cgroup_v2_check.py'} gw_cgroup={Path(cgroup.__file__).absolute()}"
    )
    command = [QEMU, "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "1", "-kernel", str(kernels[-1])]
    command += ["-initrd", str(tmp_path / "initrd"), "-append", append, "-no-reboot", "-nodefaults", "-display", "none"]
    command += [
        "-serial",
        f"file:{console}",
        "-virtfs",
        "local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap",
    ]
    done = subprocess.run(command, capture_output=True, timeout=600, check=False)
    log = console.read_text(errors="replace") if console.exists() else ""
    lines = [line for line in log.splitlines() if line.startswith(("VM", "Traceback")) or "Error" in line]
    said = "\n".join(line for line in log.splitlines() if not line.startswith("["))  # all but the kernel's lines
    assert "VM-DONE" in log, (done.returncode, done.stderr.decode(errors="replace")[-2000:], said[-3000:])
    results = {line.split()[1]: line.split()[2] for line in lines if line.startswith("VM-CHECK")}
    assert results == dict.fromkeys(CHECKS, "ok"), "\n".join(lines)
