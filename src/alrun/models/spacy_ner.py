"""spaCy's transition-based NER (beam variant), trained from scratch on a blank English pipeline.

The beam NER keeps the `beam_width` best parses of a sentence with their (softmax-normalised)
scores, which turns the parser into a probabilistic model: a token's tag marginals are the summed
probabilities of the parses that give it each IOB2 tag, and the top parse is the best sequence.
Tokens are taken as given (a `Doc` is built from the words; spaCy never re-tokenises).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alrun.data import to_iob2
from alrun.errors import AlrunError
from alrun.models.base import MODELS, ModelContext
from alrun.progress import progress_bar
from alrun.strategies import Predictions, sequence_predictions

if TYPE_CHECKING:
    from spacy.language import Language


def entity_types(label_names: Sequence[str]) -> list[str]:
    """IOB2 tag names ("O", "B-PER", "I-PER", ...) -> entity types in order of first mention."""
    if not label_names or label_names[0] != "O":
        raise AlrunError(
            f"NER models need IOB2 tag names with 'O' first; got {list(label_names)[:5]}"
        )
    types: list[str] = []
    for name in label_names[1:]:
        if name[:2] not in ("B-", "I-") or len(name) < 3:
            raise AlrunError(f"tag {name!r} is not an IOB2 tag (B-TYPE or I-TYPE)")
        if name[2:] not in types:
            types.append(name[2:])
    return types


class SpacyNER:
    def __init__(
        self,
        ctx: ModelContext,
        epochs: int,
        batch_size: int,
        min_steps: int,
        dropout: float,
        lr: float,
        beam_width: int,
        beam_density: float,
        width: int,
        depth: int,
        embed_size: int,
        hidden_width: int,
    ) -> None:
        checks = {
            "epochs": epochs >= 1,
            "batch_size": batch_size >= 1,
            "min_steps": min_steps >= 0,
            "dropout": 0.0 <= dropout < 1.0,
            "lr": lr > 0,
            "beam_width": beam_width >= 2,
            "beam_density": 0.0 <= beam_density < 1.0,
            "width": width >= 1,
            "depth": depth >= 1,
            "embed_size": embed_size >= 1,
            "hidden_width": hidden_width >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                hint = " (the beam gives the probabilities; 1 is the greedy parser)"
                raise AlrunError(
                    f"spacy_ner: bad {key}={locals()[key]!r}"
                    + (hint if key == "beam_width" else "")
                )
        self.ctx = ctx
        self.names = list(ctx.label_names)
        if len(self.names) != ctx.n_classes:
            raise AlrunError(
                f"spacy_ner needs the tag names: got {len(self.names)} for {ctx.n_classes} tags"
            )
        self.types = entity_types(self.names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.epochs, self.batch_size, self.min_steps = epochs, batch_size, min_steps
        self.dropout, self.lr = dropout, lr
        self.beam_width, self.beam_density = beam_width, beam_density
        self.arch = {"width": width, "depth": depth, "embed_size": embed_size}
        self.hidden_width = hidden_width
        self.nlp: Language | None = None  # set by fit or load
        # thinc's averaged weights by (model id, parameter name)
        self.averages: dict[tuple[int, str], Any] | None = None

    def _doc(self, tokens: Sequence[str]):
        from spacy.tokens import Doc

        assert self.nlp is not None, "fit first"
        # spaCy rejects empty words; "_" keeps the one-word-per-token alignment
        return Doc(self.nlp.vocab, words=[w if w else "_" for w in tokens])

    def fit(self, sentences: Sequence[list[str]], tags: Sequence[np.ndarray]) -> None:
        import spacy
        from spacy.training import Example, iob_to_biluo
        from thinc.api import Adam

        spacy.util.fix_random_seed(self.ctx.seed)
        rng = np.random.default_rng(self.ctx.seed)
        self.nlp = spacy.blank("en")
        ner = self.nlp.add_pipe(
            "beam_ner",
            config={
                "beam_width": self.beam_width,
                "beam_density": self.beam_density,
                "model": {"hidden_width": self.hidden_width, "tok2vec": self.arch},
            },
        )
        for t in self.types:  # every type, seen in the labels or not: a fixed output space
            ner.add_label(t)
        examples = []
        for toks, ids in zip(sentences, tags, strict=True):
            if len(toks) != len(ids):
                raise AlrunError(f"spacy_ner: {len(toks)} tokens but {len(ids)} tags")
            if not len(toks):
                continue
            # an I-X that does not continue an X entity starts one, so BILUO conversion holds
            names = to_iob2([self.names[i] for i in ids], "spacy_ner training tags")
            examples.append(Example.from_dict(self._doc(toks), {"entities": iob_to_biluo(names)}))
        if not examples:
            raise AlrunError("spacy_ner: nothing to train on (no non-empty sentences)")
        optimizer = Adam(learn_rate=self.lr, L2=1e-6, grad_clip=1.0, use_averages=True)
        self.nlp.initialize(lambda: examples, sgd=optimizer)
        n_batches = -(-len(examples) // self.batch_size)
        epochs = max(self.epochs, -(-self.min_steps // n_batches))  # small sets: more passes
        with progress_bar(f"spaCy NER on {len(examples)}", epochs * n_batches) as bar:
            for _ in range(epochs):
                perm = rng.permutation(len(examples))
                for start in range(0, len(examples), self.batch_size):
                    batch = [examples[i] for i in perm[start : start + self.batch_size]]
                    self.nlp.update(batch, drop=self.dropout, sgd=optimizer)
                    bar(1)
        self.averages = optimizer.averages  # generalise better than the last step's weights

    def predict(self, sentences: Sequence[list[str]]) -> Predictions:
        assert self.nlp is not None, "fit first"
        ner = self.nlp.get_pipe("beam_ner")
        n_tags = len(self.names)
        marginals: list[np.ndarray] = []
        best: list[np.ndarray] = []
        logprob: list[float] = []
        with ner.model.use_params(self.averages):
            for start in range(0, len(sentences), 256):
                chunk = sentences[start : start + 256]
                docs = [self._doc(t) for t in chunk if len(t)]
                beams = iter(ner.predict(docs) if docs else [])
                for toks in chunk:
                    marg = np.zeros((len(toks), n_tags))
                    path = np.zeros(len(toks), dtype=np.int64)
                    top = 0.0
                    if len(toks):
                        parses = ner.moves.get_beam_parses(next(beams))
                        total = sum(p for p, _ in parses)
                        if total > 0:
                            top_p = -1.0
                            for p, ents in parses:
                                seq = self._tag_ids(len(toks), ents)
                                marg[np.arange(len(toks)), seq] += p / total
                                if p > top_p:
                                    top_p, path = p, seq
                            top = math.log(max(top_p / total, 1e-300))
                    if not len(toks) or marg.sum() == 0:  # no finished parse: all "O"
                        marg[:, 0] = 1.0
                    marginals.append(marg / marg.sum(axis=1, keepdims=True).clip(min=1e-300))
                    best.append(path)
                    logprob.append(top)
        return sequence_predictions(marginals, logprob, best)

    def save(self, path: Path) -> None:
        """spaCy's own pipeline folder (`nlp.to_disk`: config.cfg, meta.json, beam_ner/ ...),
        with the averaged weights that `predict` uses, so `spacy.load` gives the same model."""
        assert self.nlp is not None, "fit first"
        with self.nlp.get_pipe("beam_ner").model.use_params(self.averages):
            self.nlp.to_disk(path / "spacy")

    def load(self, path: Path) -> None:
        import spacy

        self.nlp = spacy.load(path / "spacy")
        self.averages = {}  # the saved weights are the averages already

    def _tag_ids(self, n: int, ents: Sequence[tuple[int, int, str]]) -> np.ndarray:
        seq = np.zeros(n, dtype=np.int64)
        for s, e, label in ents:
            seq[s] = self.index[f"B-{label}"]
            seq[s + 1 : e] = self.index[f"I-{label}"]
        return seq


@MODELS.register
def spacy_ner(
    ctx: ModelContext,
    epochs: int = 10,
    batch_size: int = 16,
    min_steps: int = 200,
    dropout: float = 0.2,
    lr: float = 0.001,
    beam_width: int = 8,
    beam_density: float = 0.0001,
    width: int = 96,
    depth: int = 4,
    embed_size: int = 5000,
    hidden_width: int = 64,
) -> SpacyNER:
    return SpacyNER(
        ctx,
        epochs,
        batch_size,
        min_steps,
        dropout,
        lr,
        beam_width,
        beam_density,
        width,
        depth,
        embed_size,
        hidden_width,
    )
