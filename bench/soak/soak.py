#!/usr/bin/env python3
"""bench/soak/soak.py: a soak run of the real `parley run` under a steady mixed load.

What it does
  1. Copies the parley binary and fake_llm_server into a temporary work directory (the build
     directory may be rebuilt while the soak runs) and starts
     `fake_llm_server --fault-every N --delay-ms D` on 127.0.0.1: every Nth chat completion
     fails, in turn, as HTTP 500 + Retry-After 1, a stream cut after its first event, and a
     malformed body.
  2. Writes parley.yaml (the fake as the only LLM provider, the HTTP channel on 127.0.0.1 and a
     free port, the database, capabilities.yaml and prices.yaml in the work directory, the
     per-sender rate limit at 30 messages a minute) and starts
     `parley run --console on --http 127.0.0.1:0`, its stdin a pipe: the console channel reads
     plain lines from it and prints replies and reminders on stdout; log lines go to stderr.
  3. Drives a steady mixed load for --minutes:
     - HTTP POST /v1/messages at --rate messages/s from a pool of simulated users (each with at
       most one request in flight and under 20 messages a minute; every minute the oldest leave
       and new user ids join): LLM turns (some with ?stream=1), /commands (calc, todo, notes,
       lists, mood, time, remember/recall), /remind (refused on the HTTP channel, which cannot
       push; an older parley fired it into an outbox entry that stayed pending), redeliveries of one
       message id (must answer "duplicate"), a few malformed bodies (must answer 400) and a few
       GETs of /api/usage, /reports, /metrics;
     - the console: a line every --console-every s (chat, /calc, and /remind in 3-55 s so that
       reminders fire on the console during the run, each checked against its due time: one
       printed more than --reminder-late-s after it is an unexpected error);
     - a configuration reload every --reload-every s: capabilities.yaml rewritten with a
       harmless change (alternately in place and by rename), every 4th time prices.yaml too,
       every 3rd time a SIGHUP as well; each must show up as a "reloaded" log line.
  4. Every --sample-every s (10) samples parley's RSS, peak RSS, fds, threads, CPU, the WAL and
     database sizes, the write-queue depth and writes, the hot cache, LLM calls by outcome
     (/metrics), /healthz, and the interval's messages sent / answered / errors, p50/p99/max
     latency of the HTTP messages and the reminders fired. One line per sample is printed.
  5. At the end: the table, the least-squares slopes of RSS (KiB/min) and fds (/min), over the
     whole run and over its second half (after warm-up), the totals, every unexpected error,
     reminders that fired late or never (read back from the database), `parley db check` on
     the database after parley stopped; writes table.txt, samples.csv, samples.json,
     summary.json, chart.svg (RSS, fds, threads, WAL, latency, throughput), unexpected.txt,
     parley.log (its stderr) and console.log (its stdout) to --out.

  Errors are classified. Expected: an LLM attempt failing with one of the three injected
  faults (a warning, then a retry), a turn that ends in llm_error while such faults were being
  logged, the memory extractor's warning that the fake's "ok" is no extraction (an artefact of
  the fake), 400 for the malformed bodies. Unexpected: any other HTTP status, a connection
  error or timeout, a wrong or missing answer, any other warning/error/critical log line, a
  reminder that never fires, parley exiting early or not with 0 after SIGTERM.

  Every process it starts it stops (also on Ctrl-C, SIGTERM or an exception; the children also
  get SIGTERM through PR_SET_PDEATHSIG if this script dies); it never signals anything else.
  Everything listens and connects on 127.0.0.1 only. Python 3.11 standard library only.

How to run (from the repository root, after a release build):
  python3 bench/soak/soak.py --minutes 3 --out /tmp/soak3          # a smoke run
  nohup python3 bench/soak/soak.py --minutes 32 --out /work/tmp/soak32 > /work/tmp/soak32.log 2>&1 &
  python3 bench/soak/soak.py --help                                   # every option

Exit code: 0 when the run completed with no unexpected error, 1 when there were unexpected
errors (or parley failed), 2 when it could not start.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

# --- log classification ------------------------------------------------------------------------

LOG_RE = re.compile(r"^\[(?P<ts>[^\]]+)\] \[(?P<logger>[^\]]+)\] \[(?P<level>[a-z]+)\] (?P<msg>.*)$")
# The warning of one failed LLM attempt, for each fault fake_llm_server injects.
FAULT_SIGNATURES = {
    "http_500": "HTTP 500 server error: scripted error",
    "cut_stream": "transfer closed with outstanding read data remaining",
    "malformed_stream": "the stream ended without any event",
    "malformed_body": "malformed",
}
LLM_ATTEMPT_RE = re.compile(r"^LLM call to \S+ \(model [^)]*\): (?P<what>.*) \[attempt (?P<n>\d+)\]$")
EXTRACTION_FAILED_RE = re.compile(r"^memory: extraction for conversation \d+ failed: (?P<what>.*)$")
# The fake answers "ok" to everything, also to the memory extractor, which wants JSON.
EXTRACTION_ARTEFACT_RE = re.compile(r"^memory: extraction for conversation \d+: ")
RELOAD_CAPS_RE = re.compile(r"capabilities\.yaml: reloaded; in force from the next turn")
RELOAD_PRICES_RE = re.compile(r"prices\.yaml: reloaded; ")
SIGHUP_RE = re.compile(r"^SIGHUP: reading the configuration files again")
REMINDER_FIRED_RE = re.compile(r"^reminder \d+ fired")

REMINDER_LINE_RE = re.compile(r"^⏰ Reminder(?P<late> \(late[^)]*\))?: (?P<text>.*)$")
# What a turn says when it could not answer (bot/src/pipeline/tool_loop.cpp, turn.cpp).
ERROR_REPLY_PATTERNS = [
    ("llm_error", "I can't reach the language model right now"),
    ("llm_error", "the language model account is out of credit"),
    ("deadline", "I ran out of time"),
    ("context_error", "Something went wrong on my side"),
    ("no_answer", "(no answer)"),
    ("iteration_limit", "I stopped after"),
]

WORDS = ("the quick brown fox jumps over a lazy dog while seven tired owls count stars above "
         "an old river bridge near the market and somebody hums a tune about rain").split()


def now() -> float:
    return time.monotonic()


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs; None with fewer than 3 points."""
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if len(pts) < 3:
        return None
    n = len(pts)
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def fit_line(xs, ys):
    """(slope, intercept) of the least-squares line, or None."""
    b = slope(xs, ys)
    if b is None:
        return None
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return b, my - b * mx


# --- processes ---------------------------------------------------------------------------------

_libc = None


