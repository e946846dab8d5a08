"""Candidate models behind one small protocol, built by name from `conf/model/<name>.yaml`."""

# Registration happens on import; heavy libraries (torch, transformers) load lazily inside.
from alrun.models import (  # noqa: F401
    context_crf,
    crf,
    embeddings,
    ensemble,
    finetune,
    linear,
    spacy_ner,
    token_cls,
)
from alrun.models.base import (
    MODEL_FILE,
    MODELS,
    Model,
    ModelContext,
    build_model,
    expand_probs,
    load_model,
    save_model,
)

__all__ = [
    "MODELS",
    "MODEL_FILE",
    "Model",
    "ModelContext",
    "build_model",
    "expand_probs",
    "load_model",
    "save_model",
]
