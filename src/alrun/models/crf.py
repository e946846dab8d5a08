"""Linear-chain CRF (CRFsuite) over hand-made word features: the classic strong NER baseline.

Features are the ones that carry CoNLL without embeddings: the word, its lower case, shape,
affixes and capitalisation, the same for two neighbours each side, and neighbour bigrams.
Marginals come from CRFsuite's forward-backward; the best path and its probability from
Viterbi, so least-confidence and MNLP use the true sequence probability.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alrun.errors import AlrunError
from alrun.models.base import MODELS, ModelContext
from alrun.strategies import Predictions, sequence_predictions

MODEL_FILE = "model.crfsuite"
_UPPER, _LOWER, _DIGIT = re.compile(r"[A-Z]"), re.compile(r"[a-z]"), re.compile(r"[0-9]")


def _shape(w: str) -> str:
    s = _DIGIT.sub("d", _LOWER.sub("x", _UPPER.sub("X", w)))
    return s if len(s) <= 6 else s[:3] + s[-3:]


def _short_shape(w: str) -> str:
    return re.sub(r"(.)\1+", r"\1", _shape(w))


def _word_feats(w: str) -> list[str]:
    low = w.lower()
    return [
        "w=" + w,
        "low=" + low,
        "shape=" + _shape(w),
        "sshape=" + _short_shape(w),
        "p1=" + w[:1],
        "p2=" + w[:2],
        "p3=" + w[:3],
        "s2=" + low[-2:],
        "s3=" + low[-3:],
        "s4=" + low[-4:],
        "title" if w.istitle() else "",
        "upper" if w.isupper() else "",
        "digit" if any(c.isdigit() for c in w) else "",
        "hyph" if "-" in w else "",
    ]


def sentence_features(tokens: Sequence[str]) -> list[list[str]]:
    """One feature list per token (strings; CRFsuite weights each as a binary attribute)."""
    n = len(tokens)
    own = [[f for f in _word_feats(w) if f] for w in tokens]
    ctx_feats = [
        [
            f"low={tokens[i].lower()}",
            f"sshape={_short_shape(tokens[i])}",
            "title" if tokens[i].istitle() else "",
            "upper" if tokens[i].isupper() else "",
        ]
        for i in range(n)
    ]
    out = []
    for i in range(n):
        f = ["bias", *own[i]]
        for off in (-2, -1, 1, 2):
            j = i + off
            if 0 <= j < n:
                f += [f"{off}:{x}" for x in ctx_feats[j] if x]
            else:
                f.append(f"{off}:pad")
        if i > 0:
            f.append(f"bi-1={tokens[i - 1].lower()}|{tokens[i].lower()}")
        if i + 1 < n:
            f.append(f"bi+1={tokens[i].lower()}|{tokens[i + 1].lower()}")
        if i == 0:
            f.append("first")
        out.append(f)
    return out


class _FeatureCache:
    """Features of recently seen sentences: the pool is featurised once, not every round."""

    def __init__(self, size: int = 60000) -> None:
        self.size = size
        self.data: OrderedDict[tuple[str, ...], Any] = OrderedDict()  # pycrfsuite.ItemSequence

    def get(self, tokens: Sequence[str]) -> Any:
        import pycrfsuite

        key = tuple(tokens)
        hit = self.data.get(key)
        if hit is None:
            hit = pycrfsuite.ItemSequence(sentence_features(tokens))
            self.data[key] = hit
            if len(self.data) > self.size:
                self.data.popitem(last=False)
        return hit


_FEATURES = _FeatureCache()


class CRFTagger:
    def __init__(self, ctx: ModelContext, c1: float, c2: float, max_iterations: int) -> None:
        self.ctx, self.c1, self.c2, self.max_iterations = ctx, c1, c2, max_iterations
        self.names = list(ctx.label_names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.model: bytes | None = None  # the CRFsuite model file's bytes

    def fit(self, sentences: Sequence[Sequence[str]], tags: Sequence[np.ndarray]) -> None:
        import pycrfsuite

        trainer = pycrfsuite.Trainer(verbose=False)
        items = self.features(sentences)
        for item, tg in zip(items, tags, strict=True):
            trainer.append(item, [self.names[t] for t in tg])
        trainer.set_params(
            {
                "c1": self.c1,
                "c2": self.c2,
                "max_iterations": self.max_iterations,
                "feature.possible_transitions": True,
            }
        )
        # CRFsuite trains into a file; its bytes are kept in memory, so no file outlives fit
        fd, path = tempfile.mkstemp(suffix=".crfsuite")
        os.close(fd)
        try:
            trainer.train(path)  # L-BFGS from zero weights: deterministic, no seed needed
            self.model = Path(path).read_bytes()
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)

    def features(self, sentences: Sequence[Sequence[str]]) -> list[Any]:
        """CRFsuite items (pycrfsuite.ItemSequence) for sentences: the hand-made features."""
        return [_FEATURES.get(toks) for toks in sentences]

    def save(self, path: Path) -> None:
        """The native CRFsuite model file, `model.crfsuite` (crfsuite's own tagger reads it)."""
        assert self.model is not None, "fit first"
        (path / MODEL_FILE).write_bytes(self.model)

    def load(self, path: Path) -> None:
        self.model = (path / MODEL_FILE).read_bytes()

    def predict(self, sentences: Sequence[Sequence[str]]) -> Predictions:
        import pycrfsuite

        assert self.model is not None, "fit first"
        tagger = pycrfsuite.Tagger()
        tagger.open_inmemory(self.model)
        known = [(self.index[lab], lab) for lab in tagger.labels()]
        marginals, logprob, best = [], [], []
        for toks, item in zip(sentences, self.features(sentences), strict=True):
            tagger.set(item)
            path = tagger.tag()
            m = np.zeros((len(toks), len(self.names)), dtype=np.float32)
            for j, lab in known:
                m[:, j] = [tagger.marginal(lab, t) for t in range(len(toks))]
            m /= m.sum(axis=1, keepdims=True)
            marginals.append(m)
            logprob.append(float(np.log(max(tagger.probability(path), 1e-300))))
            best.append(np.array([self.index[p] for p in path], dtype=np.int64))
        tagger.close()
        return sequence_predictions(marginals, logprob, best)


@MODELS.register
def crf_ner(
    ctx: ModelContext, c1: float = 0.05, c2: float = 0.05, max_iterations: int = 150
) -> CRFTagger:
    if c1 < 0 or c2 < 0 or max_iterations < 1:
        raise AlrunError(
            f"crf_ner: c1={c1}, c2={c2} must be >= 0 and max_iterations={max_iterations} >= 1"
        )
    return CRFTagger(ctx, c1, c2, max_iterations)
