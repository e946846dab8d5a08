"""Run arguments shared by the annotator tests: small, fast candidates on small data."""

NER = (
    "dataset=custom_tokens",
    "dataset.path=train.jsonl",
    "dataset.test_path=test.jsonl",
    "loop.unit=sentence",
    "candidates=[crf_ner]",
    "models.crf_ner.max_iterations=50",
)
# no encoder: a random start and plain margin (the multiclass default embeds the pool)
BBC = ("candidates=[tfidf_logreg]", "loop.initial_strategy=random", "strategy=margin")
