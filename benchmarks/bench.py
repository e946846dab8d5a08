"""Speed and memory of alrun on this machine: one command, one JSON summary on stdout.

    ALRUN_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench.py [--out bench.json]

Measures (each part in its own process, so its peak memory is its own; see benchmarks/README.md):

- `default`: wall time of the default experiment (`alrun`, no overrides: BBC News, three
  candidates, margin, 10 -> 200 labels, W&B offline), cold (a fresh, empty embedding cache)
  then warm (the same cache), and whether both runs gave identical results;
- `ceiling`: this machine's float32 matrix-multiply rate (numpy and torch, 2048^3), the
  ceiling for the float32 encoder;
- `embed`: MiniLM embedding throughput in tokens/s (real tokens, no padding): the plain
  float32 transformers baseline (AutoModel, batch 32, max length 256, texts in file order,
  `torch.no_grad`) against alrun's `encode` at each precision on the same texts, plus alrun's
  own workload (up to 4 windows of 256 tokens per article), achieved GFLOP/s and the cosine
  between each precision's embeddings and float32's;
- `tokens`: the NER token features' throughput next to `embed`'s: word vectors (MiniLM layer 4
  of minilm_crf_ner, and all 6 layers for comparison) of CoNLL-2003 train sentences in words/s
  and sub-words/s at each precision, and the contextual CRF's featurisation (projection,
  clusters, CRFsuite items) in words/s;
- `rounds`: one round of the default experiment at 100 and 200 labels: per candidate, training
  (5-fold CV + refit) and scoring the pool (documents/s), and the whole round (every candidate,
  selection, test, pool scoring, margin);
- `scaling`: one round with the cheap candidates (tfidf_logreg, minilm_embed_centroid) on the
  BBC pool replicated 1x, 10x, 100x (copies made distinct by an appended id token; embeddings
  replicated), and the power-law exponent of round time against pool size.

Progress goes to stderr. Every part records the load average before and after it: numbers
taken while other work ran on the machine are flagged `"loaded": true`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("default", "ceiling", "embed", "tokens", "rounds", "scaling")


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- child processes


def run_child(argv: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run a process to completion: wall time, exit status, and its own peak RSS (wait4)."""
    load0, busy0 = _load(), _busy_cpu_s()
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    ours = usage.ru_utime + usage.ru_stime  # the child and the children it waited for
    others = max(_busy_cpu_s() - busy0 - ours, 0.0)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(ours, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "exit": proc.returncode,
        # cores kept busy by other processes meanwhile (0 on an idle machine; 1 = a whole
        # core taken from this measurement)
        "other_cores_busy": round(others / wall, 2) if wall > 0 else None,
        "load_avg_before": load0,
    }


def run_part(name: str, args: argparse.Namespace, env: dict[str, str], work: Path) -> dict:
    """A measured part in a fresh interpreter; it writes its result as JSON to a file."""
    out = work / f"{name}.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--_part", name, "--_result", str(out)]
    argv += ["--embed-texts", str(args.embed_texts), "--scales", args.scales]
    argv += ["--repeats", str(args.repeats), "--work", str(work)]
    argv += ["--token-sentences", str(args.token_sentences)]
    say(f"{name}: started (log {work / (name + '.log')})")
    proc = run_child(argv, env, work / f"{name}.log")
    if proc["exit"] != 0 or not out.exists():
        tail = (work / f"{name}.log").read_text(errors="replace")[-3000:]
        say(f"{name}: FAILED (exit {proc['exit']}):\n{tail}")
        return {"error": f"exit {proc['exit']}", "log_tail": tail[-1000:], **proc}
    result = json.loads(out.read_text())
    result["process"] = proc
    say(f"{name}: done in {proc['wall_s']:.1f} s, peak {proc['peak_rss_mb']:.0f} MB")
    return result


# --------------------------------------------------------------------------- default experiment


def _rounds(run_dir: Path) -> list[dict]:
    path = run_dir / "rounds.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _accuracy_at(rows: list[dict], labels: tuple[int, ...] = (100, 200)) -> dict[str, float]:
    return {str(r["labeled"]): r["test"]["accuracy"] for r in rows if r["labeled"] in labels}


