"""Real attacks through the path the API uses (SandboxPool.run). Each asserts that the attack
failed (canary absent, no file, no connection, service alive) and that a normal program right
after it gets its correct trace."""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid
from pathlib import Path

import pytest

from app.sandbox.policy import PROJECT_ROOT

from .conftest import CANARY, SyncPool, assert_normal


def _dump(trace: object) -> str:
    return trace.model_dump_json()  # type: ignore[attr-defined]


# ---- files, environment, secrets ----------------------------------------------------------------


def test_read_etc_passwd(pool: SyncPool) -> None:
    t = pool.run("print(open('/etc/passwd').read())\n")
    assert t.status == "error" and t.error is not None and t.error.type == "FileNotFoundError"
    assert "root:x:0:0" not in _dump(t)
    assert_normal(pool)


def test_read_secret_file_and_repo(pool: SyncPool, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(f"password={CANARY}")
    src = f"""\
import os
for path in [{str(secret)!r}, {str(PROJECT_ROOT / "pyproject.toml")!r}, {str(PROJECT_ROOT / ".env")!r}]:
    try:
        print(open(path).read())
    except OSError as e:
        print("no", type(e).__name__)
for d in [{str(tmp_path)!r}, {str(PROJECT_ROOT)!r}, "/root", "/home", "/etc", "/"]:
    try:
        print(d, os.listdir(d))
    except OSError as e:
        print("no", type(e).__name__)
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert CANARY not in _dump(t)
    assert "[build-system]" not in t.stdout  # the repo root is not in the view, only app/
    assert "secret.txt" not in t.stdout and "pyproject.toml" not in t.stdout
    assert t.stdout.count("no ") >= 8
    assert_normal(pool)


def test_environment_and_proc_environ(pool: SyncPool) -> None:
    src = f"""\
import glob, os
print(dict(os.environ))
for path in ["/proc/self/environ", "/proc/1/environ", "/proc/{os.getpid()}/environ", *glob.glob("/proc/*/environ")]:
    try:
        print(path, open(path, "rb").read())
    except OSError as e:
        print(path, "no", type(e).__name__)
print(os.listdir("/proc"))
"""
    assert os.environ["GRADWALK_TEST_CANARY"] == CANARY  # the service itself has it
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert CANARY not in _dump(t)
    assert "GRADWALK" not in t.stdout
    assert_normal(pool)


def test_no_host_paths_in_proc_or_the_interpreter(pool: SyncPool) -> None:
    """The runtime is mounted at neutral paths: nothing a program can read names the host's directories."""
    src = """\
import os, sys, glob
import torch
for name in ["mountinfo", "mounts", "mountstats", "cmdline", "maps", "cgroup", "environ", "status"]:
    for path in [f"/proc/self/{name}", *glob.glob(f"/proc/self/task/*/{name}"), f"/proc/thread-self/{name}"]:
        try:
            print(path, open(path, "rb").read().decode("utf-8", "replace"))
        except OSError as e:
            print(path, "no", type(e).__name__)
for link in ["exe", "cwd", "root"]:
    try:
        print(link, os.readlink(f"/proc/self/{link}"))
    except OSError as e:
        print(link, "no", type(e).__name__)
print(sys.path, sys.prefix, sys.exec_prefix, sys.executable, sys.argv, sys.orig_argv)
print([getattr(m, "__file__", None) for m in list(sys.modules.values())])
print(torch.__file__)
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    out = t.stdout
    assert len(out) > 1000  # it did read them
    host = {str(PROJECT_ROOT), os.path.realpath(sys.prefix), sys.prefix}
    if sys.base_prefix not in ("/usr", "/usr/local"):
        host.add(sys.base_prefix)  # an interpreter outside the system's own directories (pyenv, a venv)
    for path in host:
        assert path not in out, f"{path} shows in the sandbox"
    assert "gradwalk-" not in out  # the pool's cgroup names


# ---- network ------------------------------------------------------------------------------------


class Listener:
    """A TCP listener on loopback that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> int:
        self.stop.set()
        self.thread.join()
        self.sock.close()
        return self.accepted


@pytest.fixture
def listener() -> Listener:
    lst = Listener()
    yield lst
    lst.close()


def test_tcp_connect_to_loopback(pool: SyncPool, listener: Listener) -> None:
    t = pool.run(f"import socket\ns = socket.create_connection(('127.0.0.1', {listener.port}), timeout=1)\nprint('connected')\n")
    assert t.status == "killed" and t.error is not None
    assert "network access is not available in the sandbox" in t.error.message
    assert "connected" not in t.stdout
    assert listener.close() == 0
    assert_normal(pool)


def test_tcp_connect_below_python(pool: SyncPool, listener: Listener) -> None:
    """ctypes goes around Python's audit hook: the kernel (seccomp, netns, Landlock) still says no."""
    src = f"""\
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(2, 1, 0)
print("socket", fd, ctypes.get_errno())
addr = struct.pack("!HH4s8x", 2, {listener.port}, bytes([127, 0, 0, 1]))
addr = struct.pack("<H", 2) + addr[2:]
print("connect", libc.connect(fd, addr, 16))
print("socketpair", libc.socketpair(1, 1, 0, (ctypes.c_int * 2)()))
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert "socket -1 1\n" in t.stdout  # EPERM
    assert "connect -1" in t.stdout and "socketpair -1" in t.stdout
    assert listener.close() == 0
    assert_normal(pool)


# ---- writing, processes, escapes ----------------------------------------------------------------


def test_write_host_tmp_and_app(pool: SyncPool) -> None:
    name = f"gradwalk-attack-{uuid.uuid4().hex}"
    src = f"""\
import os, tempfile
scratch = os.path.join(tempfile.gettempdir(), {name!r})
open(scratch, "w").write("pwned")
print("scratch", open(scratch).read(), os.path.abspath({name!r}) == scratch)
for path in ["/tmp/{name}", {str(PROJECT_ROOT / "app" / "pwned.py")!r}, "/usr/lib/pwned", "/pwned"]:
    try:
        open(path, "w").write("pwned")
        print("wrote", path)
    except OSError as e:
        print("refused", type(e).__name__)
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert "scratch pwned True" in t.stdout  # the private scratch dir (TMPDIR, cwd) works ...
    assert not os.path.exists(f"/tmp/{name}")  # ... and nothing reached the host's /tmp
    assert t.stdout.count("refused") >= 3 and "wrote /usr" not in t.stdout and "wrote /work" not in t.stdout
    assert not (PROJECT_ROOT / "app" / "pwned.py").exists()
    # and the next child does not see the previous child's files
    t2 = pool.run(f"import os, tempfile\nprint(os.listdir(tempfile.gettempdir()), os.path.exists('/tmp/{name}'))\n")
    assert t2.stdout == "[] False\n"
    assert_normal(pool)


def test_fork_bomb(pool: SyncPool) -> None:
    t = pool.run("import os\nfor i in range(200):\n    os.fork()\n")
    assert t.status == "killed" and t.error is not None
    assert "processes" in t.error.message
    t = pool.run("import ctypes\nlibc = ctypes.CDLL(None)\nprint(sorted({libc.fork() for i in range(200)}))\n")
    assert t.status == "ok" and t.stdout == "[-1]\n"
    assert_normal(pool)


@pytest.mark.parametrize(
    "attack",
    [
        "import subprocess\nsubprocess.run(['touch', {marker!r}])\n",
        "import os\nos.system('touch {marker}')\n",
        "import os\nos.execv('/usr/bin/touch', ['touch', {marker!r}])\n",
        "import multiprocessing\np = multiprocessing.Process(target=print)\np.start()\n",
    ],
    ids=["subprocess", "os.system", "exec", "multiprocessing"],
)
def test_subprocess_and_system(pool: SyncPool, tmp_path: Path, attack: str) -> None:
    marker = tmp_path / "pwned"
    t = pool.run(attack.format(marker=str(marker)))
    assert t.status == "killed" and t.error is not None and "processes" in t.error.message
    assert not marker.exists()
    assert_normal(pool)


def test_ctypes_system(pool: SyncPool, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    t = pool.run(f"import ctypes\nprint(ctypes.CDLL(None).system(b'touch {marker}'))\n")
    assert t.status == "ok", t.error
    assert t.stdout.strip() != "0"  # fork/clone/exec are refused by seccomp
    assert not marker.exists()
    assert_normal(pool)


def test_subclasses_walk(pool: SyncPool, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    src = f"""\
for cls in ().__class__.__base__.__subclasses__():
    if cls.__name__ == "_wrap_close":
        cls.__init__.__globals__["system"]("touch {marker}")
"""
    t = pool.run(src)
    assert t.status == "killed" and t.error is not None and "processes" in t.error.message
    assert not marker.exists()
    assert_normal(pool)


def test_torch_load_malicious_pickle(pool: SyncPool, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    src = f"""\
import io, os, torch
class Evil:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
buf = io.BytesIO()
torch.save(Evil(), buf)
buf.seek(0)
torch.load(buf, weights_only=False)
"""
    t = pool.run(src)
    assert t.status == "killed" and t.error is not None and "processes" in t.error.message
    assert not marker.exists()
    assert_normal(pool)


def test_kill_parent(pool: SyncPool) -> None:
    t = pool.run("import os\nos.kill(os.getppid(), 9)\n")
    assert t.status == "killed" and t.error is not None and "signalling" in t.error.message
    src = f"""\
import ctypes
libc = ctypes.CDLL(None)
print(libc.kill(1, 9), libc.kill({os.getpid()}, 9), libc.kill(-1, 9))
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert t.stdout == "-1 -1 -1\n"
    assert pool.pool._zygote is not None and pool.pool._zygote.alive
    assert_normal(pool)


# ---- the result channel -----------------------------------------------------------------------------


def test_close_fds_0_to_2(pool: SyncPool) -> None:
    t = pool.run(
        "import os\nfor fd in range(3):\n    os.close(fd)\n"
        + "".join(
            line + "\n"
            for line in [
                "import torch",
                "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)",
                "y = (x ** 2).sum()",
                "y.backward()",
                "print(x.grad)",
            ]
        )
    )
    assert t.status == "ok", t.error
    assert next(n for n in t.nodes if n.name == "x").grad == [2.0, 4.0, 6.0]
    assert_normal(pool)


FORGED = '{"version":1,"status":"ok","source":"","stdout":"FORGED","nodes":[]}'


def test_forged_result_on_stdout_and_stderr(pool: SyncPool) -> None:
    src = f"""\
import os, sys, torch
os.write(1, {FORGED!r}.encode())
os.write(2, {FORGED!r}.encode())
sys.__stdout__.write({FORGED!r})
print({FORGED!r})
x = torch.tensor([1.0, 2.0], requires_grad=True)
(x * 3).sum().backward()
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert t.source == src
    assert next(n for n in t.nodes if n.name == "x").grad == [3.0, 3.0]
    assert_normal(pool)


def test_forged_result_on_the_result_pipe(pool: SyncPool) -> None:
    """The program owns its result pipe; a forgery of anything but its own trace is refused."""
    t = pool.run(f"import os\nos.write(3, {FORGED!r}.encode())\nos._exit(0)\n")
    assert t.status == "killed" and t.error is not None and "not a valid trace" in t.error.message
    t = pool.run('import os\nos.write(3, b\'{"status": "ok", "nodes": [{"bogus": 1}]\')\nos._exit(0)\n')
    assert t.status == "killed" and t.error is not None
    t = pool.run("import os\nos.close(3)\nwhile True:\n    pass\n")
    assert t.status == "killed" and t.error is not None and "without producing a trace" in t.error.message
    assert_normal(pool)


def test_result_larger_than_the_limit(pool: SyncPool) -> None:
    t = pool.run("import os\nos.write(3, b'[' * 10)\nwhile True:\n    os.write(3, b' ' * 65536)\n")
    assert t.status == "killed" and t.error is not None and "byte limit" in t.error.message
    assert_normal(pool)


def test_ipc_objects_do_not_outlive_the_run(pool: SyncPool) -> None:
    """System V shared memory would persist after the child; each child has its own IPC namespace."""
    src = """\
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmget.restype = ctypes.c_int
ids = [libc.shmget(0x6761 + i, 64 * 2**20, 0o1666) for i in range(4)]
print(ids)
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert "-1" not in t.stdout  # created: the namespace, not seccomp, is what contains them
    t2 = pool.run("import ctypes\nlibc = ctypes.CDLL(None)\nprint(libc.shmget(0x6761, 0, 0o666))\n")
    assert t2.stdout == "-1\n"  # the key the previous run created does not exist here
    assert_normal(pool)
