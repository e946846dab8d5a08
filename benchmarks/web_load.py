"""Load on the annotator: simulated annotators answering through the HTTP API, one server.

    ALRUN_DATA_DIR=../shared/data .venv/bin/python benchmarks/web_load.py --clients 20 --seconds 60

A real server (`alrun.web.app.serve`, uvicorn on loopback) over a real SQLite database in a
temporary folder; a loop thread opens batch after batch of BBC articles (`--batch` tasks each)
as the runner does, until `--seconds` have passed, then lets the open batch finish (a bounded
loop). Each client thread asks `/api/next`, answers with a random topic through
`/api/answer`, and repeats. Checked: no request failed, and the database holds exactly the
answers the clients were told were stored (200), each task once: nothing lost, nothing doubled.
Prints the answer latency (median, p95, max) and the answers per second.

`--overlap 2 --reviewers 2`: each task goes to 2 sessions (random topics: most disagree) and
reviewer sessions decide the disagreements; then each task must hold exactly 2 answers from 2
sessions, and every disagreement exactly one decision, the ones the reviewers were told were
stored.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from alrun.web.app import serve
from alrun.web.server import Annotator, Auth
from alrun.web.store import DB_FILE, Store

TOPICS = ["business", "entertainment", "politics", "sport", "tech"]


def _texts() -> list[str]:
    path = Path(os.environ.get("ALRUN_DATA_DIR", "data")) / "bbc-news" / "bbc-news.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def _call(url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json"},
        method="POST" if data else "GET",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def run_load(
    seconds: float,
    clients: int,
    batch: int = 40,
    seed: int = 0,
    overlap: int = 1,
    reviewers: int = 0,
) -> dict[str, Any]:
    """Drive the annotator for `seconds` with `clients` (and `reviewers`) threads; every
    number measured."""
    texts = _texts()
    folder = tempfile.TemporaryDirectory()
    store = Store(f"sqlite:///{Path(folder.name) / DB_FILE}")
    leads = frozenset(f"r{k}" for k in range(reviewers))
    ann = Annotator(
        store, "multiclass", TOPICS, {}, lease_seconds=60, overlap=overlap, reviewers=leads
    )
    server = serve(ann, "127.0.0.1", 0, Auth(None, None))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    deadline = time.monotonic() + seconds
    rounds_done: list[int] = []

    def loop() -> None:  # the runner's side: batch after batch until the time is up
        rnd = 0
        while time.monotonic() < deadline:
            tasks = [
                {
                    "id": f"{rnd}:{i}",
                    "round": rnd,
                    "index": i,
                    "item_id": f"a{i}",
                    "kind": "multiclass",
                    "text": texts[(rnd * batch + i) % len(texts)],
                    "suggestion": None,
                }
                for i in range(batch)
            ]
            ann.serve_batch(rnd, tasks, rnd * batch)
            rounds_done.append(rnd)
            rnd += 1
        ann.finish("load test over")

    stored: list[tuple[int, int, str]] = []
    decided: list[tuple[int, int, str]] = []
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(k: int, session: str) -> None:
        rng = np.random.default_rng([seed, k])
        while True:
            code, got = _call(f"{base}/api/next?session={session}")
            if code != 200:
                with lock:
                    errors.append(f"next {code} {got}")
                return
            task = got["task"]
            if task is None:
                if got["status"]["state"] == "finished":
                    return
                time.sleep(0.005)  # the others hold the batch's last tasks, or it trains
                continue
            body = {"id": task["id"], "answer": "accept", "label": TOPICS[rng.integers(5)]}
            t0 = time.perf_counter()
            code, got = _call(f"{base}/api/answer?session={session}", body)
            took = time.perf_counter() - t0
            with lock:
                if code == 200:
                    done = decided if session in leads else stored
                    done.append((task["round"], task["index"], session))
                    latencies.append(took)
                else:
                    errors.append(f"answer {code} {got}")

    loop_thread = threading.Thread(target=loop, daemon=True)
    loop_thread.start()
    sessions = [f"c{k}" for k in range(clients)] + sorted(leads)
    threads = [threading.Thread(target=client, args=(k, s)) for k, s in enumerate(sessions)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t_start
    loop_thread.join(10)
    rows = [(a["round"], a["index"], a["session"]) for a in store.active()]
    decisions = [(a["round"], a["index"], a["session"]) for a in store.active(decision=True)]
    per_task = Counter((r, i) for r, i, _ in rows)
    server.shutdown()
    server.server_close()
    store.close()
    folder.cleanup()
    lat = np.array(latencies) * 1000
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "rounds": len(rounds_done),
        "answers_sent": len(stored),
        "rows": len(rows),
        "same_answers": sorted(rows) == sorted(stored),
        # answers beyond k on a task, or a session's second answer to one
        "doubled": sum(max(0, n - overlap) for n in per_task.values()) + len(rows) - len(set(rows)),
        "tasks_short_of_k": sum(n < overlap for n in per_task.values()),
        "decisions_sent": len(decided),
        "decisions": len(decisions),
        "same_decisions": sorted(decisions) == sorted(decided),
        "decided_twice": len(decisions) - len({(r, i) for r, i, _ in decisions}),
        "errors": errors[:5],
        "n_errors": len(errors),
        "answers_per_second": round(len(stored) / wall, 1),
        "latency_ms": {
            "median": round(float(np.median(lat)), 1) if len(lat) else None,
            "p95": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
            "max": round(float(lat.max()), 1) if len(lat) else None,
        },
        "loop_finished": not loop_thread.is_alive(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--batch", type=int, default=40)
    p.add_argument("--overlap", type=int, default=1, help="annotator sessions per task")
    p.add_argument("--reviewers", type=int, default=0, help="reviewer sessions (overlap >= 2)")
    args = p.parse_args()
    got = run_load(
        args.seconds, args.clients, args.batch, overlap=args.overlap, reviewers=args.reviewers
    )
    print(json.dumps(got, indent=2))


if __name__ == "__main__":
    main()