def part_default(env: dict[str, str], work: Path) -> dict:
    """`alrun` with no overrides, cold then warm, in its own processes (timed end to end)."""
    out: dict[str, Any] = {"command": "alrun  (no overrides; hydra.run.dir set to a temp dir)"}
    for phase in ("cold", "warm"):
        run_dir = work / f"run_{phase}"
        say(f"default experiment, {phase} cache: alrun hydra.run.dir={run_dir}")
        argv = [str(Path(sys.executable).with_name("alrun")), f"hydra.run.dir={run_dir}"]
        res = run_child(argv, env, work / f"alrun_{phase}.log")
        rows = _rounds(run_dir)
        res["rounds"] = len(rows)
        res["loop_s"] = round(sum(r["seconds"]["round"] for r in rows), 2)
        res["test_accuracy_at"] = _accuracy_at(rows)
        out[phase] = res
        say(f"  {phase}: {res['wall_s']:.1f} s (exit {res['exit']}, {len(rows)} rounds)")
    cold, warm = out["cold"], out["warm"]
    out["warm_speedup"] = round(cold["wall_s"] / warm["wall_s"], 2) if warm["wall_s"] else None

    def same(name: str) -> bool:
        a, b = work / "run_cold" / name, work / "run_warm" / name
        return a.exists() and b.exists() and a.read_bytes() == b.read_bytes()

    cold_rows, warm_rows = _rounds(work / "run_cold"), _rounds(work / "run_warm")
    out["identical_results"] = (
        same("labeled.jsonl")
        and len(cold_rows) == len(warm_rows) > 0
        and all(
            a["test"] == b["test"] and a["validation"] == b["validation"]
            for a, b in zip(cold_rows, warm_rows, strict=True)
        )
    )
    return out


# --------------------------------------------------------------------------- parts (in a child)


def _gflops(flops: float, seconds: float) -> float:
    return round(flops / seconds / 1e9, 1)


def measure_ceiling() -> dict:
    """float32 GEMM rate (the most a float32 encoder could reach), best of several runs."""
    import numpy as np
    import torch

    n = 2048
    flops = 2 * n**3
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), np.float32)

    def best(f, reps: int = 5) -> float:
        f()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times)

    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ha, hb = ta.to(torch.bfloat16), tb.to(torch.bfloat16)
    return {
        "matrix": f"{n}x{n} @ {n}x{n}",
        "threads": torch.get_num_threads(),
        "numpy_float32_gflops": _gflops(flops, best(lambda: a @ b)),
        "torch_float32_gflops": _gflops(flops, best(lambda: ta @ tb)),
        "torch_bfloat16_gflops": _gflops(flops, best(lambda: ha @ hb)),
    }


def _bbc_texts(n: int) -> list[str]:
    path = Path(os.environ.get("ALRUN_DATA_DIR", "data")) / "bbc-news" / "bbc-news.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line, _ in zip(f, range(n), strict=False)]


def _encoder_flops(config: Any, lengths: list[int]) -> float:
    """Useful FLOPs of a BERT encoder over sequences of these (unpadded) lengths: 2 x the
    encoder's linear weights per token, plus attention scores and context (4 x L x d per
    token per layer). Embedding lookups, norms and softmax are left out."""
    d, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = 2 * layers * (4 * d * d + 2 * d * inter)
    tokens = sum(lengths)
    attention = 4 * layers * d * sum(n * n for n in lengths)
    return linear * tokens + attention


