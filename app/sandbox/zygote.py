"""The fork server: enters its namespaces, imports torch and the tracer once, forks one child per run.

Started by `SandboxPool` as `python -s -P -c ...` with a cleared environment and one end of a
SOCK_SEQPACKET pair. Protocol (JSON messages, file descriptors attached with SCM_RIGHTS):

    pool -> zygote  {"id": n, "idle": b}      + [result pipe write end, source memfd]; idle: run at idle CPU priority
    zygote -> pool  {"ready": {...}, "errors": {...}}   once, after warm-up and the self-test
    zygote -> pool  {"id": n, "pid": p}       + [pidfd of the child]
    zygote -> pool  {"id": n, "status": wait status, "cpu_s": s, "maxrss_kb": k}   once reaped
    zygote -> pool  {"id": n, "failed": reason}   when no child could be made

The zygote is pid 1 of its pid namespace: when it dies, the kernel kills every child.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any

from ..config import SandboxSettings, TraceSettings
from ..paths import EXAMPLES_DIR
from . import jail, linux, policy

ALL_PROTECTIONS = (*policy.REQUIRED, "landlock", "cgroup")


def _send(ctrl: socket.socket, msg: dict[str, Any], fds: list[int] = ()) -> None:  # type: ignore[assignment]  # an empty tuple as the default: only read
    try:
        socket.send_fds(ctrl, [json.dumps(msg).encode()], list(fds))
    except OSError:  # the pool is gone: exiting as pid 1 kills every child
        os._exit(0)


def _write_uid_map(uid: int, gid: int) -> None:
    """Map uid and gid 0 of the new user namespace to ours outside (read before unshare: inside they are unmapped)."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def _enter(errors: dict[str, str]) -> bool:
    """Enter the namespaces (as root, or through a user namespace when not); True on success."""
    try:
        if os.geteuid() != 0:
            uid, gid = os.getuid(), os.getgid()
            linux.unshare(linux.CLONE_NEWUSER)
            _write_uid_map(uid, gid)
        jail.enter_namespaces()
        return True
    except OSError as e:
        errors["namespaces"] = str(e)
        return False


