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

# a raw pool (dataset=raw_text, conftest's news_csv): no labels; the evaluation set comes first
RAW = (
    "dataset=raw_text",
    "dataset.path=news.csv",
    "dataset.text_field=Text",
    "loop.initial_size=2",
    "loop.round_size=2",
    "loop.budget=6",
    "eval.size=4",
)
RAW_NER = (
    *RAW,
    "dataset.labels=[PERSON,ORG,PRODUCT,LOCATION]",
    "loop.unit=sentence",
    "candidates=[crf_ner]",
    "models.crf_ner.max_iterations=50",
)
RAW_BBC = (
    *RAW,
    "task=multiclass",
    "dataset.labels=[business,entertainment,politics,sport,tech]",
    *BBC,
)
