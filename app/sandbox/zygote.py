"""The fork server: enters its namespaces, imports torch and the tracer once, forks one child per run.

Started by `SandboxPool` as `python -s -P -c ...` with a cleared environment and one end of a
SOCK_SEQPACKET pair. It starts in two stages. The first, at the host's paths, joins the pool's
cgroup, enters the namespaces and builds the children's read-only root, where the runtime (the
interpreter when it is not the system's, the venv, the package) is mounted at neutral paths under
`policy.RUNTIME_DIR`; then it executes the interpreter again, from there, with a neutral command
line: nothing a child can read (its command line, its memory map, sys.path, module files) names
the host's directories. The second stage imports torch, warms up, tests a hardened child and
serves (forkserver.py). Protocol (JSON messages, file descriptors attached with SCM_RIGHTS):

    pool -> zygote  {"id": n, "idle": b}      + [result pipe write end, source memfd]; idle: run at idle CPU priority
    zygote -> pool  {"ready": {...}, "errors": {...}}   once, after warm-up and the self-test
    zygote -> pool  {"id": n, "pid": p}       + [pidfd of the child]
    zygote -> pool  {"id": n, "status": wait status, "cpu_s": s, "maxrss_kb": k, "oom": b}   once reaped
    zygote -> pool  {"id": n, "failed": reason}   when no child could be made

The zygote is pid 1 of its pid namespace: when it dies, the kernel kills every child.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys
from typing import Any

from ..config import SandboxSettings, TraceSettings
from . import cgroup, jail, linux, policy

ALL_PROTECTIONS = (*policy.REQUIRED, "landlock", "cgroup", "run_cgroup")
BOOT = "import sys; sys.path[:0] = {path!r}; from {package}.sandbox.zygote import serve_main; serve_main({fd})"


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


def _become_pid_one(ctrl_fd: int) -> None:
    """Fork into the new pid namespace; the parent, outside, only waits, so that the pool's kill of it ends all."""
    pid = os.fork()
    if pid:
        os.close(ctrl_fd)  # the pool must see the zygote's end when it dies
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0x7F)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)


def _run_groups(state: dict[str, Any], errors: dict[str, str]) -> None:
    """v2: settle the zygote into its leaf so that runs can have groups beside it (see cgroup.py)."""
    runs = state.get("run_cgroups")
    if not runs:
        return
    try:
        cgroup.settle_zygote(runs["version"], runs["fd"])
    except OSError as e:
        errors["run_cgroup"] = f"cannot make a memory cgroup per run ({os.strerror(e.errno or 0)})"
        state["run_cgroups"] = None


def main() -> None:
    """Stage one, at the host's paths: cgroup, namespaces, the view; then stage two from inside it."""
    cfg = json.loads(sys.argv[1])
    for fd in (0, 1, 2):  # keep 0..2 taken, so no received fd can land there
        try:
            os.fstat(fd)
        except OSError:
            os.open("/dev/null", os.O_RDWR)
    for procs in cfg.get("cgroup_procs", []):  # join the pool's cgroup before anything forks
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    errors: dict[str, str] = dict(cfg.pop("errors", {}))
    protections = dict.fromkeys(ALL_PROTECTIONS, False)
    protections["cgroup"] = bool(cfg.get("cgroup_procs"))
    state: dict[str, Any] = {"cfg": cfg, "was_root": os.geteuid() == 0, "visible": [], "run_cgroups": cfg.get("run_cgroups")}
    runtime = policy.Runtime.here()  # at the host's paths, before they are out of sight
    protections["namespaces"] = _enter(errors)
    if protections["namespaces"]:
        _become_pid_one(cfg["ctrl_fd"])
        _run_groups(state, errors)
        try:
            state["visible"] = jail.build_view(runtime)
            protections["filesystem"] = True
        except OSError as e:
            errors["filesystem"] = str(e)
    state.update(protections=protections, errors=errors)
    if protections["filesystem"]:
        _exec_inside(state, runtime)  # does not return
    _start(state)