def measure_embed(n_texts: int, repeats: int, ceiling: float | None) -> dict:
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from alrun.models import embeddings as E

    texts = _bbc_texts(n_texts)
    path = E.resolve_model_path(E.PACKAGED)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def baseline() -> tuple[float, int, list[int], np.ndarray]:
        """Plain transformers: batch 32, max length 256, file order, float32, no_grad."""
        n_tok, lengths, vecs = 0, [], []
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(texts), 32):
                batch = tok(
                    texts[i : i + 32],
                    padding=True,
                    truncation=True,
                    max_length=256,
                    return_tensors="pt",
                )
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"]
                m = mask.unsqueeze(-1).float()
                vecs.append(((hidden * m).sum(1) / m.sum(1)).numpy())
                n_tok += int(mask.sum())
                lengths += mask.sum(1).tolist()
        seconds = time.perf_counter() - t0
        v = np.concatenate(vecs)
        return seconds, n_tok, lengths, v / np.linalg.norm(v, axis=1, keepdims=True)

    def ours(precision: str, windows: int) -> tuple[float, np.ndarray]:
        E.encode(texts[:8], E.PACKAGED, 256, 32, windows, precision)  # load + warm up
        t0 = time.perf_counter()
        v = E.encode(texts, E.PACKAGED, 256, 32, windows, precision)
        return time.perf_counter() - t0, v

    # real tokens each workload holds: first window only (= truncation at 256), all windows
    ids = tok(texts, add_special_tokens=False, truncation=False)["input_ids"]
    first = [min(len(x), 254) + 2 for x in ids]
    windowed = [len(w) + 2 for x in ids for w in E._windows(x, 254, 4)]
    default = E.resolve_precision("auto")
    precisions = ["float32", "bfloat16", "int8"]
    say(f"embed: {len(texts)} BBC texts, {sum(first)} tokens truncated, {sum(windowed)} windowed")

    with torch.no_grad():  # warm-up of the baseline's model
        model(**tok(texts[:8], padding=True, truncation=True, max_length=256, return_tensors="pt"))
    base_s, ours_s, vecs = [], {p: [] for p in precisions}, {}
    for _ in range(repeats):  # interleaved, best of `repeats`: load bursts hit both sides
        s, n_tok, _, base_vec = baseline()
        base_s.append(s)
        for p in precisions:
            s, vecs[p] = ours(p, 1)
            ours_s[p].append(s)
    assert n_tok == sum(first), (n_tok, sum(first))
    cfg = model.config
    flops_first = _encoder_flops(cfg, first)
    base_rate = n_tok / min(base_s)
    out: dict[str, Any] = {
        "texts": len(texts),
        "threads": torch.get_num_threads(),
        "default_precision": default,
        "truncated_workload": {
            "what": "first 256 tokens of each text, batch 32 (the baseline's own workload)",
            "tokens": n_tok,
            "baseline_float32": {
                "what": "transformers AutoModel, tokenizer(padding=True, truncation=True, "
                "max_length=256), batches of 32 in file order, float32, torch.no_grad",
                "seconds": round(min(base_s), 2),
                "tokens_per_s": round(base_rate),
                "gflops": _gflops(flops_first, min(base_s)),
            },
        },
    }
    ref = vecs["float32"]
    out["truncated_workload"]["baseline_vs_ours_float32_cos_min"] = round(
        float((ref * base_vec).sum(1).min()), 6
    )
    for p in precisions:
        cos = (ref * vecs[p]).sum(1)
        out["truncated_workload"][p] = {
            "seconds": round(min(ours_s[p]), 2),
            "tokens_per_s": round(n_tok / min(ours_s[p])),
            "speedup_vs_baseline": round(n_tok / min(ours_s[p]) / base_rate, 2),
            "gflops": _gflops(flops_first, min(ours_s[p])),
            "cos_to_float32_min": round(float(cos.min()), 6),
            "cos_to_float32_mean": round(float(cos.mean()), 6),
        }
    # alrun's real workload: whole articles in up to 4 windows (the cold run's embedding)
    win: dict[str, Any] = {
        "what": "whole articles: up to 4 windows of 256 tokens, mean-pooled (alrun's default)",
        "tokens": sum(windowed),
    }
    flops_win = _encoder_flops(cfg, windowed)
    win_vecs = {}
    for p in ("float32", default) if default != "float32" else ("float32",):
        s, win_vecs[p] = ours(p, 4)
        win[p] = {
            "seconds": round(s, 2),
            "tokens_per_s": round(sum(windowed) / s),
            "gflops": _gflops(flops_win, s),
        }
        if p != "float32":
            cos = (win_vecs["float32"] * win_vecs[p]).sum(1)
            win[p]["cos_to_float32_min"] = round(float(cos.min()), 6)
    out["windowed_workload"] = win
    out["gflop_per_token_linear"] = round(_encoder_flops(cfg, [1]) / 1e9, 4)
    if ceiling:
        out["float32_ceiling_gflops"] = ceiling
    return out


