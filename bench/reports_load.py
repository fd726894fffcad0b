#!/usr/bin/env python3
"""reports_load: /reports over a large ledger, and what it does to everything else meanwhile.

A database of `--rows` usage rows (default 1,000,000, spread over the last 30 days, 200 users,
3 models) is made once in a temporary directory: `parley alerts list` migrates an empty file to the schema, then the
rows go in with Python's sqlite3. `parley run` is started on it (no LLM is called), and:

  1. GET /reports alone, --repeat times: its wall time (the figure for the report itself);
  2. `--concurrent` GET /reports at once while a prober asks GET /healthz every 10 ms: the
     health probe's latency while the reports run, against its latency with nothing else
     running (the baseline, same run). A report scanned on an io thread stalls the requests
     that thread would serve; on the worker, the io threads stay free.

Run it against two binaries to compare (`--parley`). Only 127.0.0.1; the process started here
is stopped here. Python standard library only.

  python3 bench/reports_load.py --parley build/release/bot/parley
"""
import argparse
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def make_db(parley, path, rows):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    open(path, "wb").close()  # the commands beside a bot open an existing database only
    subprocess.run([parley, "--db", path, "alerts", "list"], check=False, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    now = int(time.time() * 1000)
    users = 200
    db.executemany("INSERT OR IGNORE INTO users(id, display_name, created_at) VALUES (?,?,?)",
                   [(u, f"user{u}", now) for u in range(1, users + 1)])
    models = ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "meta/llama-3.1-8b"]
    rng = random.Random(7)
    span = 30 * 86_400_000
    batch = []
    for i in range(rows):
        p = rng.randint(200, 3000)
        c = rng.randint(10, 800)
        batch.append((now - span + i * span // rows, rng.randint(1, users), "reply",
                      models[i % 3], models[i % 3], "openrouter", p, c, rng.randint(200, 4000),
                      (p * 150 + c * 600), "estimate", 1))
        if len(batch) == 50_000:
            db.executemany(
                "INSERT INTO usage(ts, user_id, purpose, model_requested, model_answered, "
                "provider, prompt_tokens, completion_tokens, latency_ms, cost_estimated_nanousd, "
                "cost_source, success) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", batch)
            batch.clear()
    if batch:
        db.executemany(
            "INSERT INTO usage(ts, user_id, purpose, model_requested, model_answered, provider, "
            "prompt_tokens, completion_tokens, latency_ms, cost_estimated_nanousd, cost_source, "
            "success) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", batch)
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def get(url, timeout=300):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
        status = r.status
    return status, len(body), (time.perf_counter() - t) * 1000.0


def probe(url, stop, out):
    while not stop.is_set():
        try:
            out.append(get(url, timeout=60)[2])
        except Exception:  # noqa: BLE001 - a failed probe counts as a very slow one
            out.append(60_000.0)
        time.sleep(0.01)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parley", default="build/release/bot/parley")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--db", help="reuse this database (made when missing)")
    args = ap.parse_args()
    parley = os.path.abspath(args.parley)
    tmp = tempfile.mkdtemp(prefix="reports_load.")
    db = args.db or os.path.join(tmp, "ledger.db")
    if not os.path.exists(db):
        t = time.perf_counter()
        make_db(parley, db, args.rows)
        print(f"# made {db}: {args.rows} usage rows in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env["PARLEY_LLM_BASE_URL"] = "http://127.0.0.1:9/v1"  # never called
    proc = subprocess.Popen([parley, "--db", db, "run", "--http", "127.0.0.1:0", "--grace", "1"],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "parley.log"), "w"),
                            env=env, cwd=tmp, text=True)
    try:
        base = None
        for _ in range(20):
            line = proc.stdout.readline()
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if m:
                base = f"http://127.0.0.1:{m.group(1)}"
                break
        if base is None:
            sys.exit("parley printed no address")
        alone = []
        for _ in range(args.repeat):
            status, size, ms = get(base + "/reports")
            if status != 200:
                sys.exit(f"/reports: HTTP {status}")
            alone.append(ms)
        quiet = []
        stop = threading.Event()
        th = threading.Thread(target=probe, args=(base + "/healthz", stop, quiet))
        th.start()
        time.sleep(1.0)
        stop.set()
        th.join()
        busy = []
        stop = threading.Event()
        th = threading.Thread(target=probe, args=(base + "/healthz", stop, busy))
        th.start()
        reports = []
        t = time.perf_counter()
        workers = [threading.Thread(target=lambda: reports.append(get(base + "/reports")[2]))
                   for _ in range(args.concurrent)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        together = (time.perf_counter() - t) * 1000.0
        stop.set()
        th.join()
        print(f"reports_rows {args.rows} rows")
        print(f"reports_alone_ms {statistics.median(alone):.0f} ms")
        print(f"reports_{args.concurrent}_at_once_wall_ms {together:.0f} ms")
        print(f"healthz_quiet_p50_ms {pct(quiet, 0.5):.2f} ms")
        print(f"healthz_quiet_max_ms {max(quiet):.2f} ms")
        print(f"healthz_during_reports_p50_ms {pct(busy, 0.5):.2f} ms")
        print(f"healthz_during_reports_max_ms {max(busy):.2f} ms")
        print(f"healthz_during_reports_probes {len(busy)} probes")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