def _exec_inside(state: dict[str, Any], runtime: policy.Runtime) -> None:
    """Run the interpreter again from the runtime's neutral paths, handing `state` over a pipe."""
    r, w = os.pipe()
    os.write(w, json.dumps(state).encode())  # a few KB: within the pipe's buffer
    os.close(w)
    os.set_inheritable(r, True)
    boot = BOOT.format(path=runtime.path, package=policy.PACKAGE_NAME, fd=r)
    os.execve(runtime.python, [runtime.python, "-S", "-P", "-c", boot], {**policy.zygote_env(), **(runtime.env or {})})


def serve_main(state_fd: int) -> None:
    """Stage two, inside the view: read what stage one handed over, and start."""
    with os.fdopen(state_fd) as f:
        state = json.load(f)
    _start(state)


def _start(state: dict[str, Any]) -> None:
    # Here, not at the top: the fork server imports the child, hence torch, which stage one must not
    # import: it execs stage two, which imports torch again (the zygote's start-up, paid twice).
    from .forkserver import ForkServer, send

    cfg, protections, errors = state["cfg"], state["protections"], state["errors"]
    ctrl = socket.socket(fileno=cfg["ctrl_fd"])
    limits = SandboxSettings(**cfg["limits"])
    trace_settings = TraceSettings(**cfg["trace"])
    allowed_env = set(policy.ENV_KEEP) | set(policy.ENV_SET) | set(policy.RUNTIME_ENV) | {"PATH", "LC_CTYPE"}
    protections["clean_env"] = set(os.environ) <= allowed_env
    runs = None
    if state["run_cgroups"]:
        groups = state["run_cgroups"]
        runs = cgroup.RunGroups(groups["version"], groups["fd"], limits.memory_mb * 1024 * 1024)
    elif "run_cgroup" not in errors:
        errors["run_cgroup"] = "no cgroup for the runs: in-memory files and shared memory are refused instead"
    child_jail = _jail(limits, trace_settings, protections, errors, state, runs is not None)
    _warm_up(trace_settings, examples=cfg.get("warm_up_examples", True))
    probe = _self_test(child_jail, runs)
    _judge_self_test(probe, limits, protections, errors, runs)
    gc.collect()
    gc.freeze()  # children share these objects copy-on-write; their GC will not touch them
    linux.drain_malloc_free_lists()  # children's malloc then writes to fresh pages, not scattered shared ones
    linux.collapse_to_huge_pages()  # fewer page-table entries for every fork and exit to copy
    send(ctrl, {"ready": protections, "errors": errors})
    ForkServer(ctrl, child_jail, cfg["max_children"], cfg["idle_children"], cfg["kill_after_s"], runs).run()


def _jail(
    limits: SandboxSettings,
    trace_settings: TraceSettings,
    protections: dict[str, bool],
    errors: dict[str, str],
    state: dict[str, Any],
    runs: bool,
) -> Any:
    """What every child applies: Landlock rules for the view, the uid and seccomp layers this host allows."""
    from . import child

    landlock = None
    if not protections["filesystem"]:
        errors["landlock"] = "no file system view to build rules for"
    elif linux.landlock_abi() < 1:
        errors["landlock"] = "the kernel has no Landlock (or it is disabled)"
    else:
        landlock = jail.Landlock(state["visible"])
    protections["unprivileged_uid"] = state["was_root"]
    if not state["was_root"]:
        errors["unprivileged_uid"] = "the service does not run as root, so children cannot get a uid of their own"
    protections["seccomp"] = linux.X86_64
    if not linux.X86_64:
        errors["seccomp"] = "the seccomp filter is written for x86_64"
    return child.Jail(limits, trace_settings, protections, landlock, shared_memory=runs)


