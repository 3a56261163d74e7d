"""A systemd unit's sandbox, as far as a test can build one without systemd as PID 1 (root, util-linux's unshare).

systemd cannot start units here, so the settings of deploy/livecam@.service that could stop a door from
working are applied to a real `livecam run` by hand, with the kernel features systemd uses for them:

- the file system view: TemporaryFileSystem=, BindReadOnlyPaths=, StateDirectory= (a writable bind), in a
  mount namespace, with the unit's paths moved under the test's folder;
- ProtectProc=/ProcSubset=: a procfs mounted with hidepid= and subset=pid;
- NoNewPrivileges=, UMask=, WorkingDirectory=;
- seccomp filters built with libseccomp as systemd 252 builds them: SystemCallFilter= (the groups expanded by
  `systemd-analyze syscall-filter`), SystemCallErrorNumber=, SystemCallArchitectures=native,
  RestrictAddressFamilies=, MemoryDenyWriteExecute=.

Not reproduced: users and groups, the device cgroup, PrivateTmp=, ProtectSystem= and the other read-only
mounts, RestrictNamespaces=, LockPersonality=, RestrictRealtime= (livecam makes none of the calls these deny).

    python tests/sandbox.py SPEC.json -- ARGV...     (inside `unshare --mount --propagation private`)

SPEC is what `spec_from_unit` makes of the unit's lines.
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


def unit_lines(text: str) -> list[tuple[str, str]]:
    """(key, value) of each assignment in the unit, in order (no continuation lines in livecam's)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.append((key.strip(), value.strip()))
    return out


def expand_syscalls(names: list[str]) -> set[str]:
    """Syscall names of a SystemCallFilter= list, its @groups expanded as systemd expands them."""
    found: set[str] = set()
    for name in names:
        if not name.startswith("@"):
            found.add(name)
            continue
        listing = subprocess.run(
            ["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True
        ).stdout.splitlines()[1:]  # the first line is the group's own name
        for line in listing:
            line = line.strip()
            if line and not line.startswith("#"):
                found |= expand_syscalls([line])
    return found


def spec_from_unit(text: str, instance: str, moved: dict[str, str]) -> dict:
    """What the sandbox applies for unit `text` started as instance `instance`; the unit's paths that start
    with a key of `moved` are moved to its value (the test's folders)."""

    def path(p: str) -> str:
        p = p.replace("%i", instance)
        for old, new in moved.items():
            if p == old or p.startswith(old + "/"):
                return new + p[len(old) :]
        return p

    spec: dict = {"tmpfs": [], "binds": [], "allow": None, "deny": [], "errno": None, "families": None}
    for key, value in unit_lines(text):
        words = value.replace("%i", instance).split()
        if key == "TemporaryFileSystem":
            spec["tmpfs"] += [{"path": path(w.split(":")[0]), "ro": w.endswith(":ro")} for w in words]
        elif key in ("BindReadOnlyPaths", "BindPaths"):
            for w in words:
                optional = w.startswith("-")
                source, _, target = w.lstrip("-").partition(":")
                spec["binds"].append(
                    {
                        "source": path(source),
                        "target": path(target or source),
                        "ro": key == "BindReadOnlyPaths",
                        "optional": optional,
                    }
                )
        elif key == "StateDirectory":  # "These options imply BindPaths= for the specified paths"
            spec["binds"] += [
                {"source": path(f"/var/lib/{w}"), "target": path(f"/var/lib/{w}"), "ro": False, "optional": False}
                for w in words
            ]
        elif key == "SystemCallFilter":
            if words[0].startswith("~"):
                spec["deny"] += sorted(expand_syscalls([words[0][1:], *words[1:]]))
            else:
                spec["allow"] = sorted(expand_syscalls(words) | expand_syscalls(["@default"]))
        elif key == "SystemCallErrorNumber":
            spec["errno"] = getattr(errno, value)
        elif key == "RestrictAddressFamilies":
            spec["families"] = [getattr(socket, w) for w in words]
        elif key == "MemoryDenyWriteExecute":
            spec["mdwe"] = value == "yes"
        elif key == "SystemCallArchitectures":
            spec["native"] = value == "native"
        elif key == "ProtectProc":
            spec["hidepid"] = value
        elif key == "ProcSubset":
            spec["subset"] = value
        elif key == "NoNewPrivileges":
            spec["nnp"] = value == "yes"
        elif key == "UMask":
            spec["umask"] = int(value, 8)
        elif key == "WorkingDirectory":
            spec["cwd"] = path(value)
    return spec


def command(spec: dict, argv: list[str], folder: Path) -> list[str]:
    """The command line that runs `argv` in the sandbox `spec`; the spec is written into `folder`."""
    spec_file = folder / "sandbox.json"
    spec_file.write_text(json.dumps(spec))
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    return [unshare, "--mount", "--propagation", "private", sys.executable, __file__, str(spec_file), "--", *argv]


def available() -> str | None:
    """Why the sandbox cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces)"
    if shutil.which("unshare") is None or shutil.which("systemd-analyze") is None:
        return "needs util-linux's unshare and systemd-analyze"
    if _libseccomp() is None:
        return "needs libseccomp"
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a mount namespace: {probe.stderr.strip()}"
    return None


# -- applying it (in the child, before exec) ------------------------------------------------------------------


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _file_system(spec: dict, stage: Path) -> None:
    binds = [b for b in spec["binds"] if os.path.exists(b["source"]) or not b["optional"]]
    # a bind's source may be under a tmpfs mounted below (TemporaryFileSystem=/var:ro with
    # BindReadOnlyPaths=/var/lib/systemd is systemd.exec(5)'s own example): hold it first
    for n, b in enumerate(binds):
        held = stage / str(n)
        held.mkdir() if os.path.isdir(b["source"]) else held.touch()
        _mount("--bind", b["source"], str(held))
    for t in spec["tmpfs"]:
        _mount("-t", "tmpfs", "-o", "mode=0755,nodev,strictatime", "tmpfs", t["path"])
    for n, b in sorted(enumerate(binds), key=lambda nb: nb[1]["target"]):
        target = Path(b["target"])
        if not target.exists():  # a mount point in a tmpfs, as systemd makes it
            target.parent.mkdir(parents=True, exist_ok=True)
            target.mkdir() if (stage / str(n)).is_dir() else target.touch()
        _mount("--bind", str(stage / str(n)), str(target))
        if b["ro"]:
            _mount("-o", "remount,bind,ro", str(target))
    for t in spec["tmpfs"]:  # made read-only last, once its mount points exist
        if t["ro"]:
            _mount("-o", "remount,ro", t["path"])
    options = [f"hidepid={spec['hidepid']}"] if spec.get("hidepid") else []
    options += [f"subset={spec['subset']}"] if spec.get("subset") == "pid" else []
    if options:
        _mount("-t", "proc", "-o", ",".join(options), "proc", "/proc")


SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_LT, SCMP_CMP_EQ, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ = 2, 4, 6, 7
SHM_EXEC = 0o100000


def SCMP_ACT_ERRNO(n: int) -> int:  # noqa: N802 (libseccomp's name)
    return 0x00050000 | (n & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


def _libseccomp():
    for name in ("libseccomp.so.2", "libseccomp.so"):
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(_ArgCmp),
        ]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        return lib
    return None


class _Filter:
    """One seccomp filter, loaded on exit; the kernel applies the strictest answer of all filters loaded."""

    def __init__(self, lib, default: int) -> None:
        self.lib, self.ctx = lib, lib.seccomp_init(default)
        if not self.ctx:
            raise OSError("seccomp_init failed")

    def rule(self, action: int, name: str, *cmps: tuple[int, int, int, int]) -> None:
        nr = self.lib.seccomp_syscall_resolve_name(name.encode())
        if nr == -1:  # a name libseccomp does not know (systemd skips these too)
            return
        array = (_ArgCmp * max(1, len(cmps)))(*[_ArgCmp(*c) for c in cmps])
        self.lib.seccomp_rule_add_array(self.ctx, action, nr, len(cmps), array)  # not on this arch: ignored

    def __enter__(self) -> _Filter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None and self.lib.seccomp_load(self.ctx) != 0:
            raise OSError("seccomp_load failed")
        self.lib.seccomp_release(self.ctx)


def _seccomp(spec: dict) -> None:
    lib = _libseccomp()
    if spec.get("families") is not None:
        allowed = sorted(spec["families"])
        eafnosupport = SCMP_ACT_ERRNO(errno.EAFNOSUPPORT)
        with _Filter(lib, SCMP_ACT_ALLOW) as f:
            f.rule(eafnosupport, "socket", (0, SCMP_CMP_LT, allowed[0], 0))
            f.rule(eafnosupport, "socket", (0, SCMP_CMP_GT, allowed[-1], 0))
            for family in range(allowed[0] + 1, allowed[-1]):
                if family not in allowed:
                    f.rule(eafnosupport, "socket", (0, SCMP_CMP_EQ, family, 0))
    if spec.get("mdwe"):
        wx = mmap.PROT_WRITE | mmap.PROT_EXEC
        eperm = SCMP_ACT_ERRNO(errno.EPERM)
        with _Filter(lib, SCMP_ACT_ALLOW) as f:
            f.rule(eperm, "mmap", (2, SCMP_CMP_MASKED_EQ, wx, wx))
            f.rule(eperm, "mprotect", (2, SCMP_CMP_MASKED_EQ, mmap.PROT_EXEC, mmap.PROT_EXEC))
            f.rule(eperm, "pkey_mprotect", (2, SCMP_CMP_MASKED_EQ, mmap.PROT_EXEC, mmap.PROT_EXEC))
            f.rule(eperm, "shmat", (2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC))
    # last, as systemd does it: loading a filter is a system call the list may deny
    if spec.get("allow") is not None:
        denied = SCMP_ACT_ERRNO(spec["errno"]) if spec.get("errno") else SCMP_ACT_KILL_PROCESS
        with _Filter(lib, denied) as f:  # a new filter holds the native architecture only
            for name in sorted(set(spec["allow"]) - set(spec["deny"])):
                f.rule(SCMP_ACT_ALLOW, name)


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[0]).read_text())
    command = argv[argv.index("--") + 1 :]
    _mount("--make-rprivate", "/")  # nothing below reaches the host's mounts
    stage = Path(tempfile.mkdtemp(prefix="sandbox-stage-"))
    _mount("-t", "tmpfs", "tmpfs", str(stage))  # the held sources' mount points: never on a real disk
    _file_system(spec, stage)
    subprocess.run(["umount", "--recursive", "--lazy", str(stage)], check=True)
    stage.rmdir()  # empty: nothing was ever written below it outside the tmpfs
    if spec.get("cwd"):
        os.chdir(spec["cwd"])
    if "umask" in spec:
        os.umask(spec["umask"])
    if spec.get("nnp"):
        ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    _seccomp(spec)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