def measure_tokens(n_sentences: int) -> dict:
    """Word-vector throughput (minilm_crf_ner's encoder pass) and its featurisation rate."""
    import numpy as np
    import torch

    from alrun.data import read_conll
    from alrun.models.context_crf import ContextFeatures, WordFeatureMap
    from alrun.models.embeddings import PACKAGED, load_encoder, resolve_precision
    from alrun.models.token_vectors import encode_words

    path = Path(os.environ.get("ALRUN_DATA_DIR", "data")) / "conll2003" / "train.txt"
    sents = [toks for _, ss in read_conll(path) for _, toks, _ in ss][:n_sentences]
    words = sum(len(s) for s in sents)
    tok, _ = load_encoder(PACKAGED)
    subwords = sum(
        len(x) for x in tok(sents, is_split_into_words=True, add_special_tokens=False)["input_ids"]
    )
    say(f"tokens: {len(sents)} CoNLL sentences, {words} words, {subwords} sub-words")
    out: dict[str, Any] = {
        "sentences": len(sents),
        "words": words,
        "subwords": subwords,
        "threads": torch.get_num_threads(),
        "default_precision": resolve_precision("auto"),
    }
    precisions = sorted({"float32", resolve_precision("auto")})
    vecs = None
    for layer in (4, 6):
        for p in precisions:
            encode_words(sents[:16], PACKAGED, layer, precision=p)  # load + warm up
            t0 = time.perf_counter()
            v = encode_words(sents, PACKAGED, layer, precision=p)
            s = time.perf_counter() - t0
            out[f"layer{layer}/{p}"] = {
                "seconds": round(s, 2),
                "words_per_s": round(words / s),
                "subwords_per_s": round(subwords / s),
            }
            if layer == 4 and p == "float32":
                vecs = v
    assert vecs is not None
    flat = np.concatenate(vecs)
    t0 = time.perf_counter()
    fmap = WordFeatureMap.fit(flat, 64, [64, 256, 1024])
    fit_s = time.perf_counter() - t0

    class Table:  # the vectors above, looked up by sentence
        def __init__(self) -> None:
            self.rows = {tuple(s): v for s, v in zip(sents, vecs, strict=True)}

        def __call__(self, ss):
            return [self.rows[tuple(s)] for s in ss]

    t0 = time.perf_counter()
    ContextFeatures(Table(), fmap)(sents)  # type: ignore[arg-type]
    feat_s = time.perf_counter() - t0
    out["feature_map_fit_s"] = round(fit_s, 2)
    out["featurise"] = {"seconds": round(feat_s, 2), "words_per_s": round(words / feat_s)}
    return out


def _compose(overrides: list[str] | None = None):
    from hydra import compose, initialize_config_dir

    from alrun.config import CONF_DIR, register_schema

    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides or [])


