"""MiniLM fine-tuned for token classification (NER), plain PyTorch loop, CPU-feasible.

Words are taken as given and split into sub-words (`is_split_into_words`); a word's tag is
predicted at its first sub-word, the others are ignored in the loss. A sentence longer than
`max_length` sub-words is cut into consecutive chunks of whole words that fit, each encoded on
its own, so every word gets a prediction. Tags are predicted independently per word (softmax),
so the marginals are the model's output and no sequence probability is claimed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alrun.errors import AlrunError
from alrun.models.base import MODELS, ModelContext
from alrun.models.embeddings import PACKAGED, resolve_model_path
from alrun.progress import progress_bar
from alrun.strategies import Predictions, sequence_predictions

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

Chunk = tuple[int, int, list[list[int]]]  # (sentence, first word, sub-word ids of each word)


def _load_tokenizer(path: str):
    import transformers
    from transformers import AutoTokenizer

    transformers.logging.set_verbosity_error()  # we chunk long sentences ourselves
    transformers.logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(path, use_fast=True)
    except OSError as e:
        raise AlrunError(f"could not load the tokenizer of {path}: {e}") from e
    if not tok.is_fast:
        raise AlrunError(f"minilm_token_cls needs a fast tokenizer (word ids); {path} has none")
    return tok


_tokenizer = cache(_load_tokenizer)  # the encoder's: loaded once per process
PREDICT_BATCH = 64  # chunks per forward pass when predicting


def length_batches(
    lengths: np.ndarray, size: int, rng: np.random.Generator, pool: int = 50
) -> list[np.ndarray]:
    """Training batches of `size` positions into `lengths`, of similar lengths (little padding)
    yet in a random order: shuffle, sort each run of `pool` batches' worth by length (longest
    first; ties stay shuffled), cut it into batches, shuffle the batches. Seeded by `rng`."""
    perm = rng.permutation(len(lengths))
    step = pool * size
    batches = []
    for s in range(0, len(perm), step):
        part = perm[s : s + step]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches += [part[i : i + size] for i in range(0, len(part), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: Sequence[int], size: int) -> list[np.ndarray]:
    """Prediction batches of `size` positions into `lengths`, longest first (little padding);
    each result goes back to its own position, so the output keeps the input's order."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + size] for i in range(0, len(order), size)]


