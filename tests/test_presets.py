"""Study presets (conf/experiment/*.yaml, `collapse -m +experiment=NAME scale=smoke|cpu|paper`): every preset
composes at every scale and every job of its sweep validates (paper scale too, without running); the runs at
smoke scale are tests/test_preset_runs.py (a file of its own, so the two halves run in parallel)."""

import functools
import json
from pathlib import Path

import pytest
import yaml

from collapse.families import AnalyticConfig, GaussianConfig
from collapse.regimes import MixConfig
from collapse.hydra_config import SCALES, conf_dir, from_hydra, register_configs
from collapse.validate import validate
from tests.helpers import compose_cfg

PRESETS = sorted(p.stem for p in (Path(conf_dir()) / "experiment").glob("*.yaml"))


def sweep_jobs(*overrides: str) -> list[list[str]]:
    """The overrides of each job `collapse -m <overrides>` launches: the preset's `hydra.sweeper.params`, then the
    command line, expanded as Hydra's basic sweeper does (a key on the command line replaces the preset's axis)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    register_configs()
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.params or {}).items()]
    [jobs] = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params + list(overrides)), None)
    return [list(job) for job in jobs]


def compose_jobs(jobs: list[list[str]]):
    """Each job's config as the command composes it (one Hydra context for all)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return [from_hydra(compose("config", overrides=job)) for job in jobs]


@functools.cache
def preset_jobs(preset: str, scale: str) -> tuple[list[list[str]], list]:
    """The job overrides and configs of `collapse -m +experiment=<preset> scale=<scale>`, one job per setting:
    jobs that differ in their seed alone are one (a seed changes nothing validation reads, and composing a job
    takes Hydra a quarter of a second)."""
    jobs, settings = [], set()
    for job in sweep_jobs(f"+experiment={preset}", f"scale={scale}"):
        setting = tuple(o for o in job if not o.startswith("seed="))
        if setting not in settings:
            settings.add(setting)
            jobs.append(job)
    return jobs, compose_jobs(jobs)


def test_the_presets_are_there():
    assert {"shumailov2024_lm", "shumailov2024_gaussian", "shumailov2024_gmm", "gerstgrasser2024",
            "gerstgrasser2024_text", "gerstgrasser2024_linreg", "kazdan2024", "alemohammad2024",
            "dohmatob2024_tails", "distillation_targets", "distillation_teacher", "distillation_fresh",
            "distillation_schedule", "human_synthetic_mix", "curation", "he2025_golden",
            "bohacek2023_healing", "watermark_price", "radioactivity"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_file_names_itself_its_scales_and_costs(preset):
    text = (Path(conf_dir()) / "experiment" / f"{preset}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    body = yaml.safe_load(text)
    assert body["defaults"][0] == {"/scale": "cpu"}
    assert body["out_dir"] == f"runs/{preset}/${{scale}}"
    for scale in SCALES:  # the header states each scale's sizes and expected cost
        assert f"#   {scale}" in text, scale
    assert f"+experiment={preset} scale=cpu" in text


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_job_of_every_preset_validates(preset, scale):
    jobs, configs = preset_jobs(preset, scale)
    for job, cfg in zip(jobs, configs):
        validate(cfg)  # raises ConfigError naming the key
        assert cfg.out_dir == f"runs/{preset}/{scale}", job
    if scale == "smoke":  # a healing preset: one generation of collapse, one of healing
        assert all(cfg.generations <= 2 + (cfg.regime.heal_generations > 0)
                   for cfg in configs if not isinstance(cfg.model, AnalyticConfig))
    assert len({json.dumps(job) for job in jobs}) == len(jobs)


def test_sweep_axes_and_scales():
    """Spot checks of what the presets promise (the issue's axes)."""
    lm = preset_jobs("shumailov2024_lm", "paper")[1]
    assert {(c.regime.human_fraction, c.sample.beam_size) for c in lm} == {(0, 0), (0, 5), (0.1, 0), (0.1, 5)}
    assert {(c.model.d_model, c.data.name, c.data.seq_len, c.sample.prompt_len, c.generations) for c in lm} == {
        (768, "wikitext", 128, 64, 10)}
    mix = preset_jobs("human_synthetic_mix", "cpu")[1]
    assert len(mix) == 18 and {type(c.regime).__name__ for c in mix} == {
        "MixConfig", "AccumulateConfig", "AccumulateSubsampleConfig"}
    assert {c.regime.human_fraction for c in mix} == {0, 0.05, 0.1, 0.25, 0.5, 1}
    fresh = preset_jobs("alemohammad2024", "cpu")[1]
    assert all(isinstance(c.regime, MixConfig) and c.regime.fresh for c in fresh) and len(fresh) == 24
    assert {(c.sample.temperature, c.sample.top_p) for c in fresh} == {(1.0, 1.0), (1.0, 0.9), (0.8, 1.0), (0.8, 0.9)}
    targets = preset_jobs("distillation_targets", "cpu")[1]  # results/distillation's runs: 3 seeds, 8 generations
    assert len(targets) == 6 and len(seeded := sweep_jobs("+experiment=distillation_targets", "scale=cpu")) == 18
    assert {o for job in seeded for o in job if o.startswith("seed=")} == {"seed=0", "seed=1", "seed=2"}
    assert {(c.generations, c.replicates, c.data.n_train, c.train.tokens) for c in targets} == {(8, 1, 1024, 262144)}
    gauss = preset_jobs("shumailov2024_gaussian", "smoke")[1]
    assert [c.model.estimator for c in gauss] == ["mle", "unbiased"] and isinstance(gauss[0].model, GaussianConfig)
    # a key given on the command line replaces the preset's axis (composed first without the axes)
    assert len(sweep_jobs("+experiment=kazdan2024", "scale=smoke", "regime=accumulate")) == 1
    share = compose_jobs(sweep_jobs("+experiment=human_synthetic_mix", "scale=smoke", "regime.human_fraction=0.5"))
    assert [(type(c.regime).__name__, c.regime.human_fraction) for c in share] == [
        ("MixConfig", 0.5), ("AccumulateConfig", 0.5), ("AccumulateSubsampleConfig", 0.5)]


def test_scale_needs_a_preset():
    """`scale` comes with a preset (its defaults list holds it); alone it matches nothing and is refused."""
    with pytest.raises(Exception, match="scale"):
        compose_cfg("scale=cpu")


def test_a_presets_single_run_goes_beside_its_sweep_never_above_it():
    """The run directory of `collapse +experiment=NAME ...` (no -m) is <out_dir>/<study id>: the preset's folder
    holds its sweep's numbered jobs, and a report of the folder must not pool a parent with a job of its own
    study; without a preset, out_dir is the run directory itself."""
    from collapse.config import study_id
    from collapse.hydra_config import jobs

    [job] = jobs(["+experiment=kazdan2024", "scale=smoke", "regime=replace"], multirun=False)
    assert job.run_dir == Path("runs/kazdan2024/smoke") / study_id(job.config)
    [plain] = jobs(["out_dir=somewhere"], multirun=False)
    assert plain.run_dir == Path("somewhere")