def _warm_up(trace_settings: TraceSettings, examples: bool = True) -> None:
    """Imports and caches every child would otherwise build again: some torch paths import sympy
    lazily (the Jacobian example, for one), which each child would pay again: warm up on every example program
    (unless `examples` is false: a command that runs a few programs and exits)."""
    import torch

    from ..config import THREADS

    torch.set_num_threads(THREADS)  # before any op: a child's first parallel op after fork can deadlock
    from ..paths import EXAMPLES_DIR
    from ..tracer import trace_of
    from . import child

    warm_ups = {"warm-up": child.WARM_UP}
    if examples:
        warm_ups.update((p.name, p.read_text()) for p in sorted(EXAMPLES_DIR.glob("*.py")))
    for name, source in warm_ups.items():
        trace = trace_of(source, trace_settings)
        if trace.status not in ("ok", "error") or (trace.error and trace.error.type not in ("RuntimeError",)):
            print(f"gradwalk sandbox: warm-up {name} ended {trace.status}: {trace.error}", file=sys.stderr)


def _self_test(child_jail: Any, runs: cgroup.RunGroups | None) -> dict[str, Any]:
    """Fork a child, harden it like a real one, and report what actually holds inside."""
    from . import child

    r, w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.close(go_w)
            os.read(go_r, 1)  # placed in its cgroup first, as a real child is before its job
            os.close(go_r)
            child.harden(child_jail, policy.UID_BASE, w)
            os.write(child.JOB_FD, json.dumps(_probe()).encode())
            code = 0
        except BaseException as e:  # noqa: BLE001 - the self-test's child reports any failure to the zygote, then exits
            try:
                os.write(child.JOB_FD, json.dumps({"crash": repr(e)}).encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(w)
    os.close(go_r)
    if runs is not None:
        try:
            runs.place(pid, policy.UID_BASE)
        except OSError:
            pass  # the probe shows it outside its group: run_cgroup is off
    os.write(go_w, b"g")
    os.close(go_w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return json.loads(data)
    except ValueError:
        return {"crash": "the self-test child died without a report"}


def _probe() -> dict[str, Any]:
    """Inside the hardened self-test child: what holds."""
    import resource

    out: dict[str, Any] = {"uid": os.getuid(), "euid": os.geteuid()}
    out["no_new_privs"] = linux.prctl(linux.PR_GET_NO_NEW_PRIVS) == 1
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
    try:
        with open("/proc/self/mountinfo") as f:
            out["mounts_hidden"] = f.read() == ""
    except OSError:
        out["mounts_hidden"] = True
    with open("/proc/self/cgroup") as f:
        out["cgroup"] = f.read()
    return out


def _judge_self_test(
    probe: dict[str, Any],
    limits: SandboxSettings,
    protections: dict[str, bool],
    errors: dict[str, str],
    runs: cgroup.RunGroups | None,
) -> None:
    protections["rlimits"] = probe.get("rlimit_as") == limits.memory_mb * 1024 * 1024
    protections["no_new_privs"] = probe.get("no_new_privs") is True
    protections["unprivileged_uid"] &= probe.get("uid") == policy.UID_BASE and probe.get("euid") == policy.UID_BASE
    protections["seccomp"] &= bool(probe.get("socket_denied")) and bool(probe.get("fork_denied"))
    protections["filesystem"] &= bool(probe.get("passwd_hidden")) and bool(probe.get("scratch_writable"))
    protections["filesystem"] &= bool(probe.get("mounts_hidden"))
    protections["landlock"] = protections["filesystem"] and bool(probe.get("landlock_holds"))
    protections["clean_env"] &= "GRADWALK" not in " ".join(probe.get("environ", ["GRADWALK"]))
    protections["run_cgroup"] = runs is not None and f"{cgroup.RUN_PREFIX}{policy.UID_BASE}" in probe.get("cgroup", "")
    if "crash" in probe:
        errors["self_test"] = probe["crash"]
    for name, ok in protections.items():
        if not ok and name not in errors:
            errors[name] = "not active (self-test)"
