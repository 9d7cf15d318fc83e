"""Helpers shared by scripts/bench and scripts/bench-wordcount (not a test).

`measure(argv)` runs a `yarn-flink` command and, while it runs, samples the
peak RSS (VmHWM in /proc/<pid>/status) of that process and of every
TaskManager it starts (a descendant whose command line is
`yarn-flink taskmanager`), and timestamps stderr lines as they arrive.
VmHWM never decreases, so the last sample taken is the peak up to then; the
sampler runs every `interval` seconds, so a TaskManager's last few ms can be
missed (its buffers are drained by then).
"""

import os
import subprocess
import threading
import time


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children_map():
    """ppid -> [pid] for every live process."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        rest = stat[stat.rfind(")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(name))
    return kids


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def task_managers(root):
    """Pids of `yarn-flink taskmanager` processes below `root`."""
    kids = children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for k in kids.get(pid, []):
            argv = cmdline(k)
            if len(argv) > 1 and argv[1] == b"taskmanager":
                found.append(k)
            else:
                todo.append(k)
    return found


class Result:
    def __init__(self):
        self.wall = 0.0
        self.returncode = None
        self.stdout = ""
        self.stderr_lines = []  # (seconds since start, line)
        self.client_hwm_kib = 0
        self.tm_hwm_kib = {}  # pid -> peak VmHWM seen
        self.tm_rss_kib = {}  # pid -> last VmRSS seen

    def first_line_time(self, predicate):
        for t, line in self.stderr_lines:
            if predicate(line):
                return t
        return None

    def stderr(self):
        return "".join(line for _, line in self.stderr_lines)


def measure(argv, env=None, interval=0.05, on_line=None):
    """Runs argv to its end, sampling RSS; `on_line(result, t, line)` sees stderr live."""
    res = Result()
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def read_stderr():
        for raw in iter(proc.stderr.readline, b""):
            t = time.monotonic() - start
            line = raw.decode(errors="replace")
            res.stderr_lines.append((t, line))
            if on_line:
                on_line(res, t, line)

    def read_stdout():
        res.stdout = proc.stdout.read().decode(errors="replace")

    threads = [threading.Thread(target=read_stderr, daemon=True), threading.Thread(target=read_stdout, daemon=True)]
    for th in threads:
        th.start()
    while proc.poll() is None:
        hwm = status_kib(proc.pid, "VmHWM")
        if hwm:
            res.client_hwm_kib = max(res.client_hwm_kib, hwm)
        for tm in task_managers(proc.pid):
            h = status_kib(tm, "VmHWM")
            r = status_kib(tm, "VmRSS")
            if h:
                res.tm_hwm_kib[tm] = max(res.tm_hwm_kib.get(tm, 0), h)
            if r:
                res.tm_rss_kib[tm] = r
        time.sleep(interval)
    res.wall = time.monotonic() - start
    res.returncode = proc.returncode
    for th in threads:
        th.join(5)
    return res


def mib(kib):
    return f"{kib / 1024:.1f} MiB"
