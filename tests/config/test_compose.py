"""Every option of every group, and every preset, composes and builds its parts (no training)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from alrun.config import CONF_DIR, register_schema
from alrun.errors import AlrunError
from alrun.models import MODELS
from alrun.oracles import ORACLES
from alrun.settings import check as check_settings
from alrun.strategies import STRATEGIES
from alrun.tasks import TASKS
from alrun.tracking import LOGGERS

register_schema()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def make(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_option_files_equal_registry_names():
    assert options("model") == MODELS.names()
    assert options("strategy") == STRATEGIES.names()
    assert options("task") == TASKS.names()
    assert options("oracle") == ORACLES.names()
    assert options("logger") == LOGGERS.names()


@pytest.mark.parametrize(
    "group", ["dataset", "task", "candidates", "strategy", "oracle", "logger", "experiment"]
)
def test_every_option_composes_and_builds(group):
    for option in options(group):
        cfg = make(f"{group}={option}")
        try:
            parts = check_settings(cfg)
        except AlrunError as e:
            if "soft vote" in str(e):  # the ensemble alone has nothing to vote: give it two
                cfg = make(f"{group}=[tfidf_logreg,minilm_embed_centroid,{option}]")
            else:  # an NER-only option: compose it with an NER dataset
                assert "supports tasks" in str(e), str(e)
                cfg = make(f"{group}={option}", "dataset=conll2003")
            parts = check_settings(cfg)
        assert parts.candidates, (group, option)
        if group not in ("experiment", "candidates"):
            assert cfg[group].name == option  # name: equals the file name


def test_ad_hoc_candidate_list_and_model_override():
    cfg = make(
        "candidates=[tfidf_logreg,minilm_embed_centroid]", "models.tfidf_logreg.max_features=123"
    )
    assert list(cfg.models) == ["tfidf_logreg", "minilm_embed_centroid"]
    assert check_settings(cfg).candidates["tfidf_logreg"]["max_features"] == 123


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["loop.round_size=0"], "loop.round_size=0 must be at least 1"),
        (["candidates=[tfidf_logreg,ensemble]"], "models.ensemble: a soft vote of at least 2"),
        (
            [
                "candidates=[tfidf_logreg,minilm_embed_centroid,ensemble]",
                "models.ensemble.members=[tfidf_logreg,bert]",
            ],
            "unknown: ['bert']",
        ),
        (["selection.rank_by=accuracy"], "selection.rank_by='accuracy'; choose log_loss"),
        (["selection.switch_confidence=1.5"], "switch_confidence=1.5 in [0, 1]"),
        (["loop.initial_strategy=coreset"], "loop.initial_strategy='coreset'; choose random"),
        (["features.precision=float16"], "features.precision='float16': choose one of"),
        (["loop.budget=5"], "loop.budget=5 is below loop.initial_size=10"),
        (["models.minilm_embed_logreg.name=bert_huge"], "unknown model 'bert_huge'"),
        (["+models.minilm_tfidf_logreg.max_featurs=3"], "models.minilm_tfidf_logreg.max_featurs"),
        (["+strategy.reduction=max"], "strategy.reduction"),
        (
            ["strategy.tasks=[ner]"],
            "strategy 'diverse_margin' supports tasks ['ner'], not 'multiclass'",
        ),
        (["task=ner"], "dataset 'bbc_news' supports tasks ['multiclass'], not 'ner'"),
        (["dataset=conll2003", "strategy=margin"], "strategy 'margin' supports tasks"),
        (
            ["dataset=conll2003", "candidates=default"],
            "models.minilm_tfidf_logreg 'minilm_tfidf_logreg' supp",
        ),
        (["candidates=ner"], "models.crf_ner 'crf_ner' supports tasks ['ner'], not 'multi"),
        (["loop.unit=sentence"], "loop.unit=sentence: a multiclass item is a whole document"),
        (["loop.unit=page"], "loop.unit='page'; choose document or sentence"),
        (
            ["dataset=conll2003", "strategy=token_entropy", "strategy.reduction=median"],
            "strategy 'token_entropy': strategy.reduction='median'; choose mean, max or sum",
        ),
    ],
)
def test_bad_config_fails_before_any_data_or_training(overrides, message):
    with pytest.raises(AlrunError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_settings(make(*overrides))


def test_the_dataset_picks_its_task_and_the_task_its_candidates_and_strategy():
    cfg = make("dataset=conll2003")
    assert (cfg.task.name, list(cfg.models), cfg.strategy.name) == ("ner", ["crf_ner"], "mnlp")
    cfg = make("dataset=conll2003", "strategy=token_entropy", "candidates=ner_all")
    assert cfg.strategy.name == "token_entropy" and "spacy_ner" in cfg.models
    cfg = make()
    assert (cfg.task.name, cfg.strategy.name) == ("multiclass", "diverse_margin")
    assert (cfg.loop.initial_strategy, make("dataset=conll2003").loop.initial_strategy) == (
        "typiclust",
        "random",
    )


def test_seed_study_preset():
    cfg = make("experiment=seed_study")
    assert list(cfg.dataset.labels) == ["PER", "ORG", "LOC"]
    assert dict(cfg.dataset.label_map) == {"PER": "PERSON", "LOC": "LOCATION"}
    sizes = range(cfg.loop.initial_size, cfg.loop.budget + 1, cfg.loop.round_size)
    assert {20, 70, 150} <= set(sizes) and cfg.loop.unit == "document"


def test_typo_in_top_level_key_fails_at_compose():
    with pytest.raises(Exception, match="round_sizee"):
        make("loop.round_sizee=3")


@pytest.mark.parametrize(
    ("launcher", "target"),
    [
        ("joblib", "JoblibLauncher"),
        ("submitit_local", "LocalLauncher"),
        ("submitit_slurm", "SlurmLauncher"),
        ("slurm", "SlurmLauncher"),  # ours: submitit_slurm with cluster defaults
        ("ray", "RayLauncher"),  # ours: hydra-ray-launcher's, for a running cluster
    ],
)
def test_launcher_plugins_compose(launcher, target):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(target)
    if launcher == "slurm":
        assert cfg.hydra.launcher.cpus_per_task == 2 and cfg.hydra.launcher.timeout_min == 120
        assert cfg.hydra.launcher.max_num_timeout == 3  # requeued after a time-out, resumed
    if launcher == "ray":
        ray = cfg.hydra.launcher.ray
        # null: the plugin's 75 MB default makes ray.init refuse a running cluster
        assert ray.init.address == "auto" and ray.init.object_store_memory is None
        assert ray.remote.num_cpus == 2 and ray.remote.max_calls == 1


def test_study_presets_sweep_what_their_readmes_say():
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        bbc = compose("config", overrides=["experiment=bbc_strategies"], return_hydra_config=True)
        conll = compose(
            "config", overrides=["experiment=conll_strategies"], return_hydra_config=True
        )
    assert bbc.hydra.sweeper.params == {
        "strategy": "random,least_confidence,margin,entropy,committee_vote_entropy,diverse_margin",
        "seed": "0,1,2",
    }
    assert conll.task.name == "ner" and conll.loop.unit == "sentence"
    assert conll.hydra.sweeper.params.strategy == "random,least_confidence,mnlp,token_entropy"


def test_committee_needs_two_candidates_and_search_spaces_are_checked():
    with pytest.raises(AlrunError, match="at least 2"):
        check_settings(make("strategy=committee_vote_entropy", "candidates=[tfidf_logreg]"))
    two = "candidates=[tfidf_logreg,minilm_embed_centroid]"
    parts = check_settings(make("strategy=committee_vote_entropy", two))
    assert parts.committee and set(parts.spaces) == {"tfidf_logreg"}
    assert "search" not in parts.candidates["tfidf_logreg"]
    for bad, message in (
        ("+models.tfidf_logreg.search.nope={type:int,low:1,high:2}", "nope"),
        ("models.tfidf_logreg.search.ngram_max.type=gaussian", "give {type"),
        ("selection.trials=-1", "selection.trials"),
        ("threads=0", "threads=0"),
    ):
        with pytest.raises(AlrunError, match=message):
            check_settings(make(bad, two))


def test_web_oracle_has_a_fixed_run_folder_and_guards_remote_hosts(monkeypatch):
    monkeypatch.delenv("ALRUN_WEB_TOKEN", raising=False)
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["oracle=web", "seed=3"], return_hydra_config=True)
    # the same command resumes the same annotation: no timestamp in the folder
    assert cfg.hydra.run.dir == "outputs/annotate/bbc_news-diverse_margin-seed3"
    assert cfg.oracle.host == "127.0.0.1" and cfg.oracle.token is None
    with pytest.raises(AlrunError, match=r"oracle.host=0.0.0.0 is reachable .* oracle.token"):
        check_settings(make("oracle=web", "oracle.host=0.0.0.0"))
    check_settings(make("oracle=web", "oracle.host=0.0.0.0", "oracle.token=abc"))
    with pytest.raises(AlrunError, match=r"oracle\.prot"):
        check_settings(make("oracle=web", "+oracle.prot=1"))


def test_overlap_and_reviewers_are_checked_at_start_up(monkeypatch):
    monkeypatch.delenv("ALRUN_WEB_TOKEN", raising=False)
    web = ("oracle=web",)
    for bad, message in (
        ("oracle.overlap=0", r"oracle.overlap=0: give how many annotator sessions"),
        ("oracle.overlap=two", r"oracle.overlap='two'"),
        ("oracle.overlap=2", r"oracle.overlap=2 sends .* oracle.reviewers=\[lead\]"),
        ("oracle.reviewers=[lead]", r"oracle.reviewers=\['lead'\] with oracle.overlap=1"),
    ):
        with pytest.raises(AlrunError, match=message):
            check_settings(make(*web, bad))
    with pytest.raises(AlrunError, match=r"oracle.reviewers: \['a b'\] are not session names"):
        check_settings(make(*web, "oracle.overlap=2", "oracle.reviewers=['a b']"))
    check_settings(make(*web, "oracle.overlap=3", "oracle.reviewers=[lead,sam]"))


def test_a_bad_pool_sample_fails_at_start_up():
    with pytest.raises(AlrunError, match=r"loop.pool_sample=0: give how many"):
        check_settings(make("loop.pool_sample=0"))
    check_settings(make("loop.pool_sample=5000"))


def test_a_bad_embedding_precision_fails_at_start_up():
    with pytest.raises(AlrunError, match=r"models.minilm_embed_logreg.precision='fp8': choose"):
        check_settings(make("models.minilm_embed_logreg.precision=fp8"))


@pytest.mark.parametrize(
    ("dataset", "hint"), [("bbc_news", "alrun dataset=bbc_news_hub"), ("conll2003", "CoNLL-2003")]
)
def test_missing_preset_data_says_where_to_get_it(tmp_path, dataset, hint):
    from alrun.cli import load_data

    cfg = make(f"dataset={dataset}", f"data_dir={tmp_path}", "logger=none")
    with pytest.raises(AlrunError, match="data file not found") as e:
        load_data(cfg)
    assert hint in str(e.value) and str(tmp_path) in str(e.value)


def test_hub_copy_offline_fails_clearly(monkeypatch):
    from alrun.cli import load_data

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AlrunError, match=r"'SetFit/bbc-news'.*HF_HUB_OFFLINE"):
        load_data(make("dataset=bbc_news_hub", "logger=none"))