def _die_with_parent():
    """preexec_fn: SIGTERM this child when the thread that started it (our main thread) dies."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def read_line_with_timeout(stream, timeout_s: float) -> str | None:
    """One line from a pipe, or None on timeout/EOF (select on its fd; the pipe is unbuffered)."""
    import select

    buf = b""
    end = now() + timeout_s
    fd = stream.fileno()
    while now() < end:
        r, _, _ = select.select([fd], [], [], max(0.0, end - now()))
        if not r:
            continue
        ch = os.read(fd, 1)
        if not ch:
            return buf.decode(errors="replace") if buf else None
        if ch == b"\n":
            return buf.decode(errors="replace")
        buf += ch
    return None


def proc_stats(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads", "VmSize", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime, stime are fields 14 and 15 (1-based) of the whole line; after ") " index 11, 12.
        out["cpu_ticks"] = int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        pass
    return out


# --- the run's state ---------------------------------------------------------------------------


@dataclass
class Request:
    kind: str
    user: str
    started: float
    latency_ms: float = 0.0
    status: int | None = None
    outcome: str = "ok"          # ok | expected | unexpected
    detail: str = ""


@dataclass
class SimUser:
    name: str
    conversation: str
    busy: bool = False
    retiring: bool = False
    sent: deque = field(default_factory=deque)  # monotonic times of messages sent


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        # Reentrant: the bookkeeping helpers (add_unexpected, …) take it too.
        self.lock = threading.RLock()
        self.stop_load = threading.Event()
        self.t0 = None  # monotonic start of the load
        self.workdir: Path | None = None
        self.out = Path(args.out).resolve()
        self.fake: subprocess.Popen | None = None
        self.parley: subprocess.Popen | None = None
        self.parley_exit: int | None = None
        self.base = None  # (host, port) of the HTTP channel
        self.threads: list[threading.Thread] = []
        self.seq = 0
        # results
        self.requests_done: list[Request] = []      # every finished HTTP request
        self.interval_requests: list[Request] = []  # since the last sample
        self.unexpected: list[dict] = []
        self.unexpected_count = Counter()
        self.expected_count = Counter()
        self.expected_examples: dict[str, list] = {}  # kind -> a few details
        self.counts = Counter()
        self.fault_times: deque = deque(maxlen=2000)  # monotonic times of injected-fault log lines
        self.samples: list[dict] = []
        self.users: list[SimUser] = []
        self.user_serial = 0
        # console
        self.console_pending = None  # (seq, sent_at, kind, text)
        self.console_latencies: list[float] = []
        self.console_expect_reminders: dict[str, float] = {}  # tag -> expected due (wall time)
        self.reminder_lateness: list[float] = []
        self.interval_counts = Counter()
        self.log_file = None
        self.console_file = None
        self.http_reminders: dict[str, float] = {}  # tag -> expected due (wall time)
        self.reload_edits = Counter()
        self.stderr_tail: deque = deque(maxlen=50)

    # -- bookkeeping ----------------------------------------------------------------------------

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else now() - self.t0

    def next_seq(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    def add_unexpected(self, kind: str, detail: str, line: str = ""):
        with self.lock:
            self.unexpected_count[kind] += 1
            self.interval_counts["unexpected"] += 1
            if len(self.unexpected) < 500:
                self.unexpected.append({"t_s": round(self.elapsed(), 1), "kind": kind,
                                        "detail": detail[:500], "line": line[:1000]})
        print(f"[soak {self.elapsed():7.1f}s] UNEXPECTED {kind}: {detail[:300]}", flush=True)

    def add_expected(self, kind: str, detail: str = ""):
        with self.lock:
            self.expected_count[kind] += 1
            self.interval_counts["expected"] += 1
            examples = self.expected_examples.setdefault(kind, [])
            if len(examples) < 3:
                examples.append({"t_s": round(self.elapsed(), 1), "detail": detail[:300]})

    def fault_recent(self, start: float, end: float) -> bool:
        with self.lock:
            return any(start - 1.0 <= t <= end + 1.0 for t in self.fault_times)

    # -- start ----------------------------------------------------------------------------------

    def setup(self):
        a = self.args
        self.out.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="parley-soak-", dir=a.tmp))
        (self.workdir / "bin").mkdir()
        (self.workdir / "data").mkdir()
        (self.workdir / "home").mkdir()
        self.parley_bin = self.workdir / "bin" / "parley"
        self.fake_bin = self.workdir / "bin" / "fake_llm_server"
        for src, dst in ((a.parley, self.parley_bin), (a.fake_llm, self.fake_bin)):
            if not Path(src).is_file():
                raise SystemExit(f"soak: {src} does not exist (build the release preset first)")
            shutil.copy2(src, dst)
        self.log_file = open(self.out / "parley.log", "w", encoding="utf-8")
        self.console_file = open(self.out / "console.log", "w", encoding="utf-8")
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.workdir / "home"),
            "USER": "soak",
            "LANG": "C.UTF-8",
            "TZ": "UTC",
        }
        print(f"soak: work dir {self.workdir}; out {self.out}", flush=True)

    def start_fake(self):
        a = self.args
        self.fake = subprocess.Popen(
            [str(self.fake_bin), "--port", "0", "--threads", "1", "--fault-every",
             str(a.fault_every), "--delay-ms", str(a.delay_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(self.out / "fake_llm.log", "w"), cwd=self.workdir, env=self.env,
            preexec_fn=_die_with_parent, start_new_session=True, bufsize=0)
        line = read_line_with_timeout(self.fake.stdout, 15)
        if not line or not line.startswith("port "):
            raise SystemExit(f"soak: fake_llm_server did not say its port (got {line!r})")
        self.fake_port = int(line.split()[1])

    def write_capabilities(self, revision: int, in_place: bool):
        text = f"""# capabilities.yaml written by bench/soak/soak.py, revision {revision}
capabilities:
  calc: {{enabled: true, timeout_ms: {2000 + revision % 2}}}
  time: {{enabled: true}}
  todo: {{enabled: true, rate_limit: {{calls: 60, per_seconds: 60}}}}
  notes: {{enabled: true, rate_limit: {{calls: 60, per_seconds: 60}}}}
  memory: {{enabled: true, rate_limit: {{calls: 60, per_seconds: 60}}}}
  reminders: {{enabled: true, rate_limit: {{calls: 30, per_seconds: 60}}, settings: {{max_pending: 100}}}}
  lists: {{enabled: true}}
  mood: {{enabled: true}}
  web_fetch: {{enabled: false}}   # nothing leaves 127.0.0.1
"""
        self._write(self.workdir / "capabilities.yaml", text, in_place)

    def write_prices(self, revision: int, in_place: bool):
        text = f"""# prices.yaml written by bench/soak/soak.py
version: "soak-{revision}"
models:
  - match: "fake-model*"
    effective: 2024-01-01
    input: {0.15 + (revision % 2) / 100:.2f}
    output: 0.60
"""
        self._write(self.workdir / "prices.yaml", text, in_place)

    @staticmethod
    def _write(path: Path, text: str, in_place: bool):
        if in_place and path.exists():
            with open(path, "r+", encoding="utf-8") as f:
                f.seek(0)
                f.write(text)
                f.truncate()
        else:
            tmp = path.with_name(path.name + ".soak-tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)

    def write_config(self):
        w = self.workdir
        self.write_capabilities(0, in_place=False)
        self.write_prices(0, in_place=False)
        cache = ("" if self.args.cache_mib is None else
                 f"  cache: {{max_bytes_mib: {self.args.cache_mib}}}\n")
        if self.args.page_cache_kib is not None:
            cache += f"  page_cache_kib: {self.args.page_cache_kib}\n"
        (w / "parley.yaml").write_text(f"""# parley.yaml written by bench/soak/soak.py
storage:
  path: {w / 'data' / 'parley.db'}
{cache}llm:
  provider: fake
  providers:
    fake: {{base_url: "http://{HOST}:{self.fake_port}/v1", api_key_env: ""}}
  roles:
    smart: [fake-model]
  default_role: smart
channels:
  http:
    listen: {HOST}:0
access:
  mode: open
  admins: ["console:*"]
  rate_limit: {{messages: 30, per_seconds: 60}}
money:
  prices: {w / 'prices.yaml'}
capabilities:
  file: {w / 'capabilities.yaml'}
log:
  level: info