def _setup(cache_dir: str, overrides: list[str] | None = None):
    """The default experiment's parts, data and model context, as `alrun` builds them."""
    from alrun.data import load_splits
    from alrun.models import ModelContext
    from alrun.settings import check as build_parts

    cfg = _compose(overrides)
    parts = build_parts(cfg)
    splits = load_splits(cfg, cfg.dataset, cfg.seed)
    ctx = ModelContext(
        n_classes=len(splits.pool.label_names),
        seed=cfg.seed,
        cache_dir=Path(cache_dir),
        corpus=splits.pool.texts + splits.test.texts,
        label_names=splits.pool.label_names,
    )
    return cfg, parts, splits, ctx


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def measure_rounds(cache_dir: str) -> dict:
    """One active-learning round at 100 and 200 labels (random labelled sets, seed 0), after
    a warm-up round at 50 labels (so the embedding table is loaded and TF-IDF has analysed the
    pool once, as in a running loop from round 1 on)."""
    import numpy as np

    from alrun.selection import select_best

    cfg, parts, splits, ctx = _setup(cache_dir, ["strategy=margin"])  # no document vectors
    task, cands = parts.task, parts.candidates
    pool, test = splits.pool, splits.test
    order = np.random.default_rng(0).permutation(len(pool))

    def one(n: int, keys: list[str]) -> dict:
        labeled = order[:n]
        labels = pool.labels[labeled]
        inputs = task.inputs(pool, labeled)
        sel, t_train = _timed(
            lambda: select_best(
                task, {k: cands[k] for k in keys}, ctx, inputs, labels, cfg.selection
            )
        )
        test_inputs = task.inputs(test, range(len(test)))
        _, t_test = _timed(lambda: task.predict(sel.model, test_inputs))
        unlabeled = np.setdiff1d(np.arange(len(pool)), labeled)
        preds, t_pool = _timed(lambda: task.predict(sel.model, task.inputs(pool, unlabeled)))
        rng = np.random.default_rng(0)
        _, t_query = _timed(lambda: parts.query(preds, 10, rng))
        return {
            "chosen": sel.chosen,
            "train_s": round(t_train, 3),  # CV of every candidate + refit of the kept one
            "test_s": round(t_test, 3),
            "score_pool_s": round(t_pool, 3),
            "pool_docs_per_s": round(len(unlabeled) / t_pool),
            "query_s": round(t_query, 4),
            "round_s": round(t_train + t_test + t_pool + t_query, 3),
        }

    keys = [k for k in cands if cands[k]["name"] != "ensemble"]  # a vote is not alone
    warm = {k: one(50, [k]) for k in keys}  # first touch: loads, analyses, caches
    out: dict[str, Any] = {
        "labelled_sets": "random (seed 0) from the BBC pool; strategy margin, 10 queried",
        "pool": len(pool),
        "first_touch_at_50": warm,
    }
    for n in (100, 200):
        out[str(n)] = {
            "per_candidate": {k: one(n, [k]) for k in keys},
            "all_candidates": one(n, list(cands)),
        }
    return out


def measure_scaling(cache_dir: str, factor: int) -> dict:
    """One round at pool = factor x BBC pool, with tfidf_logreg and minilm_embed_centroid."""
    import numpy as np

    from alrun.models import ModelContext
    from alrun.models import embeddings as E
    from alrun.selection import select_best

    cfg, parts, splits, ctx0 = _setup(cache_dir)
    task = parts.task
    pool, test = splits.pool, splits.test
    spec = {
        "tfidf_logreg": _model_spec("tfidf_logreg"),
        "minilm_embed_centroid": _model_spec("minilm_embed_centroid"),
    }
    emb = spec["minilm_embed_centroid"]
    where = (emb["encoder"], emb["max_length"], emb["max_windows"])
    base = E.embedding_table(ctx0, *where, emb["batch_size"], emb["precision"]).matrix
    # the replicated pool: copy 0 is the pool itself, copy k > 0 appends " alrunrepK"
    texts = [t if k == 0 else f"{t} alrunrep{k}" for k in range(factor) for t in pool.texts]
    labels = np.tile(pool.labels, factor)
    ctx = ModelContext(
        n_classes=ctx0.n_classes,
        seed=ctx0.seed,
        cache_dir=ctx0.cache_dir,
        corpus=texts + test.texts,
        label_names=ctx0.label_names,
    )
    path = E.cache_file(ctx, *where, emb["precision"])
    if not path.exists():  # replicated embeddings (copies share their original's vector)
        n = len(pool)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.concatenate([np.tile(base[:n], (factor, 1)), base[n:]]))
    E._TABLES.clear()
    labeled = np.random.default_rng(0).permutation(len(pool))[:200]  # same 200 at every scale
    from alrun.models.linear import TermCounts

    out: dict[str, Any] = {
        "factor": factor,
        "pool": len(texts),
        "labelled": 200,
        "tfidf_memo_limit_docs": TermCounts.max_docs,  # beyond it texts are analysed each time
    }
    for key in spec:
        for attempt in ("first", "next"):  # first: TF-IDF analyses the whole pool
            sel, t_train = _timed(
                lambda key=key: select_best(
                    task,
                    {key: spec[key]},
                    ctx,
                    [texts[i] for i in labeled],
                    labels[labeled],
                    cfg.selection,
                )
            )
            unlabeled, t_set = _timed(lambda: np.setdiff1d(np.arange(len(texts)), labeled))
            preds, t_pool = _timed(
                lambda sel=sel, unlabeled=unlabeled: sel.model.predict(
                    [texts[i] for i in unlabeled]
                )
            )
            rng = np.random.default_rng(0)
            _, t_query = _timed(lambda preds=preds, rng=rng: parts.query(preds, 10, rng))
            out[f"{key}/{attempt}"] = {
                "train_s": round(t_train, 3),
                "score_pool_s": round(t_pool, 3),
                "pool_docs_per_s": round(len(unlabeled) / t_pool),
                "query_s": round(t_query + t_set, 3),
                "round_s": round(t_train + t_set + t_pool + t_query, 3),
            }
            say(f"scaling x{factor} {key} {attempt}: {out[f'{key}/{attempt}']}")
    return out