def _self_test(child_jail: Any) -> dict[str, Any]:
    """Fork a child, harden it like a real one, and report what actually holds inside."""
    from . import child

    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            child.harden(child_jail, policy.UID_BASE, w)
            out: dict[str, Any] = {"uid": os.getuid(), "euid": os.geteuid()}
            out["no_new_privs"] = linux.prctl(linux.PR_GET_NO_NEW_PRIVS) == 1
            import resource

            out["rlimit_as"] = resource.getrlimit(resource.RLIMIT_AS)[0]
            out["passwd_hidden"] = not os.path.exists("/etc/passwd")
            try:
                with open(f"/proc/{os.getpid()}/environ", "rb") as f:
                    out["environ"] = sorted(k.split(b"=")[0].decode() for k in f.read().split(b"\0") if k)
            except PermissionError:  # not dumpable after setuid: not even its own environ
                out["environ"] = []
            out["socket_denied"] = linux._libc.socket(2, 1, 0) < 0  # raw libc: below any Python hook
            pid2 = linux._libc.syscall(57)  # fork
            if pid2 == 0:
                os._exit(0)
            out["fork_denied"] = pid2 < 0
            try:
                os.listdir("/")
                out["landlock_holds"] = False
            except PermissionError:
                out["landlock_holds"] = True
            try:
                with open(policy.SCRATCH_DIR + "/probe", "w") as f:
                    f.write("x")
                out["scratch_writable"] = True
            except OSError:
                out["scratch_writable"] = False
            os.write(child.JOB_FD, json.dumps(out).encode())
            code = 0
        except BaseException as e:  # noqa: BLE001 - the self-test's child reports any failure to the zygote, then exits
            try:
                os.write(child.JOB_FD, json.dumps({"crash": repr(e)}).encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return json.loads(data)
    except ValueError:
        return {"crash": "the self-test child died without a report"}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    for fd in (0, 1, 2):  # keep 0..2 taken, so no received fd can land there
        try:
            os.fstat(fd)
        except OSError:
            os.open("/dev/null", os.O_RDWR)
    ctrl = socket.socket(fileno=cfg["ctrl_fd"])
    for procs in cfg.get("cgroup_procs", []):  # join the pool's cgroup before anything forks
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    limits = SandboxSettings(**cfg["limits"])
    trace_settings = TraceSettings(**cfg["trace"])
    errors: dict[str, str] = {}
    protections = dict.fromkeys(ALL_PROTECTIONS, False)
    protections["cgroup"] = bool(cfg.get("cgroup_procs"))
    protections["clean_env"] = set(os.environ) <= set(policy.ENV_KEEP) | set(policy.ENV_SET) | {"PATH", "LC_CTYPE"}
    was_root = os.geteuid() == 0
    protections["namespaces"] = _enter(errors)
    if protections["namespaces"]:
        pid = os.fork()
        if pid:  # outside the pid namespace: only waits, so that the pool's kill of it ends all
            ctrl.close()
            _, status = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0x7F)
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    visible: list[str] = []
    if protections["namespaces"]:
        try:
            visible = jail.build_view()
            protections["filesystem"] = True
        except OSError as e:
            errors["filesystem"] = str(e)
    landlock = None
    if not protections["filesystem"]:
        errors["landlock"] = "no file system view to build rules for"
    elif linux.landlock_abi() < 1:
        errors["landlock"] = "the kernel has no Landlock (or it is disabled)"
    else:
        landlock = jail.Landlock(visible)
    protections["unprivileged_uid"] = was_root
    if not was_root:
        errors["unprivileged_uid"] = "the service does not run as root, so children cannot get a uid of their own"
    protections["seccomp"] = linux.X86_64
    if not linux.X86_64:
        errors["seccomp"] = "the seccomp filter is written for x86_64"

    import torch

    torch.set_num_threads(1)  # before any op: a child's first parallel op after fork can deadlock
    from ..tracer import trace_of
    from . import child

    # Imports and caches every child would otherwise build again: some torch paths import sympy
    # lazily (300 ms per child for the Jacobian example), so warm up on every example program.
    warm_ups = {"warm-up": child.WARM_UP}
    warm_ups.update((p.name, p.read_text()) for p in sorted(EXAMPLES_DIR.glob("*.py")))
    for name, source in warm_ups.items():
        trace = trace_of(source, trace_settings)
        if trace.status not in ("ok", "error") or (trace.error and trace.error.type not in ("RuntimeError",)):
            print(f"gradwalk sandbox: warm-up {name} ended {trace.status}: {trace.error}", file=sys.stderr)
    child_jail = child.Jail(limits, trace_settings, protections, landlock)
    probe = _self_test(child_jail)
    protections["rlimits"] = probe.get("rlimit_as") == limits.memory_mb * 1024 * 1024
    protections["no_new_privs"] = probe.get("no_new_privs") is True
    protections["unprivileged_uid"] &= probe.get("uid") == policy.UID_BASE and probe.get("euid") == policy.UID_BASE
    protections["seccomp"] &= bool(probe.get("socket_denied")) and bool(probe.get("fork_denied"))
    protections["filesystem"] &= bool(probe.get("passwd_hidden")) and bool(probe.get("scratch_writable"))
    protections["landlock"] = landlock is not None and bool(probe.get("landlock_holds"))
    protections["clean_env"] &= "GRADWALK" not in " ".join(probe.get("environ", ["GRADWALK"]))
    if "crash" in probe:
        errors["self_test"] = probe["crash"]
    for name, ok in protections.items():
        if not ok and name not in errors:
            errors[name] = "not active (self-test)"
    gc.collect()
    gc.freeze()  # children share these objects copy-on-write; their GC will not touch them
    linux.drain_malloc_free_lists()  # children's malloc then writes to fresh pages, not scattered shared ones
    linux.collapse_to_huge_pages()  # fewer page-table entries for every fork and exit to copy
    _send(ctrl, {"ready": protections, "errors": errors})
    _serve(ctrl, child_jail, cfg["max_children"], cfg["idle_children"], cfg["kill_after_s"])


class _Child:
    __slots__ = ("pid", "pidfd", "job", "uid", "warm")

    def __init__(self, pid: int, pidfd: int, job: socket.socket, uid: int) -> None:
        self.pid, self.pidfd, self.job, self.uid = pid, pidfd, job, uid
        self.warm = False


_IDLE_BEFORE_WARM_UP_MS = 50  # idle this long: under load, a warm-up costs more CPU than it saves