class TokenClassifier:
    def __init__(
        self,
        ctx: ModelContext,
        encoder: str,
        max_length: int,
        epochs: int,
        min_steps: int,
        batch_size: int,
        lr: float,
        head_lr: float,
        weight_decay: float,
        warmup: float,
    ) -> None:
        checks = {
            "max_length": max_length >= 3,
            "epochs": epochs >= 1,
            "min_steps": min_steps >= 0,
            "batch_size": batch_size >= 1,
            "lr": lr > 0,
            "head_lr": head_lr > 0,
            "weight_decay": weight_decay >= 0,
            "warmup": 0.0 <= warmup < 1.0,
        }
        for key, ok in checks.items():
            if not ok:
                raise AlrunError(f"minilm_token_cls: bad {key}={locals()[key]!r}")
        self.ctx, self.encoder = ctx, encoder
        self.path = resolve_model_path(encoder)
        self.max_length, self.epochs, self.min_steps = max_length, epochs, min_steps
        self.batch_size, self.lr, self.head_lr = batch_size, lr, head_lr
        self.weight_decay, self.warmup = weight_decay, warmup
        # set by fit or load
        self.model: PreTrainedModel | None = None
        self.tok: PreTrainedTokenizerFast | None = None

    # -- sub-words -------------------------------------------------------------------------

    def _chunks(self, sentences: Sequence[Sequence[str]]) -> list[Chunk]:
        """Sentences as chunks of whole words that fit max_length sub-words with [CLS], [SEP].

        Each chunk is (sentence index, index of its first word, sub-word ids of each word);
        a word keeps at least one sub-word (the unknown token if the tokenizer drops it) and
        at most max_length - 2. Empty sentences give no chunk.
        """
        room = self.max_length - 2
        todo = [i for i, s in enumerate(sentences) if len(s)]
        out: list[Chunk] = []
        if not todo:
            return out
        assert self.tok is not None, "fit first"
        enc = self.tok(
            [list(sentences[i]) for i in todo],
            is_split_into_words=True,
            add_special_tokens=False,
            truncation=False,
        )
        for row, i in enumerate(todo):
            pieces: list[list[int]] = [[] for _ in sentences[i]]
            for pid, w in zip(enc["input_ids"][row], enc.word_ids(row), strict=True):
                if w is not None:
                    pieces[w].append(pid)
            pieces = [(p or [self.tok.unk_token_id])[:room] for p in pieces]
            start, used = 0, 0
            for w, p in enumerate(pieces):
                if used + len(p) > room:
                    out.append((i, start, pieces[start:w]))
                    start, used = w, 0
                used += len(p)
            out.append((i, start, pieces[start:]))
        return out

    def _batch(self, chunks: Sequence[Chunk]):
        """Padded input ids, attention mask, and per chunk the position of each word's first
        sub-word."""
        import torch

        tok = self.tok
        assert tok is not None, "fit first"
        seqs, firsts = [], []
        for _, _, pieces in chunks:
            ids, first = [tok.cls_token_id], []
            for p in pieces:
                first.append(len(ids))
                ids.extend(p)
            ids.append(tok.sep_token_id)
            seqs.append(ids)
            firsts.append(first)
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            input_ids[r, : len(s)] = torch.as_tensor(s)
            mask[r, : len(s)] = 1
        return input_ids, mask, firsts

    # -- training and prediction ------------------------------------------------------------

    def fit(self, sentences: Sequence[list[str]], tags: Sequence[np.ndarray]) -> None:
        import torch
        from transformers import AutoModelForTokenClassification, get_linear_schedule_with_warmup

        for toks, ids in zip(sentences, tags, strict=True):
            if len(toks) != len(ids):
                raise AlrunError(f"minilm_token_cls: {len(toks)} tokens but {len(ids)} tags")
        torch.manual_seed(self.ctx.seed)
        rng = np.random.default_rng(self.ctx.seed)
        self.tok = _tokenizer(self.path)
        names = list(self.ctx.label_names) or [str(i) for i in range(self.ctx.n_classes)]
        try:
            self.model = AutoModelForTokenClassification.from_pretrained(
                self.path,
                num_labels=self.ctx.n_classes,
                id2label=dict(enumerate(names)),
                label2id={n: i for i, n in enumerate(names)},
            )
        except OSError as e:
            raise AlrunError(
                f"could not load encoder {self.encoder!r} from {self.path}: {e}"
            ) from e
        chunks = self._chunks(sentences)
        if not chunks:
            raise AlrunError("minilm_token_cls: nothing to train on (no non-empty sentences)")
        labels = [np.asarray(tags[i][w : w + len(p)]) for i, w, p in chunks]

        head = [p for n, p in self.model.named_parameters() if n.startswith("classifier.")]
        body = [p for n, p in self.model.named_parameters() if not n.startswith("classifier.")]
        opt = torch.optim.AdamW(
            [{"params": body, "lr": self.lr}, {"params": head, "lr": self.head_lr}],
            weight_decay=self.weight_decay,
        )
        n_batches = -(-len(chunks) // self.batch_size)
        epochs = max(self.epochs, -(-self.min_steps // n_batches))  # small sets: more passes
        steps = epochs * n_batches
        sched = get_linear_schedule_with_warmup(opt, int(self.warmup * steps), steps)
        params = [*body, *head]
        lengths = np.array([sum(len(p) for p in c[2]) for c in chunks])
        self.model.train()
        with progress_bar(f"token classifier on {len(chunks)}", steps) as bar:
            for _ in range(epochs):
                for b in length_batches(lengths, self.batch_size, rng):
                    input_ids, mask, firsts = self._batch([chunks[i] for i in b])
                    y = torch.full(input_ids.shape, -100, dtype=torch.long)
                    for r, (i, first) in enumerate(zip(b, firsts, strict=True)):
                        y[r, first] = torch.as_tensor(labels[i], dtype=torch.long)
                    logits = self.model(input_ids=input_ids, attention_mask=mask).logits
                    loss = torch.nn.functional.cross_entropy(
                        logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100
                    )
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    opt.step()
                    sched.step()
                    opt.zero_grad()
                    bar(1)
        self.model.eval()

    def predict(self, sentences: Sequence[list[str]]) -> Predictions:
        import torch

        assert self.model is not None, "fit first"
        n_tags = self.ctx.n_classes
        marginals = [np.zeros((len(s), n_tags)) for s in sentences]
        chunks = self._chunks(sentences)
        lengths = [sum(len(p) for p in c[2]) for c in chunks]
        with torch.inference_mode():
            for b in sorted_batches(lengths, PREDICT_BATCH):
                part = [chunks[i] for i in b]
                input_ids, mask, firsts = self._batch(part)
                logits = self.model(input_ids=input_ids, attention_mask=mask).logits
                probs = torch.softmax(logits.double(), dim=-1).numpy()
                for r, ((i, w, _), first) in enumerate(zip(part, firsts, strict=True)):
                    marginals[i][w : w + len(first)] = probs[r, first]
        best = [m.argmax(axis=1) for m in marginals]
        return sequence_predictions(marginals, None, best)

    def save(self, path: Path) -> None:
        """Model (with its tag names as id2label) and tokenizer by `save_pretrained`."""
        assert self.model is not None and self.tok is not None, "fit first"
        self.model.save_pretrained(path)
        self.tok.save_pretrained(path)

    def load(self, path: Path) -> None:
        from transformers import AutoModelForTokenClassification

        self.tok = _load_tokenizer(str(path))
        self.model = AutoModelForTokenClassification.from_pretrained(path)
        self.model.eval()
        if self.model.config.num_labels != self.ctx.n_classes:
            raise AlrunError(
                f"{path}: the saved model has {self.model.config.num_labels} tags, its "
                f"metadata {self.ctx.n_classes}; save the model again"
            )


@MODELS.register
def minilm_token_cls(
    ctx: ModelContext,
    encoder: str = PACKAGED,
    max_length: int = 128,
    epochs: int = 5,
    min_steps: int = 100,
    batch_size: int = 16,
    lr: float = 1e-4,
    head_lr: float = 1e-3,
    weight_decay: float = 0.01,
    warmup: float = 0.1,
) -> TokenClassifier:
    return TokenClassifier(
        ctx, encoder, max_length, epochs, min_steps, batch_size, lr, head_lr, weight_decay, warmup
    )
