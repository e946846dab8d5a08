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

# the README's "Label your own data": the BBC CSV as a team gets it (conftest's news_csv.full,
# ArticleId,Text,Category; Category ignored), an evaluation set of 4, then rounds 0, 1, 2
TEAM = (
    "dataset=raw_text",
    "dataset.path=bbc-news/bbc-news.csv",
    "dataset.text_field=Text",
    "eval.size=4",
    "loop.round_size=3",
)
TEAM_NER = (
    *TEAM,
    "dataset.labels=[PERSON,ORG,PRODUCT,LOCATION]",
    "loop.unit=sentence",
    "candidates=[crf_ner]",
    # 4 random sentences hold enough names (seed 0) for the CRF to pre-annotate round 1;
    # trained on 3 it predicts none there
    "loop.initial_size=4",
    "loop.budget=10",
)
TEAM_TEXTCAT = (
    *TEAM,
    "task=multiclass",
    "dataset.labels=[business,entertainment,politics,sport,tech]",
    *BBC,
    "loop.initial_size=3",
    "loop.budget=9",
)