def _serve(ctrl: socket.socket, child_jail: Any, max_children: int, idle_target: int, kill_after_s: float) -> None:
    from . import child

    uids = collections.deque(range(policy.UID_BASE, policy.UID_BASE + max_children))
    idle: collections.deque[_Child] = collections.deque()
    running: dict[int, tuple[int, int]] = {}  # pid -> (run id, uid)
    deadlines: dict[int, float] = {}  # pid -> monotonic time to SIGKILL it, whatever the pool does
    idle_uid: dict[int, int] = {}  # pid -> uid, for idle children that die before a job
    waiting: collections.deque[tuple[int, bool, list[int]]] = collections.deque()  # jobs without a child yet
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    poller = select.poll()
    poller.register(ctrl, select.POLLIN)
    poller.register(wake_r, select.POLLIN)

    def fork() -> _Child | None:
        if not uids:
            return None
        uid = uids.popleft()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            uids.appendleft(uid)
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            child.main(child_jail, uid, theirs.fileno())
        theirs.close()
        idle_uid[pid] = uid
        return _Child(pid, os.pidfd_open(pid), ours, uid)

    while True:
        # Requests first; top the idle pool up only when none is waiting.
        if deadlines:
            now = time.monotonic()
            for pid in [p for p, t in deadlines.items() if t <= now]:
                del deadlines[pid]
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        cold = [c for c in idle if not c.warm]
        timeout_ms: float | None = None
        if len(idle) < idle_target and uids and not waiting:
            timeout_ms = 0
        elif cold:
            timeout_ms = _IDLE_BEFORE_WARM_UP_MS
        if deadlines:
            until = max(0.0, (min(deadlines.values()) - time.monotonic()) * 1000) + 1
            timeout_ms = until if timeout_ms is None else min(timeout_ms, until)
        events = poller.poll(timeout_ms)
        if not events and not waiting:
            if len(idle) < idle_target and uids:
                c = fork()
                if c is not None:
                    idle.append(c)
            elif cold and timeout_ms == _IDLE_BEFORE_WARM_UP_MS:  # idle a while: warm one child up
                cold[0].warm = True
                try:
                    cold[0].job.send(child.WARM)
                except OSError:
                    pass
            continue
        for fd, _ in events:
            if fd == wake_r:
                while True:
                    try:
                        if not os.read(wake_r, 512):
                            break
                    except BlockingIOError:
                        break
                continue
            try:
                msg, fds, _, _ = socket.recv_fds(ctrl, 4096, 4)
            except OSError:
                msg, fds = b"", []
            if not msg:  # the pool is gone: exiting as pid 1 kills every child
                os._exit(0)
            job = json.loads(msg)
            rid = job["id"]
            if len(fds) != 2:
                for f in fds:
                    os.close(f)
                _send(ctrl, {"id": rid, "failed": "bad request"})
                continue
            waiting.append((rid, bool(job.get("idle")), fds))
        while waiting:  # hand out jobs: to an idle child, else a fresh one; else wait for a reap
            c = idle.popleft() if idle else fork()
            if c is None:
                break
            rid, idle_job, fds = waiting.popleft()
            try:
                socket.send_fds(c.job, [child.IDLE_JOB if idle_job else child.JOB], fds)
            except OSError:  # the idle child died meanwhile: the parent sees a run without result
                pass
            for f in fds:
                os.close(f)
            c.job.close()
            idle_uid.pop(c.pid, None)
            running[c.pid] = (rid, c.uid)
            deadlines[c.pid] = time.monotonic() + kill_after_s
            _send(ctrl, {"id": rid, "pid": c.pid}, [c.pidfd])
            os.close(c.pidfd)
        while True:  # reap children, and any orphan: we are pid 1
            try:
                pid, status, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in running:
                rid, uid = running.pop(pid)
                deadlines.pop(pid, None)
                uids.append(uid)
                cpu = ru.ru_utime + ru.ru_stime
                _send(ctrl, {"id": rid, "status": status, "cpu_s": round(cpu, 4), "maxrss_kb": ru.ru_maxrss})
            elif pid in idle_uid:  # an idle child died (out of memory?): forget it
                uids.append(idle_uid.pop(pid))
                for c in [c for c in idle if c.pid == pid]:
                    idle.remove(c)
                    c.job.close()
                    os.close(c.pidfd)


if __name__ == "__main__":
    main()
