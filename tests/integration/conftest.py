"""A real `alrun oracle=web` process for the annotator tests, and small data files for it."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALRUN = [sys.executable, "-c", "from alrun.cli import main; main()"]

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (it cannot download one here)."""
    if not CHROMIUM.exists():
        msg = "Debian's chromium is not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


class Served:
    """`alrun oracle=web ...` running in the background, reached over HTTP like a browser."""

    def __init__(self, *args: str, data: Path, cache: Path, run: Path, env: dict | None = None):
        self.run = run
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [
                *ALRUN,
                "oracle=web",
                "oracle.port=0",
                "oracle.linger_seconds=0",
                "logger=none",
                f"hydra.run.dir={run}",
                *args,
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "ALRUN_DATA_DIR": str(data),
                "ALRUN_CACHE_DIR": str(cache),
                "HF_HUB_OFFLINE": "1",
                **(env or {}),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.url = ""
        deadline = time.monotonic() + 180
        while not self.url:
            found = [m for line in self.lines if (m := re.search(r"annotator at (\S+?)\?", line))]
            if found:
                self.url = found[0][1].rstrip("/")
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("the annotator did not start:\n" + self.output())
            else:
                time.sleep(0.1)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)[-5000:]

    def api(
        self,
        path: str,
        body: Any = None,
        session: str = "tester",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        sep = "&" if "?" in path else "?"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}{sep}session={session}",
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST" if data is not None else "GET",
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def status(self) -> dict[str, Any]:
        return self.api("/api/status")[1]

    def wait_round(self, rnd: int, timeout: float = 180) -> dict[str, Any]:
        """Wait until batch `rnd` is open for labelling."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"alrun exited ({self.proc.returncode}):\n{self.output()}")
            st = self.status()
            if st["state"] == "labelling" and st["round"] == rnd:
                return st
            time.sleep(0.2)
        raise AssertionError(f"round {rnd} never opened:\n{self.output()}")

    def answer_all(self, choose, session: str = "tester") -> list[dict[str, Any]]:
        """Answer every task of the open batch with `choose(task) -> answer body`."""
        done = []
        while (task := self.api("/api/next", session=session)[1]["task"]) is not None:
            body = {"id": task["id"], **choose(task)}
            code, reply = self.api("/api/answer", body, session=session)
            assert code == 200, reply
            done.append(task)
        return done

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("alrun did not finish:\n" + self.output()) from None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


@pytest.fixture
def serve(cache_dir):
    """Start annotators; each is killed at the end of the test if still running."""
    started: list[Served] = []

    def start(*args: str, data: Path, run: Path, env: dict | None = None) -> Served:
        s = Served(*args, data=data, cache=cache_dir, run=run, env=env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def conll_files(tmp_path_factory, conll) -> Path:
    """A data dir with CoNLL sentences as tokens/tags JSONL: 120 to label, 100 to test on."""
    d = tmp_path_factory.mktemp("conll-data")

    def write(name: str, docs, n: int) -> None:
        sents = [(toks, tags) for _, ss in docs for _, toks, tags in ss if len(toks) > 3][:n]
        with (d / name).open("w", encoding="utf-8") as f:
            f.writelines(json.dumps({"tokens": t, "tags": g}) + "\n" for t, g in sents)

    write("train.jsonl", conll["train"], 120)
    write("test.jsonl", conll["test"], 100)
    return d


@pytest.fixture(scope="session")
def news_csv(tmp_path_factory, data_dir) -> SimpleNamespace:
    """40 real BBC articles as a CSV with one column, Text (a raw pool: no labels, no ids),
    newlines and double spaces as in the file; `dir` the data dir (dataset.path=news.csv),
    `texts` each article by the id alrun gives it (line-N, N its first line in the CSV) and
    `gold` its BBC category (what a careful person answers). The same 40 rows as a team gets
    the file (ArticleId,Text,Category, CSV quoting as in the original) are in
    `dir`/bbc-news/bbc-news.csv (`full`): line-N names the same article in both files."""
    with (data_dir / "bbc-news" / "bbc-news.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    double_spaced = [i for i, r in enumerate(rows) if "  " in r["Text"]][:2]
    picked = sorted({*range(0, len(rows), 60), *double_spaced})[:40]
    d = tmp_path_factory.mktemp("news")
    full = d / "bbc-news" / "bbc-news.csv"
    full.parent.mkdir()
    found = []
    for path, columns in ((d / "news.csv", ["Text"]), (full, ["ArticleId", "Text", "Category"])):
        out = io.StringIO(newline="")
        writer = csv.writer(out)  # rows end in \r\n, as in the original
        writer.writerow(columns)
        writer.writerows([rows[i][c] for c in columns] for i in picked)
        path.write_bytes(out.getvalue().encode("utf-8"))
        texts, gold, line = {}, {}, 2
        reader = csv.DictReader(io.StringIO(out.getvalue(), newline=""))
        for rec, i in zip(reader, picked, strict=True):
            texts[f"line-{line}"], gold[f"line-{line}"] = rec["Text"], rows[i]["Category"]
            line = reader.line_num + 1
        found.append((texts, gold))
    assert found[0] == found[1]
    return SimpleNamespace(dir=d, texts=found[0][0], gold=found[0][1], full=full)