def _model_spec(name: str) -> dict:
    from omegaconf import OmegaConf

    from alrun.config import CONF_DIR

    spec = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml"))
    return {k: v for k, v in spec.items() if k not in ("tasks", "search")}


def child(args: argparse.Namespace) -> None:
    """Run one part in this (fresh) process and write its result."""
    name = args._part
    cache = str(Path(args.work) / "cache")
    if name == "ceiling":
        result = measure_ceiling()
    elif name == "embed":
        ceiling_file = Path(args.work) / "ceiling.json"
        ceiling = (
            json.loads(ceiling_file.read_text()).get("torch_float32_gflops")
            if ceiling_file.exists()
            else None
        )
        result = measure_embed(args.embed_texts, args.repeats, ceiling)
    elif name == "tokens":
        result = measure_tokens(args.token_sentences)
    elif name == "rounds":
        result = measure_rounds(cache)
    elif name.startswith("scaling"):
        result = measure_scaling(cache, int(name.split("x")[1]))
    else:
        raise SystemExit(f"unknown part {name}")
    Path(args._result).write_text(json.dumps(result, indent=2))


# --------------------------------------------------------------------------- driver


def exponent(sizes: list[int], times: list[float]) -> float | None:
    """Least-squares slope of log(time) on log(size): time ~ size^exponent."""
    pts = [(math.log(s), math.log(t)) for s, t in zip(sizes, times, strict=True) if t > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return round(sum((x - mx) * (y - my) for x, y in pts) / sxx, 3)


def pairwise(sizes: list[int], times: list[float]) -> dict[str, float | None]:
    """The exponent between each pair of neighbouring sizes."""
    return {
        f"{a}->{b}": exponent([a, b], [s, t])
        for a, b, s, t in zip(sizes, sizes[1:], times, times[1:], strict=False)
    }


def machine() -> dict:
    import numpy
    import sklearn
    import torch

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from alrun.models.embeddings import resolve_precision

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "embedding_precision_auto": resolve_precision("auto"),
    }


def headline(summary: dict) -> dict:
    """The acceptance numbers, pulled out of the parts (None where a part did not run)."""

    def get(*path: Any) -> Any:
        node: Any = summary
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    emb = ("embedding", "truncated_workload")
    default = get("embedding", "default_precision")
    tdef = get("token_features", "default_precision")
    return {
        "default_cold_s": get("default_experiment", "cold", "wall_s"),
        "default_warm_s": get("default_experiment", "warm", "wall_s"),
        "warm_speedup": get("default_experiment", "warm_speedup"),
        "cold_warm_identical": get("default_experiment", "identical_results"),
        "embedding_precision": default,
        "baseline_float32_tokens_per_s": get(*emb, "baseline_float32", "tokens_per_s"),
        "alrun_tokens_per_s": get(*emb, default, "tokens_per_s") if default else None,
        "embedding_speedup_vs_baseline": (
            get(*emb, default, "speedup_vs_baseline") if default else None
        ),
        "token_vectors_words_per_s": (
            get("token_features", f"layer4/{tdef}", "words_per_s") if tdef else None
        ),
        "token_vectors_subwords_per_s": (
            get("token_features", f"layer4/{tdef}", "subwords_per_s") if tdef else None
        ),
        "float32_matmul_gflops": get("matmul_ceiling", "torch_float32_gflops"),
        "round_200_labels_all_candidates_s": get("rounds", "200", "all_candidates", "round_s"),
        "scaling_pool_sizes": get("scaling", "pool_sizes"),
        "scaling_exponent_tfidf_first_round": get(
            "scaling", "tfidf_logreg/first", "round_exponent"
        ),
        "scaling_exponent_centroid_round": get(
            "scaling", "minilm_embed_centroid/next", "round_exponent"
        ),
    }


