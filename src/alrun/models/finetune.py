"""MiniLM fine-tuned end to end for sequence classification (plain PyTorch loop, CPU-feasible).

The head sits on the mean-pooled tokens (how all-MiniLM-L6-v2 was trained, unlike BERT's
[CLS] pooler, which this checkpoint lacks) and starts as the nearest-centroid classifier of the
training texts, so a few epochs on a few dozen labels improve on a good start instead of
learning from noise. A hand-written loop instead of `Trainer`: no accelerate, exact seeding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alrun.models.base import MODELS, ModelContext
from alrun.models.embeddings import PACKAGED, resolve_model_path
from alrun.progress import progress_bar
from alrun.strategies import Predictions

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

HEAD = "head.safetensors"  # the classifier on the pooled tokens, next to the encoder's files


class FineTuned:
    def __init__(
        self,
        ctx: ModelContext,
        encoder: str,
        max_length: int,
        epochs: int,
        batch_size: int,
        lr: float,
        weight_decay: float,
        warmup: float,
        scale: float,
    ) -> None:
        self.ctx, self.path = ctx, resolve_model_path(encoder)
        self.max_length, self.epochs, self.batch_size = max_length, epochs, batch_size
        self.lr, self.weight_decay, self.warmup, self.scale = lr, weight_decay, warmup, scale
        # set by fit or load
        self.encoder: PreTrainedModel | None = None
        self.head: torch.nn.Linear | None = None
        self.tok: PreTrainedTokenizerBase | None = None

    def _logits(self, texts: Sequence[str]):
        import torch

        assert self.head is not None, "fit first"
        return self.head(torch.nn.functional.normalize(self._pool_only(texts), dim=1))

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

        torch.manual_seed(self.ctx.seed)
        rng = np.random.default_rng(self.ctx.seed)
        self.tok = AutoTokenizer.from_pretrained(self.path)
        self.encoder = AutoModel.from_pretrained(self.path)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, self.ctx.n_classes)
        with torch.no_grad():  # centroid start: logits = scale * cosine(text, class mean)
            self.head.weight.zero_()
            self.head.bias.fill_(-self.scale)  # classes without labels start out unlikely
            self.head.weight.requires_grad_(False)
            self.encoder.eval()
            emb = torch.nn.functional.normalize(
                torch.cat([self._pool_only(texts[i : i + 64]) for i in range(0, len(texts), 64)]),
                dim=1,
            )
            for c in np.unique(labels):
                centre = torch.nn.functional.normalize(emb[labels == c].mean(0), dim=0)
                self.head.weight[c] = self.scale * centre
                self.head.bias[c] = 0.0
            self.head.weight.requires_grad_(True)
        params = [*self.encoder.parameters(), *self.head.parameters()]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        steps = self.epochs * -(-len(texts) // self.batch_size)
        sched = get_linear_schedule_with_warmup(opt, int(self.warmup * steps), steps)
        y = torch.as_tensor(labels, dtype=torch.long)
        self.encoder.train()
        with progress_bar(f"fine-tuning on {len(texts)}", steps) as bar:
            for _ in range(self.epochs):
                perm = rng.permutation(len(texts))
                for start in range(0, len(texts), self.batch_size):
                    b = perm[start : start + self.batch_size]
                    loss = torch.nn.functional.cross_entropy(
                        self._logits([texts[i] for i in b]), y[b]
                    )
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    opt.step()
                    sched.step()
                    opt.zero_grad()
                    bar(1)
        self.encoder.eval()

    def _pool_only(self, texts: Sequence[str]):
        assert self.tok is not None and self.encoder is not None, "fit first"
        batch = self.tok(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def predict(self, texts: Sequence[str]) -> Predictions:
        import torch

        assert self.encoder is not None, "fit first"
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.ctx.n_classes))
        with torch.inference_mode():
            for start in range(0, len(texts), 64):
                idx = order[start : start + 64]
                logits = self._logits([texts[i] for i in idx])
                out[idx] = torch.softmax(logits, dim=-1).double().numpy()
        return Predictions(out)

    def save(self, path: Path) -> None:
        """Encoder and tokenizer by `save_pretrained` (config.json, model.safetensors, ...);
        the linear head on the pooled tokens is not a transformers head: head.safetensors."""
        from safetensors.torch import save_file

        assert self.encoder is not None and self.tok is not None and self.head is not None, (
            "fit first"
        )
        self.encoder.save_pretrained(path)
        self.tok.save_pretrained(path)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, path / HEAD)

    def load(self, path: Path) -> None:
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path)
        self.encoder.eval()
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, self.ctx.n_classes)
        self.head.load_state_dict(load_file(path / HEAD))


@MODELS.register
def minilm_finetune(
    ctx: ModelContext,
    encoder: str = PACKAGED,
    max_length: int = 128,
    epochs: int = 3,
    batch_size: int = 16,
    lr: float = 3e-5,
    weight_decay: float = 0.01,
    warmup: float = 0.1,
    scale: float = 20.0,
) -> FineTuned:
    return FineTuned(ctx, encoder, max_length, epochs, batch_size, lr, weight_decay, warmup, scale)