""", encoding="utf-8")

    def start_parley(self):
        a = self.args
        cmd = [str(self.parley_bin), "--config", str(self.workdir / "parley.yaml"), "run",
               "--http", f"{HOST}:0", "--console", "on", "--grace", str(a.grace)]
        self.parley = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=self.workdir, env=self.env, preexec_fn=_die_with_parent,
            start_new_session=True, bufsize=0)
        self.pid = self.parley.pid
        # The first line: "parley … ready in N ms: http://127.0.0.1:PORT/v1/messages, …".
        banner = []
        deadline = now() + 30
        while now() < deadline and self.base is None:
            line = read_line_with_timeout(self.parley.stdout, max(0.1, deadline - now()))
            if line is None:
                break
            banner.append(line)
            self.console_file.write(f"[banner] {line}\n")
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.base = (HOST, int(m.group(1)))
        if self.base is None:
            err = b""
            try:
                err = os.read(self.parley.stderr.fileno(), 65536) if self.parley.poll() is not None else b""
            except Exception:  # noqa: BLE001
                pass
            raise SystemExit(f"soak: parley did not say where it listens: {banner} {err!r}")
        self.banner = banner
        t = threading.Thread(target=self.read_stderr, name="stderr", daemon=True)
        t.start()
        self.threads.append(t)
        t = threading.Thread(target=self.read_stdout, name="stdout", daemon=True)
        t.start()
        self.threads.append(t)
        # Ready?
        for _ in range(100):
            st, _, _ = self.http("GET", "/readyz", timeout=5)
            if st == 200:
                break
            time.sleep(0.1)
        else:
            raise SystemExit("soak: /readyz never answered 200")
        print(f"soak: parley pid {self.pid} on http://{self.base[0]}:{self.base[1]}; "
              f"fake LLM on port {self.fake_port} (fault every {a.fault_every})", flush=True)

    # -- parley's output ------------------------------------------------------------------------

    def read_stderr(self):
        f = self.parley.stderr
        buf = b""
        while True:
            try:
                chunk = os.read(f.fileno(), 65536)
            except (OSError, ValueError):
                break
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self.on_log_line(raw.decode(errors="replace"))
        if buf:
            self.on_log_line(buf.decode(errors="replace"))

    def on_log_line(self, line: str):
        t = now()
        self.log_file.write(line + "\n")
        self.log_file.flush()
        self.stderr_tail.append(line)
        if not line.strip():
            return
        m = LOG_RE.match(line)
        if not m:
            # Not a log line: a crash report, a sanitizer, a stray print.
            self.add_unexpected("stderr", "a line on stderr that is no log line", line)
            return
        level, msg = m.group("level"), m.group("msg")
        with self.lock:
            self.counts[f"log_{level}"] += 1
            self.interval_counts[f"log_{level}"] += 1
        if RELOAD_CAPS_RE.search(msg):
            self.counts["reloaded_capabilities"] += 1
        elif RELOAD_PRICES_RE.search(msg):
            self.counts["reloaded_prices"] += 1
        elif SIGHUP_RE.search(msg):
            self.counts["sighup_seen"] += 1
        elif REMINDER_FIRED_RE.search(msg):
            self.counts["reminders_fired_log"] += 1
        if level not in ("warning", "error", "critical"):
            return
        am = LLM_ATTEMPT_RE.match(msg)
        if am and level == "warning":
            what = am.group("what")
            for kind, sig in FAULT_SIGNATURES.items():
                if sig in what:
                    with self.lock:
                        self.fault_times.append(t)
                        self.counts["fault_attempts_logged"] += 1
                        self.interval_counts["faults"] += 1
                    self.add_expected(f"injected fault: {kind}", line)
                    return
            self.add_unexpected("llm_attempt", "an LLM attempt failed for a reason not injected",
                                line)
            return
        em = EXTRACTION_FAILED_RE.match(msg)
        if em and level == "warning":
            if any(sig in em.group("what") for sig in FAULT_SIGNATURES.values()):
                self.add_expected("memory extraction failed after injected faults", line)
                return
        if EXTRACTION_ARTEFACT_RE.match(msg) and level == "warning":
            self.add_expected("memory extraction: the fake's 'ok' is no extraction (artefact)",
                              line)
            return
        if level == "warning":
            self.add_unexpected("log_warning", msg, line)
        else:
            self.add_unexpected(f"log_{level}", msg, line)

    def read_stdout(self):
        f = self.parley.stdout
        buf = b""
        while True:
            try:
                chunk = os.read(f.fileno(), 65536)
            except (OSError, ValueError):
                break
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self.on_console_line(raw.decode(errors="replace"))
        if buf:
            self.on_console_line(buf.decode(errors="replace"))

    def on_console_line(self, line: str):
        t = now()
        self.console_file.write(f"[{self.elapsed():8.1f}] {line}\n")
        self.console_file.flush()
        m = REMINDER_LINE_RE.match(line)
        if m:
            tag = m.group("text").strip()
            with self.lock:
                due = self.console_expect_reminders.pop(tag, None)
                self.counts["console_reminders_fired"] += 1
                self.interval_counts["reminders_fired"] += 1
            if due is None:
                self.add_unexpected("console_reminder", "a reminder fired that was not set (or twice)",
                                    line)
            else:
                late = time.time() - due
                with self.lock:
                    self.reminder_lateness.append(late)
                if late < -1.5:
                    self.add_unexpected("console_reminder", f"fired {-late:.1f} s early", line)
                elif late > self.args.reminder_late_s:
                    self.add_unexpected("reminder_late", f"{tag} printed {late:.1f} s after its "
                                        "due time", line)
            return
        with self.lock:
            pending = self.console_pending
            if pending is not None:
                self.console_pending = None
        if pending is None:
            # The rest of the start-up banner, an extra line of a multi-line reply, or an alert
            # line: counted, not judged.
            with self.lock:
                self.counts["console_extra_lines" if self.counts["console_sent"] else
                            "console_banner_lines"] += 1
            return
        seq, sent, kind, text = pending
        latency = (t - sent) * 1000
        with self.lock:
            self.console_latencies.append(latency)
            self.counts["console_answered"] += 1
            self.interval_counts["console_answered"] += 1
        for stop, needle in ERROR_REPLY_PATTERNS:
            if needle in line:
                if stop == "llm_error" and self.fault_recent(sent, t):
                    self.add_expected("console turn ended in llm_error after injected faults",
                                      f"{text!r}: {line}")
                else:
                    self.add_unexpected("console_reply", f"{stop} for {text!r}", line)
                return
        if kind == "remind" and not line.startswith("Reminder #"):
            self.add_unexpected("console_reply", f"/remind was not confirmed: {text!r}", line)
            with self.lock:
                tag = text.split()[-1]
                self.console_expect_reminders.pop(tag, None)
        elif kind == "calc":
            expected = text.split("=")[-1]
            if expected not in line:
                self.add_unexpected("console_reply", f"wrong /calc answer for {text!r}", line)

    # -- HTTP -----------------------------------------------------------------------------------

    def http(self, method: str, path: str, body: bytes | None = None, timeout: float = 60):
        """(status, headers dict, body bytes); status None and the error text on failure."""
        conn = http.client.HTTPConnection(self.base[0], self.base[1], timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        except (OSError, http.client.HTTPException) as e:
            return None, {}, f"{type(e).__name__}: {e}".encode()
        finally:
            conn.close()

    def pick_user(self) -> SimUser | None:
        t = now()
        with self.lock:
            free = []
            for u in self.users:
                while u.sent and u.sent[0] < t - 60:
                    u.sent.popleft()
                if not u.busy and not u.retiring and len(u.sent) < self.args.per_user_per_minute:
                    free.append(u)
            if not free:
                return None
            u = self.rng.choice(free)
            u.busy = True
            u.sent.append(t)
            return u

    def new_user(self) -> SimUser:
        self.user_serial += 1
        n = self.user_serial
        return SimUser(name=f"soak-user-{n}", conversation=f"soak-conv-{n}")

    def rotate_users(self):
        with self.lock:
            old = [u for u in self.users if not u.retiring][: self.args.new_users_per_minute]
            for u in old:
                u.retiring = True
            self.users = [u for u in self.users if not (u.retiring and not u.busy)]
            for _ in range(self.args.new_users_per_minute):
                self.users.append(self.new_user())
            self.counts["users_total"] = self.user_serial

    def one_request(self, user: SimUser, kind: str):
        try:
            self._one_request(user, kind)
        except Exception as e:  # noqa: BLE001 - a bug here must not stop the load silently
            self.add_unexpected("soak_bug", f"{type(e).__name__}: {e}", traceback.format_exc())
        finally:
            with self.lock:
                user.busy = False

    def _post(self, kind, user, text, stream=False, msg_id=None, raw=None) -> Request:
        body = raw if raw is not None else json.dumps(
            {"conversation": user.conversation, "user": user.name, "text": text,
             **({"id": msg_id} if msg_id else {})}).encode()
        req = Request(kind=kind, user=user.name, started=now())
        with self.lock:
            self.counts["http_posts"] += 1
            self.interval_counts["http_posts"] += 1
        status, headers, data = self.http("POST", "/v1/messages" + ("?stream=1" if stream else ""),
                                          body, timeout=self.args.request_timeout)
        req.latency_ms = (now() - req.started) * 1000
        req.status = status
        req.detail = data.decode(errors="replace")
        req.headers = headers
        return req

    @staticmethod
    def parse_sse(text: str) -> tuple[str | None, dict | None, int]:
        """(final event name, its JSON, restarts) of an SSE answer."""
        final, payload, restarts = None, None, 0
        for block in text.split("\n\n"):
            ev, data = None, []
            for ln in block.split("\n"):
                if ln.startswith("event:"):
                    ev = ln[6:].strip()
                elif ln.startswith("data:"):
                    data.append(ln[5:].strip())
            if ev == "restart":
                restarts += 1
            if ev in ("reply", "error"):
                final = ev
                try:
                    payload = json.loads("\n".join(data))
                except ValueError:
                    payload = None
        return final, payload, restarts

    def judge(self, req: Request, text: str, stream=False, expect=None):
        """Classifies one answered message; records it."""
        body = None
        if req.status is None:
            self.finish(req, "unexpected", "connection", f"{req.kind}: {req.detail}")
            return None
        if stream and req.status == 200:
            final, body, restarts = self.parse_sse(req.detail)
            if restarts:
                with self.lock:
                    self.counts["stream_restarts"] += restarts
            if final != "reply" or body is None:
                if final == "error" and body and self.fault_recent(req.started, now()):
                    self.finish(req, "expected", "stream ended in an error event after faults",
                                f"{req.kind} {text[:80]!r}: {req.detail[-200:]}")
                    return body
                self.finish(req, "unexpected", "stream",
                            f"{req.kind}: stream ended with {final!r}: {req.detail[-300:]}")
                return None
        else:
            try:
                body = json.loads(req.detail) if req.detail else None
            except ValueError:
                body = None
        if req.status != 200:
            retry = req.headers.get("Retry-After", "")
            self.finish(req, "unexpected", f"http_{req.status}",
                        f"{req.kind} {text[:80]!r}: HTTP {req.status} (Retry-After {retry!r}) "
                        f"{req.detail[:300]}")
            return None
        if not isinstance(body, dict):
            self.finish(req, "unexpected", "body", f"{req.kind}: not a JSON object: {req.detail[:200]}")
            return None
        stop = body.get("stop")
        reply = body.get("reply", "")
        if stop in ("llm_error", "deadline"):
            if stop == "llm_error" and self.fault_recent(req.started, now()):
                self.finish(req, "expected", "turn ended in llm_error after injected faults",
                            f"{req.kind} {text[:80]!r} after {req.latency_ms:.0f} ms: {reply}")
            else:
                self.finish(req, "unexpected", f"stop_{stop}", f"{req.kind} {text[:80]!r}: {reply}")
            return body
        if stop not in ("answered", "command", "duplicate"):
            self.finish(req, "unexpected", f"stop_{stop}", f"{req.kind} {text[:80]!r}: {reply}")
            return body
        if expect is not None:
            problem = expect(body)
            if problem:
                self.finish(req, "unexpected", "wrong_answer", f"{req.kind} {text[:80]!r}: {problem}")
                return body
        self.finish(req, "ok")
        return body

    def finish(self, req: Request, outcome: str, kind: str = "", detail: str = ""):
        req.outcome = outcome
        phase_detail = detail
        req.detail = ""  # do not keep bodies
        with self.lock:
            self.requests_done.append(req)
            self.interval_requests.append(req)
            self.counts[f"http_{outcome}"] += 1
            self.interval_counts[f"http_{outcome}"] += 1
        if outcome == "unexpected":
            self.add_unexpected(f"http_{kind}", detail)
        elif outcome == "expected":
            self.add_expected(kind, phase_detail)

    def _one_request(self, user: SimUser, kind: str):
        seq = self.next_seq()
        rng = self.rng
        if kind == "chat":
            text = f"soak {seq}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
            stream = rng.random() < self.args.stream_share
            req = self._post("chat_stream" if stream else "chat", user, text, stream=stream)
            self.judge(req, text, stream=stream,
                       expect=lambda b: None if b.get("stop") == "answered" and b.get("reply")
                       else f"stop {b.get('stop')!r}, reply {b.get('reply')!r}")
        elif kind == "command":
            a, b = rng.randint(1, 999), rng.randint(1, 999)
            choices = [
                (f"/calc {a}+{b}", str(a + b)),
                ("/time UTC", None),
                (f"/todo add soak item {seq}", None),
                ("/todo list", None),
                (f"/notes save soak note {seq} about {rng.choice(WORDS)}", None),
                (f"/notes search {rng.choice(WORDS)}", None),
                (f"/list groceries add 2 apples {seq}", None),
                (f"/mood {rng.randint(1, 10)} soak", None),
                (f"/remember soak fact {seq}: I like {rng.choice(WORDS)}", None),
                (f"/recall {rng.choice(WORDS)}", None),
            ]
            text, must = rng.choice(choices)
            req = self._post("command", user, text)

            def check(body, must=must):
                if body.get("stop") != "command":
                    return f"stop {body.get('stop')!r} (expected command): {body.get('reply')!r}"
                if must is not None and must not in body.get("reply", ""):
                    return f"reply {body.get('reply')!r} lacks {must!r}"
                return None

            self.judge(req, text, expect=check)
        elif kind == "remind":
            secs = rng.randint(20, 50)
            tag = f"soak-h{seq}"
            text = f"/remind in {secs}s {tag}"
            due = time.time() + secs
            req = self._post("remind", user, text)
            # A channel that cannot push refuses reminders (parley after 2026-12-07); an older
            # build confirms them and they fire into an outbox entry that stays pending.
            body = self.judge(req, text, expect=lambda b: None if (
                str(b.get("reply", "")).startswith("Reminder #")
                or "only answers requests" in str(b.get("reply", "")))
                else f"neither confirmed nor refused: {b.get('reply')!r}")
            if body and str(body.get("reply", "")).startswith("Reminder #"):
                with self.lock:
                    self.http_reminders[tag] = due
        elif kind == "duplicate":
            text = f"soak {seq}: a message delivered twice"
            msg_id = f"soak-dup-{seq}"
            req = self._post("dup_first", user, text, msg_id=msg_id)
            first = self.judge(req, text, expect=lambda b: None if b.get("stop") == "answered"
                               else f"stop {b.get('stop')!r}")
            req = self._post("dup_again", user, text, msg_id=msg_id)
            self.judge(req, text, expect=lambda b: None if b.get("duplicate") is True else
                       f"a redelivery was not answered as a duplicate: {b}")
            del first
        elif kind == "bad":
            req = self._post("bad_request", user, "", raw=b'{"conversation": "x", "user": ')
            if req.status == 400:
                self.finish(req, "expected", "400 for a malformed body (sent on purpose)")
            else:
                self.finish(req, "unexpected", f"bad_{req.status}",
                            f"a malformed body got {req.status}: {req.detail[:200]}")
        elif kind == "page":
            path = rng.choice(["/api/usage", "/reports", "/metrics", "/healthz"])
            req = Request(kind="page", user=user.name, started=now())
            status, _, data = self.http("GET", path, timeout=self.args.request_timeout)
            req.latency_ms = (now() - req.started) * 1000
            req.status = status
            with self.lock:
                self.counts["pages"] += 1
            if status != 200:
                self.add_unexpected("page", f"GET {path}: {status} {data[:200]!r}")

    # -- load threads ---------------------------------------------------------------------------

    def http_load(self, pool: ThreadPoolExecutor):
        a = self.args
        weights = [("chat", 0.62), ("command", 0.18), ("remind", 0.06), ("duplicate", 0.06),
                   ("bad", 0.02), ("page", 0.06)]
        kinds = [k for k, _ in weights]
        ws = [w for _, w in weights]
        interval = 1.0 / a.rate
        nxt = now()
        last_rotate = now()
        while not self.stop_load.is_set():
            nxt += interval
            delay = nxt - now()
            if delay > 0:
                self.stop_load.wait(delay)
            else:
                nxt = now()  # behind: do not burst to catch up
            if self.stop_load.is_set():
                break
            if now() - last_rotate >= 60:
                last_rotate = now()
                self.rotate_users()
            kind = self.rng.choices(kinds, ws)[0]
            user = self.pick_user()
            if user is None:
                with self.lock:
                    self.counts["http_skipped_no_free_user"] += 1
                continue
            with self.lock:
                self.counts[f"sent_{kind}"] += 1
            pool.submit(self.one_request, user, kind)

    def console_send(self, line: str):
        try:
            self.parley.stdin.write((line + "\n").encode())
            self.parley.stdin.flush()
        except (OSError, ValueError) as e:
            self.add_unexpected("console_write", f"{type(e).__name__}: {e}")

    def console_load(self):
        a = self.args
        rng = random.Random(a.seed + 1)
        while not self.stop_load.wait(a.console_every):
            with self.lock:
                pending = self.console_pending
            if pending is not None:
                if now() - pending[1] > a.request_timeout:
                    self.add_unexpected("console_timeout",
                                        f"no console reply in {a.request_timeout} s to {pending[3]!r}")
                    with self.lock:
                        self.console_pending = None
                continue
            seq = self.next_seq()
            r = rng.random()
            if r < 0.45:
                kind, text = "chat", f"console soak {seq}: " + " ".join(
                    rng.choice(WORDS) for _ in range(rng.randint(3, 10)))
            elif r < 0.80:
                # Some soon, most later: a reminder due before the scheduler's next wake-up
                # shows whether it is woken for it.
                secs = rng.randint(3, 15) if rng.random() < 0.3 else rng.randint(20, 55)
                tag = f"soak-c{seq}"
                kind, text = "remind", f"/remind in {secs}s {tag}"
                with self.lock:
                    self.console_expect_reminders[tag] = time.time() + secs
            else:
                x, y = rng.randint(1, 999), rng.randint(1, 999)
                kind, text = "calc", f"/calc {x}*{y}"
            # For /calc the expected result rides along after "=" (see on_console_line).
            shown = f"{text}={x * y}" if kind == "calc" else text
            with self.lock:
                self.console_pending = (seq, now(), kind, shown)
                self.counts["console_sent"] += 1
                self.interval_counts["console_sent"] += 1
            self.console_send(text)

    def reloads(self):
        a = self.args
        rev = 0
        while not self.stop_load.wait(a.reload_every):
            rev += 1
            in_place = rev % 2 == 0
            self.write_capabilities(rev, in_place)
            self.reload_edits["capabilities"] += 1
            if rev % 4 == 0:
                self.write_prices(rev, in_place)
                self.reload_edits["prices"] += 1
            if rev % 3 == 0:
                time.sleep(1.0)  # apart from the file's own reload
                try:
                    os.kill(self.pid, signal.SIGHUP)
                    self.reload_edits["sighup"] += 1
                except OSError as e:
                    self.add_unexpected("sighup", str(e))
            with self.lock:
                self.counts["reloads"] = rev

    # -- sampling -------------------------------------------------------------------------------

    def metrics(self) -> dict:
        st, _, data = self.http("GET", "/metrics", timeout=10)
        out = {}
        if st != 200:
            self.add_unexpected("metrics", f"GET /metrics: {st} {data[:200]!r}")
            return out
        llm_ok = llm_fail = 0
        for line in data.decode(errors="replace").splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                v = float(value)
            except ValueError:
                continue
            if name.startswith("parley_llm_calls_total{"):
                if 'outcome="ok"' in name:
                    llm_ok += v
                else:
                    llm_fail += v
            elif name == "parley_store_queue_depth":
                out["queue_depth"] = int(v)
            elif name == 'parley_store_writes_total{result="committed"}':
                out["writes_committed"] = int(v)
            elif name == 'parley_store_writes_total{result="failed"}':
                out["writes_failed"] = int(v)
            elif name == 'parley_store_writes_total{result="rejected"}':
                out["writes_rejected"] = int(v)
            elif name == 'parley_cache_entries':
                out["cache_entries"] = int(v)
            elif name == 'parley_cache_bytes':
                out["cache_kib"] = round(v / 1024, 1)
            elif name == 'parley_db_bytes{file="wal"}':
                out["wal_metric_kib"] = round(v / 1024, 1)
            elif name == 'parley_db_bytes{file="db"}':
                out["db_kib"] = round(v / 1024, 1)
            elif name == "parley_up":
                out["up"] = int(v)
            elif name == "parley_alerts_open":
                out["alerts_open"] = int(v)
            elif name == "parley_usage_rows_failed_total":
                out["usage_rows_failed"] = int(v)
        out["llm_ok_total"] = int(llm_ok)
        out["llm_failed_total"] = int(llm_fail)
        return out

    def sample(self, prev_cpu, prev_t):
        t = now()
        ps = proc_stats(self.pid)
        wal = self.workdir / "data" / "parley.db-wal"
        try:
            wal_kib = round(wal.stat().st_size / 1024, 1)
        except OSError:
            wal_kib = 0.0
        h0 = now()
        st, _, data = self.http("GET", "/healthz", timeout=10)
        healthz_ms = (now() - h0) * 1000
        if st != 200:
            self.add_unexpected("healthz", f"GET /healthz: {st} {data[:200]!r}")
        m = self.metrics()
        with self.lock:
            answered = sum(1 for r in self.interval_requests if r.status is not None)
            reqs = [r for r in self.interval_requests if r.kind not in ("page", "bad_request")]
            self.interval_requests = []
            ic = self.interval_counts
            self.interval_counts = Counter()
            pending_console_rem = len(self.console_expect_reminders)
        lat = [r.latency_ms for r in reqs]
        cpu = ps.get("cpu_ticks")
        ticks = os.sysconf("SC_CLK_TCK")
        cpu_pct = None
        if cpu is not None and prev_cpu is not None and t > prev_t:
            cpu_pct = round(100.0 * (cpu - prev_cpu) / ticks / (t - prev_t), 1)
        prev = self.samples[-1] if self.samples else {}
        s = {
            "t_s": round(self.elapsed(), 1),
            "phase": "drain" if self.stop_load.is_set() else "load",
            "rss_kib": ps.get("VmRSS"),
            "hwm_kib": ps.get("VmHWM"),
            # Anonymous memory (heap: caches, SQLite page caches) apart from file-backed pages
            # (the binary, and the database mapped with mmap_size, which grows with it).
            "anon_kib": ps.get("RssAnon"),
            "file_kib": ps.get("RssFile"),
            "fds": ps.get("fds"),
            "threads": ps.get("Threads"),
            "cpu_pct": cpu_pct,
            "wal_kib": wal_kib,
            "db_kib": m.get("db_kib"),
            "queue_depth": m.get("queue_depth"),
            "writes": (m.get("writes_committed", 0) - prev.get("_writes_total", 0))
            if m.get("writes_committed") is not None else None,
            "writes_failed": m.get("writes_failed"),
            "writes_rejected": m.get("writes_rejected"),
            "cache_entries": m.get("cache_entries"),
            "cache_kib": m.get("cache_kib"),
            "llm_ok": m.get("llm_ok_total", 0) - prev.get("_llm_ok_total", 0),
            "llm_failed": m.get("llm_failed_total", 0) - prev.get("_llm_failed_total", 0),
            "sent": ic["http_posts"],
            "answered": answered,
            "exp_err": ic["expected"],
            "unexp_err": ic["unexpected"],
            "faults": ic["faults"],
            "console_sent": ic["console_sent"],
            "console_ans": ic["console_answered"],
            "rem_fired": ic["reminders_fired"],
            "rem_pending": pending_console_rem,
            "p50_ms": round(percentile(lat, 50), 1) if lat else None,
            "p99_ms": round(percentile(lat, 99), 1) if lat else None,
            "max_ms": round(max(lat), 1) if lat else None,
            "healthz_ms": round(healthz_ms, 1),
            "log_warn": ic["log_warning"],
            "log_err": ic["log_error"] + ic["log_critical"],
            "alerts_open": m.get("alerts_open"),
            "_writes_total": m.get("writes_committed", prev.get("_writes_total", 0)),
            "_llm_ok_total": m.get("llm_ok_total", prev.get("_llm_ok_total", 0)),
            "_llm_failed_total": m.get("llm_failed_total", prev.get("_llm_failed_total", 0)),
        }
        self.samples.append(s)
        if m.get("up") == 0:
            self.add_unexpected("store_down", "parley_up is 0: the writer stopped or a batch failed")
        if m.get("writes_failed"):
            if m["writes_failed"] != prev.get("writes_failed"):
                self.add_unexpected("writes_failed", f"store writes failed: {m['writes_failed']}")
        print(format_row(s), flush=True)
        return cpu, t

    # -- end ------------------------------------------------------------------------------------

    def check_reminders_in_db(self):
        """HTTP reminders (never pushed) must be fired in the database by now."""
        db = self.workdir / "data" / "parley.db"
        out = {}
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            try:
                rows = con.execute("SELECT text, state, due_at, fired_at, channel FROM reminders")
                late = []
                by_state = Counter()
                never = []
                wall = time.time() * 1000
                for text, state, due_at, fired_at, channel in rows:
                    by_state[f"{channel}:{state}"] += 1
                    if state == "fired" and fired_at is not None:
                        late.append((fired_at - due_at) / 1000.0)
                    elif state == "pending" and due_at < wall - 45_000:
                        never.append((text, channel, (wall - due_at) / 1000.0))
                out["by_state"] = dict(by_state)
                out["fired_late_s"] = {
                    "n": len(late),
                    "p50": percentile(late, 50), "p99": percentile(late, 99),
                    "max": max(late) if late else None}
                out["overdue_pending"] = len(never)
                for text, channel, over in never[:20]:
                    self.add_unexpected("reminder_not_fired",
                                        f"{channel} reminder {text!r} pending {over:.0f} s past due")
                outbox = Counter()
                for channel, state, n in con.execute(
                        "SELECT channel, state, count(*) FROM outbox GROUP BY channel, state"):
                    outbox[f"{channel}:{state}"] = n
                out["outbox"] = dict(outbox)
            finally:
                con.close()
        except sqlite3.Error as e:
            self.add_unexpected("db_read", f"reading the reminders failed: {e}")
        return out

    def stop_parley(self) -> int | None:
        p = self.parley
        if p is None or p.poll() is not None:
            return None if p is None else p.returncode
        try:
            p.send_signal(signal.SIGTERM)
        except OSError:
            pass
        try:
            return p.wait(timeout=self.args.grace + 20)
        except subprocess.TimeoutExpired:
            self.add_unexpected("stop", f"parley did not exit within {self.args.grace + 20} s of SIGTERM")
            p.kill()
            return p.wait(timeout=10)

    def stop_fake(self):
        p = self.fake
        if p is None or p.poll() is not None:
            return
        try:
            p.stdin.close()  # it stops when its stdin closes
        except OSError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def db_check(self):
        r = subprocess.run([str(self.parley_bin), "--config", str(self.workdir / "parley.yaml"),
                            "db", "check", "--json"], cwd=self.workdir, env=self.env,
                           capture_output=True, text=True, timeout=120)
        try:
            j = json.loads(r.stdout)
        except ValueError:
            j = {"raw": r.stdout[-2000:], "stderr": r.stderr[-2000:]}
        if r.returncode != 0:
            self.add_unexpected("db_check", f"parley db check exited {r.returncode}: {r.stdout[-500:]} {r.stderr[-500:]}")
        return r.returncode, j

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        self.setup()
        self.start_fake()
        self.write_config()
        self.start_parley()
        for _ in range(a.users):
            self.users.append(self.new_user())
        self.counts["users_total"] = self.user_serial
        print(header_row(), flush=True)
        self.t0 = now()
        pool = ThreadPoolExecutor(max_workers=a.workers, thread_name_prefix="http")
        for target, args in ((self.http_load, (pool,)), (self.console_load, ()),
                             (self.reloads, ())):
            t = threading.Thread(target=target, args=args, name=target.__name__, daemon=True)
            t.start()
            self.threads.append(t)
        end = self.t0 + a.minutes * 60
        next_sample = self.t0 + a.sample_every
        prev_cpu, prev_t = proc_stats(self.pid).get("cpu_ticks"), now()
        interrupted = None
        try:
            while now() < end:
                time.sleep(max(0.0, min(next_sample, end) - now()))
                if self.parley.poll() is not None:
                    self.add_unexpected("crash", f"parley exited with {self.parley.returncode} "
                                        "during the run", "\n".join(self.stderr_tail))
                    break
                if now() >= next_sample:
                    prev_cpu, prev_t = self.sample(prev_cpu, prev_t)
                    next_sample += a.sample_every
        except KeyboardInterrupt:
            interrupted = "interrupted"
            print("soak: interrupted; stopping and reporting what there is", flush=True)
        self.stop_load.set()
        pool.shutdown(wait=True, cancel_futures=True)
        # Let the last console reply and the reminders still due (at most ~55 s) come in.
        if self.parley.poll() is None and interrupted is None:
            try:
                wait_until = now() + a.drain_s
                while now() < wait_until:
                    with self.lock:
                        left = (len(self.console_expect_reminders) +
                                (self.console_pending is not None))
                    if left == 0:
                        break
                    time.sleep(1)
                prev_cpu, prev_t = self.sample(prev_cpu, prev_t)
            except KeyboardInterrupt:
                interrupted = "interrupted while draining"
        reminders = self.check_reminders_in_db() if self.parley.poll() is None else {}
        with self.lock:
            never = list(self.console_expect_reminders.items())
            self.console_expect_reminders.clear()
        for tag, due in never:
            self.add_unexpected("reminder_not_fired",
                                f"console reminder {tag} due {time.time() - due:.0f} s ago "
                                "never printed")
        if self.console_pending is not None:
            self.add_unexpected("console_timeout", f"no reply to {self.console_pending[3]!r}")
        self.parley_exit = self.stop_parley()
        if self.parley_exit != 0:
            self.add_unexpected("exit", f"parley exited {self.parley_exit} after SIGTERM "
                                "(expected 0)", "\n".join(self.stderr_tail))
        self.stop_fake()
        for t in self.threads:
            t.join(timeout=5)
        dbc = self.db_check() if self.parley_exit is not None else (None, {})
        return self.report(reminders, dbc, interrupted)

    def report(self, reminders, dbc, interrupted) -> int:
        a = self.args
        all_samples = self.samples
        # Slopes and figures over the load only; the last sample (after the load, while the
        # reminders still due come in) is in the table and the chart.
        samples = [s for s in all_samples if s["phase"] == "load"] or all_samples
        for s in all_samples:
            s["rss_minus_cache_kib"] = (s["rss_kib"] - s["cache_kib"]
                                        if s["rss_kib"] is not None and s["cache_kib"] is not None
                                        else None)
        xs = [s["t_s"] / 60 for s in samples]
        half = [s for s in samples if s["t_s"] >= samples[-1]["t_s"] / 2] if samples else []
        hx = [s["t_s"] / 60 for s in half]

        def sl(key, ss, x):
            b = slope(x, [s[key] for s in ss])
            return None if b is None else round(b, 3)

        lat = [r.latency_ms for r in self.requests_done if r.kind not in ("page", "bad_request")]
        by_kind = {}
        for r in self.requests_done:
            by_kind.setdefault(r.kind, []).append(r.latency_ms)
        lateness = self.reminder_lateness
        t_end = samples[-1]["t_s"] if samples else 0
        lat = [r.latency_ms for r in self.requests_done if r.kind not in ("page", "bad_request")]
        summary = {
            "minutes_planned": a.minutes,
            "seconds_run": round(t_end, 1),
            "interrupted": interrupted,
            "rate_per_s": a.rate,
            "fault_every": a.fault_every,
            "delay_ms": a.delay_ms,
            "parley_exit": self.parley_exit,
            "slopes": {
                "rss_kib_per_min_all": sl("rss_kib", samples, xs),
                "rss_kib_per_min_second_half": sl("rss_kib", half, hx),
                "fds_per_min_all": sl("fds", samples, xs),
                "fds_per_min_second_half": sl("fds", half, hx),
                "threads_per_min_all": sl("threads", samples, xs),
                "wal_kib_per_min_all": sl("wal_kib", samples, xs),
                "cache_kib_per_min_all": sl("cache_kib", samples, xs),
                "cache_kib_per_min_second_half": sl("cache_kib", half, hx),
                "rss_anon_kib_per_min_all": sl("anon_kib", samples, xs),
                "rss_anon_kib_per_min_second_half": sl("anon_kib", half, hx),
                "rss_file_kib_per_min_all": sl("file_kib", samples, xs),
                "db_kib_per_min_all": sl("db_kib", samples, xs),
                "rss_minus_cache_kib_per_min_all": sl("rss_minus_cache_kib", samples, xs),
                "rss_minus_cache_kib_per_min_second_half": sl("rss_minus_cache_kib", half, hx),
            },
            "rss_kib": {"first": samples[0]["rss_kib"] if samples else None,
                        "last": samples[-1]["rss_kib"] if samples else None,
                        "min": min((s["rss_kib"] for s in samples if s["rss_kib"]), default=None),
                        "max": max((s["rss_kib"] for s in samples if s["rss_kib"]), default=None),
                        "peak_hwm": samples[-1]["hwm_kib"] if samples else None},
            "fds": {"first": samples[0]["fds"] if samples else None,
                    "last": samples[-1]["fds"] if samples else None,
                    "min": min((s["fds"] for s in samples if s["fds"]), default=None),
                    "max": max((s["fds"] for s in samples if s["fds"]), default=None)},
            "threads": {"min": min((s["threads"] for s in samples if s["threads"]), default=None),
                        "max": max((s["threads"] for s in samples if s["threads"]), default=None)},
            "wal_kib_max": max((s["wal_kib"] for s in samples), default=None),
            "queue_depth_max": max((s["queue_depth"] or 0 for s in samples), default=None),
            "cpu_pct_mean": round(sum(s["cpu_pct"] or 0 for s in samples) / len(samples), 1)
            if samples else None,
            "latency_ms": {"n": len(lat), "p50": percentile(lat, 50), "p90": percentile(lat, 90),
                           "p99": percentile(lat, 99), "max": max(lat) if lat else None},
            "latency_ms_by_kind": {k: {"n": len(v), "p50": round(percentile(v, 50), 1),
                                       "p99": round(percentile(v, 99), 1),
                                       "max": round(max(v), 1)} for k, v in sorted(by_kind.items())},
            "console_latency_ms": {"n": len(self.console_latencies),
                                   "p50": percentile(self.console_latencies, 50),
                                   "p99": percentile(self.console_latencies, 99)},
            "console_reminder_lateness_s": {
                "n": len(lateness),
                "p50": round(percentile(lateness, 50), 2) if lateness else None,
                "p99": round(percentile(lateness, 99), 2) if lateness else None,
                "max": round(max(lateness), 2) if lateness else None,
                "over_5s": sum(1 for x in lateness if x > 5)},
            "reminders_db": reminders,
            "reload_edits": dict(self.reload_edits),
            "counts": dict(sorted(self.counts.items())),
            "expected": dict(sorted(self.expected_count.items())),
            "expected_examples": self.expected_examples,
            "unexpected_by_kind": dict(sorted(self.unexpected_count.items())),
            "unexpected_total": sum(self.unexpected_count.values()),
            "db_check": {"exit": dbc[0], "result": dbc[1]},
            "driver_cpu_s": round(sum(os.times()[:2]), 1),
        }
        # Reloads must show up in the log: every edit of capabilities.yaml (and every SIGHUP).
        caps_expected = self.reload_edits["capabilities"]
        if self.counts["reloaded_capabilities"] < caps_expected:
            self.add_unexpected("reload", f"capabilities.yaml edited {caps_expected} times, "
                                f"{self.reload_edits['sighup']} SIGHUPs, but only "
                                f"{self.counts['reloaded_capabilities']} reloads logged")
            summary["unexpected_by_kind"] = dict(sorted(self.unexpected_count.items()))
            summary["unexpected_total"] = sum(self.unexpected_count.values())
        summary["unexpected"] = self.unexpected

        rows = [format_row(s) for s in all_samples]
        table = "\n".join([header_row()] + rows)
        (self.out / "table.txt").write_text(table + "\n", encoding="utf-8")
        keys = [k for k in (all_samples[0].keys() if all_samples else []) if not k.startswith("_")]
        with open(self.out / "samples.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(keys)
            for s in all_samples:
                w.writerow([s[k] for k in keys])
        (self.out / "samples.json").write_text(json.dumps(
            [{k: v for k, v in s.items() if not k.startswith("_")} for s in all_samples], indent=1))
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        with open(self.out / "unexpected.txt", "w", encoding="utf-8") as f:
            for u in self.unexpected:
                f.write(f"[{u['t_s']:8.1f} s] {u['kind']}: {u['detail']}\n")
                if u["line"]:
                    f.write("    " + u["line"].replace("\n", "\n    ") + "\n")
        write_svg(self.out / "chart.svg", all_samples, summary)

        print()
        print("=" * 100)
        print(f"parley soak: {t_end / 60:.1f} min at {a.rate}/s HTTP + console every "
              f"{a.console_every} s, fault every {a.fault_every} LLM calls"
              + (f" ({interrupted})" if interrupted else ""))
        print(table)
        s = summary["slopes"]
        print()
        print(f"RSS slope: {s['rss_kib_per_min_all']} KiB/min (all), "
              f"{s['rss_kib_per_min_second_half']} KiB/min (second half); RSS "
              f"{summary['rss_kib']['first']} -> {summary['rss_kib']['last']} KiB "
              f"(min {summary['rss_kib']['min']}, max {summary['rss_kib']['max']}, "
              f"peak {summary['rss_kib']['peak_hwm']})")
        print(f"of which anonymous (RssAnon): {s['rss_anon_kib_per_min_all']} KiB/min (all), "
              f"{s['rss_anon_kib_per_min_second_half']} KiB/min (second half); file-backed "
              f"(RssFile: the binary, the mmap'd database): {s['rss_file_kib_per_min_all']} "
              f"KiB/min; the database grew {s['db_kib_per_min_all']} KiB/min")
        print(f"hot cache slope: {s['cache_kib_per_min_all']} KiB/min (all), "
              f"{s['cache_kib_per_min_second_half']} KiB/min (second half); RSS minus the hot "
              f"cache: {s['rss_minus_cache_kib_per_min_all']} KiB/min (all), "
              f"{s['rss_minus_cache_kib_per_min_second_half']} KiB/min (second half)")
        print(f"fd slope: {s['fds_per_min_all']} /min (all), {s['fds_per_min_second_half']} /min "
              f"(second half); fds {summary['fds']['first']} -> {summary['fds']['last']} "
              f"(min {summary['fds']['min']}, max {summary['fds']['max']}); threads "
              f"{summary['threads']['min']}..{summary['threads']['max']}")
        L = summary["latency_ms"]
        print(f"HTTP messages: {L['n']} answered; latency p50 {L['p50']:.1f} ms, p90 "
              f"{L['p90']:.1f} ms, p99 {L['p99']:.1f} ms, max {L['max']:.1f} ms"
              if L["n"] else "HTTP messages: none answered")
        for k, v in summary["latency_ms_by_kind"].items():
            print(f"  {k:12s} n={v['n']:6d} p50 {v['p50']:8.1f} ms  p99 {v['p99']:8.1f} ms  "
                  f"max {v['max']:8.1f} ms")
        C = summary["console_latency_ms"]
        if C["n"]:
            print(f"console: {C['n']} replies, p50 {C['p50']:.1f} ms, p99 {C['p99']:.1f} ms")
        R = summary["console_reminder_lateness_s"]
        print(f"console reminders fired: {R['n']}; lateness p50 {R['p50']} s, p99 {R['p99']} s, "
              f"max {R['max']} s, {R['over_5s']} more than 5 s late")
        if reminders:
            print(f"reminders in the database: {reminders.get('by_state')}; fired minus due: "
                  f"{reminders.get('fired_late_s')}; outbox: {reminders.get('outbox')}")
        print(f"config: {dict(self.reload_edits)} edits/signals; log: "
              f"{self.counts['reloaded_capabilities']} capabilities.yaml reloads, "
              f"{self.counts['reloaded_prices']} prices.yaml reloads, "
              f"{self.counts['sighup_seen']} SIGHUPs seen")
        print(f"totals: {json.dumps(summary['counts'])}")
        print(f"expected errors: {json.dumps(summary['expected'])}")
        print(f"parley exit after SIGTERM: {self.parley_exit}; db check: exit {dbc[0]}")
        print(f"driver CPU: {summary['driver_cpu_s']} s; parley CPU mean {summary['cpu_pct_mean']}%")
        n = summary["unexpected_total"]
        print(f"UNEXPECTED errors: {n}" + (" (none)" if n == 0 else ""))
        for u in self.unexpected[:100]:
            print(f"  [{u['t_s']:8.1f} s] {u['kind']}: {u['detail']}")
            if u["line"] and u["line"] != u["detail"]:
                print("      " + u["line"][:400].replace("\n", "\n      "))
        print(f"out: {self.out}/ (table.txt samples.csv samples.json summary.json chart.svg "
              "unexpected.txt parley.log console.log)")
        return 0 if n == 0 and not interrupted else 1

    def cleanup(self):
        self.stop_load.set()
        for p in (self.parley, self.fake):
            if p is not None and p.poll() is None:
                try:
                    p.terminate()
                    p.wait(timeout=self.args.grace + 10)
                except (OSError, subprocess.TimeoutExpired):
                    try:
                        p.kill()
                        p.wait(timeout=5)
                    except (OSError, subprocess.TimeoutExpired):
                        pass
        for f in (self.log_file, self.console_file):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        if self.workdir and not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif self.workdir:
            print(f"soak: kept {self.workdir}", flush=True)


# --- table and chart ---------------------------------------------------------------------------

COLUMNS = [
    ("t_s", "t(s)", 7, "{:.0f}"), ("rss_kib", "RSS KiB", 8, "{}"), ("anon_kib", "anon", 6, "{}"),
    ("fds", "fds", 4, "{}"),
    ("threads", "thr", 4, "{}"), ("cpu_pct", "cpu%", 5, "{:.1f}"), ("wal_kib", "WAL KiB", 8,
                                                                        "{:.0f}"),
    ("db_kib", "DB KiB", 7, "{:.0f}"), ("queue_depth", "q", 3, "{}"), ("cache_kib", "cacheK", 7,
                                                                       "{:.0f}"),
    ("sent", "sent", 5, "{}"), ("answered", "ans", 5, "{}"), ("console_ans", "con", 4, "{}"),
    ("rem_fired", "rem", 4, "{}"), ("llm_ok", "llm", 5, "{}"), ("faults", "flt", 4, "{}"),
    ("exp_err", "expE", 5, "{}"), ("unexp_err", "UNEX", 5, "{}"), ("p50_ms", "p50ms", 7,
                                                                    "{:.1f}"),
    ("p99_ms", "p99ms", 7, "{:.1f}"), ("max_ms", "maxms", 7, "{:.0f}"),
]


def header_row() -> str:
    return " ".join(f"{h:>{w}}" for _, h, w, _ in COLUMNS)


def format_row(s: dict) -> str:
    out = []
    for k, _, w, fmt in COLUMNS:
        v = s.get(k)
        out.append(f"{'-' if v is None else fmt.format(v):>{w}}")
    return " ".join(out)


def nice_step(span: float, n: int = 4) -> float:
    if span <= 0:
        return 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def esc(t: str) -> str:
    return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_svg(path: Path, samples: list[dict], summary: dict):
    """A grid of small line charts over time (minutes), drawn by hand."""
    sl = summary["slopes"]
    panels = [
        ("RSS (MiB)", [("rss_kib", "#1f77b4", 1 / 1024)], True,
         f"slope {sl['rss_kib_per_min_all']} KiB/min, 2nd half {sl['rss_kib_per_min_second_half']}"),
        ("RssAnon and DB file (MiB)", [("anon_kib", "#1f77b4", 1 / 1024),
                                        ("db_kib", "#bcbd22", 1 / 1024)], False,
         f"blue RssAnon ({sl.get('rss_anon_kib_per_min_all')} KiB/min), olive database file"),
        ("open fds and threads", [("fds", "#d62728", 1), ("threads", "#9467bd", 1)], True,
         f"red fds: slope {sl['fds_per_min_all']}/min, 2nd half {sl['fds_per_min_second_half']}; "
         "purple threads"),
        ("WAL and hot cache (MiB)", [("wal_kib", "#2ca02c", 1 / 1024),
                                     ("cache_kib", "#8c564b", 1 / 1024)], False,
         "green WAL, brown cache"),
        ("HTTP latency (ms)", [("p99_ms", "#ff7f0e", 1), ("p50_ms", "#17becf", 1)], False,
         "orange p99, cyan p50 per 10 s"),
        ("per 10 s", [("answered", "#1f77b4", 1), ("llm_ok", "#7f7f7f", 1),
                      ("faults", "#d62728", 1)], False, "blue answered, grey LLM ok, red faults"),
    ]
    cols, pw, ph = 2, 520, 230
    ml, mr, mt, mb = 64, 16, 44, 34
    rows = math.ceil(len(panels) / cols)
    W, H = cols * pw, rows * ph + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">parley soak: '
           f'{summary["seconds_run"] / 60:.1f} min, {summary["rate_per_s"]}/s, fault every '
           f'{summary["fault_every"]} LLM calls; unexpected errors: '
           f'{summary["unexpected_total"]}</text>']
    xs = [s["t_s"] / 60 for s in samples]
    xmax = max(xs) if xs else 1
    load_end = max((s["t_s"] / 60 for s in samples if s.get("phase") == "load"), default=None)
    xstep = nice_step(xmax, 6)
    for i, (title, series, fit, note) in enumerate(panels):
        ox, oy = (i % cols) * pw, 40 + (i // cols) * ph
        x0, y0, x1, y1 = ox + ml, oy + mt, ox + pw - mr, oy + ph - mb
        vals = [s[k] * f for k, _, f in series for s in samples if s.get(k) is not None]
        if not vals:
            vals = [0, 1]
        lo, hi = min(vals), max(vals)
        if hi - lo < 1e-9:
            lo, hi = lo - 1, hi + 1
        pad = (hi - lo) * 0.1
        lo, hi = lo - pad, hi + pad
        if min(vals) >= 0 and lo < 0:
            lo = 0
        step = nice_step(hi - lo, 4)
        lo = math.floor(lo / step) * step
        hi = math.ceil(hi / step) * step

        def X(x):
            return x0 + (x1 - x0) * (x / xmax if xmax else 0)

        def Y(y):
            return y1 - (y1 - y0) * ((y - lo) / (hi - lo))

        out.append(f'<text x="{ox + ml}" y="{oy + 18}" font-size="13" font-weight="bold">'
                   f'{esc(title)}</text>')
        if note:
            out.append(f'<text x="{ox + ml}" y="{oy + 33}" fill="#555">{esc(note)}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" '
                   f'fill="none" stroke="#999"/>')
        v = lo
        while v <= hi + step / 2:
            yy = Y(v)
            out.append(f'<line x1="{x0}" y1="{yy:.1f}" x2="{x1}" y2="{yy:.1f}" stroke="#eee"/>')
            label = f"{v:.0f}" if step >= 1 else f"{v:.2f}"
            out.append(f'<text x="{x0 - 4}" y="{yy + 4:.1f}" text-anchor="end">{label}</text>')
            v += step
        xv = 0.0
        while xv <= xmax + 1e-9:
            xx = X(xv)
            out.append(f'<line x1="{xx:.1f}" y1="{y1}" x2="{xx:.1f}" y2="{y1 + 4}" stroke="#999"/>')
            out.append(f'<text x="{xx:.1f}" y="{y1 + 16}" text-anchor="middle">'
                       f'{xv:g}</text>')
            xv += xstep
        out.append(f'<text x="{x1}" y="{y1 + 28}" text-anchor="end" fill="#555">minutes</text>')
        if load_end is not None and load_end < xmax:  # after it: the load stopped (drain)
            out.append(f'<line x1="{X(load_end):.1f}" y1="{y0}" x2="{X(load_end):.1f}" '
                       f'y2="{y1}" stroke="#aaa" stroke-dasharray="2 2"/>')
        for n, (key, color, f) in enumerate(series):
            pts = [(X(x), Y(s[key] * f)) for x, s in zip(xs, samples) if s.get(key) is not None]
            if pts:
                out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="'
                           + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts) + '"/>')
            if fit and n == 0:  # the dashed least-squares line of the first series
                # Over the load only, as the slopes in the summary.
                line = fit_line(xs, [s[key] * f if s.get(key) is not None
                                     and s.get("phase", "load") == "load" else None
                                     for s in samples])
                if line:
                    b, a0 = line
                    out.append(f'<line x1="{X(0):.1f}" y1="{Y(a0):.1f}" x2="{X(xmax):.1f}" '
                               f'y2="{Y(a0 + b * xmax):.1f}" stroke="#000" stroke-dasharray="4 3" '
                               f'stroke-width="1"/>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


# --- main --------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Soak `parley run` under a steady mixed load against fake_llm_server; "
                    "sample RSS, fds, threads, WAL, queue depth and latency every 10 s.")
    p.add_argument("--parley", default=str(REPO / "build/release/bot/parley"))
    p.add_argument("--fake-llm", default=str(REPO / "build/release/tests/fakes/fake_llm_server"))
    p.add_argument("--minutes", type=float, default=30.0, help="length of the load (default 30)")
    p.add_argument("--rate", type=float, default=5.0, help="HTTP messages per second (default 5)")
    p.add_argument("--fault-every", type=int, default=50,
                   help="every Nth LLM call fails (500, cut stream, malformed in turn; default 50)")
    p.add_argument("--delay-ms", type=int, default=20, help="the fake LLM's delay (default 20)")
    p.add_argument("--users", type=int, default=24, help="simulated HTTP users at once")
    p.add_argument("--new-users-per-minute", type=int, default=4,
                   help="the oldest users leave and this many new ones join every minute")
    p.add_argument("--per-user-per-minute", type=int, default=20,
                   help="messages a user sends a minute at most (parley's limit is 30)")
    p.add_argument("--stream-share", type=float, default=0.2, help="LLM turns sent with ?stream=1")
    p.add_argument("--console-every", type=float, default=4.0, help="seconds between console lines")
    p.add_argument("--reload-every", type=float, default=60.0,
                   help="seconds between configuration reloads")
    p.add_argument("--sample-every", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=8, help="HTTP client threads")
    p.add_argument("--request-timeout", type=float, default=60.0)
    p.add_argument("--grace", type=int, default=10, help="parley run --grace")
    p.add_argument("--drain-s", type=float, default=100.0,
                   help="after the load, wait up to this long for reminders still due")
    p.add_argument("--reminder-late-s", type=float, default=2.0,
                   help="a console reminder printed later than this after its due time is an "
                        "unexpected error")
    p.add_argument("--cache-mib", type=int, default=None,
                   help="storage.cache.max_bytes_mib (default: parley's, 64): a small cap shows "
                        "whether RSS growth is the hot cache filling up")
    p.add_argument("--page-cache-kib", type=int, default=None,
                   help="storage.page_cache_kib, SQLite's page cache per connection (default: "
                        "parley's, 8192): likewise for the page caches filling up")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="soak-out", help="directory for the results")
    p.add_argument("--tmp", default=None, help="where the temporary work directory goes")
    p.add_argument("--keep", action="store_true", help="keep the work directory (database, config)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    soak = Soak(args)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return soak.run()
    except SystemExit as e:
        print(e, file=sys.stderr)
        if soak.stderr_tail:
            print("\n".join(soak.stderr_tail), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 1
    finally:
        soak.cleanup()


if __name__ == "__main__":
    sys.exit(main())