def _other_busy(tree: Any) -> list[float]:
    """Every `other_cores_busy` recorded anywhere in the summary."""
    if isinstance(tree, dict):
        own = [tree["other_cores_busy"]] if tree.get("other_cores_busy") is not None else []
        return own + [x for v in tree.values() for x in _other_busy(v)]
    if isinstance(tree, list):
        return [x for v in tree for x in _other_busy(v)]
    return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="also write the JSON summary to this file")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    ap.add_argument("--embed-texts", type=int, default=256, help="BBC texts for `embed`")
    ap.add_argument("--token-sentences", type=int, default=2000, help="CoNLL sentences, `tokens`")
    ap.add_argument("--scales", default="1,10,100", help="pool replication factors")
    ap.add_argument("--repeats", type=int, default=2, help="`embed`: best of N interleaved")
    ap.add_argument("--work", help="keep run folders, logs and the cache here (default: temp)")
    ap.add_argument("--_part", help=argparse.SUPPRESS)
    ap.add_argument("--_result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._part:
        child(args)
        return

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    work = Path(args.work or tempfile.mkdtemp(prefix="alrun-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "ALRUN_CACHE_DIR": str(work / "cache"),  # fresh: the cold run fills it
        "HF_HUB_OFFLINE": "1",
        "WANDB_SILENT": "true",
        "ALRUN_PROGRESS": "0",
        "PYTHONWARNINGS": "ignore",
    }
    if not (Path(env.get("ALRUN_DATA_DIR", "data")) / "bbc-news" / "bbc-news.jsonl").exists():
        raise SystemExit("bench: set ALRUN_DATA_DIR to the folder holding bbc-news/")
    t0 = time.perf_counter()
    summary: dict[str, Any] = {
        "command": " ".join(["benchmarks/bench.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "work_dir": str(work),
    }
    say(f"work dir {work}; load average {summary['load_avg_at_start']}")
    if "default" in parts:
        summary["default_experiment"] = part_default(env, work)
    elif any(p in parts for p in ("rounds", "scaling")):
        say("no `default` part: the embedding cache is filled by the first part that needs it")
    if "ceiling" in parts:
        summary["matmul_ceiling"] = run_part("ceiling", args, env, work)
    if "embed" in parts:
        summary["embedding"] = run_part("embed", args, env, work)
    if "tokens" in parts:
        summary["token_features"] = run_part("tokens", args, env, work)
    if "rounds" in parts:
        summary["rounds"] = run_part("rounds", args, env, work)
    if "scaling" in parts:
        factors = [int(x) for x in args.scales.split(",")]
        runs = [run_part(f"scaling_x{f}", args, env, work) for f in factors]
        sizes = [r.get("pool", 0) for r in runs]
        scaling: dict[str, Any] = {"pool_sizes": sizes, "runs": runs}
        for key in ("tfidf_logreg", "minilm_embed_centroid"):
            for attempt in ("first", "next"):
                times = [r.get(f"{key}/{attempt}", {}).get("round_s", 0) for r in runs]
                pool_t = [r.get(f"{key}/{attempt}", {}).get("score_pool_s", 0) for r in runs]
                scaling[f"{key}/{attempt}"] = {
                    "round_s": times,
                    "round_exponent": exponent(sizes, times),
                    "round_exponent_pairwise": pairwise(sizes, times),
                    "score_pool_s": pool_t,
                    "score_pool_exponent": exponent(sizes, pool_t),
                    "score_pool_exponent_pairwise": pairwise(sizes, pool_t),
                }
        scaling["peak_rss_mb"] = [r.get("process", {}).get("peak_rss_mb") for r in runs]
        summary["scaling"] = scaling
    summary["headline"] = headline(summary)
    summary["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    busy = _other_busy(summary)
    summary["other_cores_busy_max"] = max(busy) if busy else None
    # loaded: other processes took a quarter of a core or more during some measurement
    summary["loaded"] = bool(busy) and max(busy) >= 0.25
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(summary, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    say(f"done in {summary['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
