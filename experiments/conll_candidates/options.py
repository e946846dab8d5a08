"""Which contextual features help a CRF most, per second of fitting? One labelled set, many
feature sets: the options behind minilm_crf_ner's defaults.

    ALRUN_DATA_DIR=../shared/data .venv/bin/python experiments/conll_candidates/options.py

2,100 random CoNLL-2003 train sentences (seed 0, about 31k tokens), CRFsuite with crf_ner's
settings (c1 = c2 = 0.05, 150 iterations), entity F1 on the whole test file. Word vectors:
the packaged MiniLM at layers 2, 4 and 6, float32, through alrun's cached table; projection
and clusters fitted on the train file's words as minilm_crf_ner does. Prints a Markdown table.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pycrfsuite

from alrun.data import read_conll
from alrun.models import ModelContext
from alrun.models.context_crf import WordFeatureMap
from alrun.models.crf import sentence_features
from alrun.models.embeddings import PACKAGED
from alrun.models.token_vectors import word_vector_table
from alrun.tasks import Ner

NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
# (layer, cluster ids?, projection dims): None = the plain CRF
OPTIONS = [None, (4, True, 0), (4, False, 32), (4, True, 32), (4, True, 64), (2, True, 64),
           (6, True, 64)]  # fmt: skip


def items(sents, proj, ids, clusters: bool, dims: int):
    out = []
    at = 0
    for toks in sents:
        lexical = sentence_features(toks)
        n, seq = len(toks), []
        for i in range(n):
            d = dict.fromkeys(lexical[i], 1.0)
            if proj is not None:
                d.update({f"v{q}": float(proj[at + i, q]) for q in range(dims)})
                for j, off in ((i, ""), (i - 1, "-1"), (i + 1, "+1")):
                    if clusters and 0 <= j < n:
                        d.update({f"{off}c{g}={c}": 1.0 for g, c in enumerate(ids[at + j])})
            seq.append(d)
        out.append(pycrfsuite.ItemSequence(seq))
        at += n
    return out


def main() -> None:
    data = Path(os.environ.get("ALRUN_DATA_DIR", "data")) / "conll2003"
    index = {n: i for i, n in enumerate(NAMES)}

    def read(name):
        pairs = [(t, g) for _, ss in read_conll(data / name) for _, t, g in ss]
        return [t for t, _ in pairs], [g for _, g in pairs]

    (tr_x, tr_y), (te_x, te_y) = read("train.txt"), read("test.txt")
    pick = np.random.default_rng(0).choice(len(tr_x), 2100, replace=False)
    x, y = [tr_x[i] for i in pick], [tr_y[i] for i in pick]
    ctx = ModelContext(
        len(NAMES), 0, Path(os.environ.get("ALRUN_CACHE_DIR", ".cache/alrun")),
        label_names=NAMES, pool_sentences=tr_x, test_sentences=te_x,
    )  # fmt: skip
    task, gold = Ner(), [[np.array([index[t] for t in g])] for g in te_y]
    print(f"{len(x)} sentences, {sum(map(len, x))} tokens labelled\n")
    print("| layer | cluster ids | projection dims | test F1 | fit s |\n|---|---|---|---|---|")
    maps: dict[int, tuple] = {}
    for opt in OPTIONS:
        if opt is None:
            feats = [items(s, None, None, False, 0) for s in (x, te_x)]
        else:
            layer, clusters, dims = opt
            if layer not in maps:
                table = word_vector_table(ctx, PACKAGED, layer, 128, 64, "float32")
                fmap = WordFeatureMap.fit(np.concatenate(table(tr_x)), 64, [64, 256, 1024])
                maps[layer] = tuple(fmap.transform(np.concatenate(table(s))) for s in (x, te_x))
            (p_tr, i_tr), (p_te, i_te) = maps[layer]
            feats = [items(x, p_tr, i_tr, clusters, dims), items(te_x, p_te, i_te, clusters, dims)]
        trainer = pycrfsuite.Trainer(verbose=False)
        for it, tags in zip(feats[0], y, strict=True):
            trainer.append(it, tags)
        trainer.set_params(
            {"c1": 0.05, "c2": 0.05, "max_iterations": 150, "feature.possible_transitions": True}
        )
        fd, path = tempfile.mkstemp()
        os.close(fd)
        t0 = time.perf_counter()
        trainer.train(path)
        fit_s = time.perf_counter() - t0
        tagger = pycrfsuite.Tagger()
        tagger.open(path)
        pred = [[np.array([index[t] for t in tagger.tag(it)])] for it in feats[1]]
        os.remove(path)
        f1 = task.metrics(gold, pred, NAMES)["f1"]
        row = ("-", "-", "- (plain CRF)") if opt is None else (opt[0], "yes" if opt[1] else "no",
                                                               opt[2] or "-")  # fmt: skip
        print(f"| {row[0]} | {row[1]} | {row[2]} | {f1:.4f} | {fit_s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
