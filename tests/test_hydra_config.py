"""Hydra glue: the options a user sees are the conf/ YAMLs, each extending its registered schema; `--help`
names the command and lists only those options."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collapse.config import GROUPS, OPTIONS, schemas
from collapse.families import AnalyticConfig
from collapse.hydra_config import conf_dir, schema_name
from tests.helpers import compose_cfg

CONF = Path(conf_dir())


def _yaml_options(group: str) -> set[str]:
    return {p.stem for p in (CONF / group).glob("*.yaml")}


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_yaml_extends_a_registered_schema(group):
    names = {schema_name(o) for o in OPTIONS if o.group == group}
    for option in _yaml_options(group):
        defaults = yaml.safe_load((CONF / group / f"{option}.yaml").read_text())["defaults"]
        assert defaults[0].startswith("/") and defaults[0][1:] in names, (option, defaults)
    built_in = {o.name for o in OPTIONS if o.group == group and o.choice}  # a test may register more (test_regimes)
    if built_in:  # options chosen by their registered name: exactly the YAMLs
        assert built_in == _yaml_options(group)


def test_analytic_options_name_their_family_module():
    import importlib

    from collapse.families import analytic

    for name, cls in schemas("model", AnalyticConfig).items():  # implemented by collapse.families.<option>
        assert analytic.family(cls()) is importlib.import_module(f"collapse.families.{name}")


def test_schemas_are_not_group_options():
    from hydra.core.config_store import ConfigStore

    compose_cfg()  # registers the schemas
    repo = ConfigStore.instance().repo
    for group in GROUPS:
        assert not any(name.startswith("schema") for name in repo.get(group, {})), group


def test_help_names_the_command_and_lists_only_real_options():
    result = subprocess.run([sys.executable, "-m", "collapse.cli", "--help"], capture_output=True, text=True,
                            timeout=120, check=True)
    text = result.stdout
    assert text.startswith("collapse") and "schema" not in text and "Hydra" not in text.splitlines()[0]
    assert "regime: accumulate, accumulate_subsample, mix, online, replace\n" in text
    assert "sample: continuation, default\n" in text
    assert "model: categorical, gaussian, gmm, gpt2_small, linreg, pretrained, small, tiny\n" in text
    assert "README.md" in text and "generations: 5" in text
    assert "+experiment=NAME scale=smoke|cpu|paper" in text and "scale: cpu, paper, smoke\n" in text
    assert "experiment: alemohammad2024, " in text  # the presets, conf/experiment/
    assert "\ncurate: none (no keys)\n" in text and "{}" not in text  # an option without keys, said so
    assert "\nregime:\n  heal_after: 0\n  heal_generations: 0\n" in text  # replace's keys: those of every regime


def test_a_sweeps_jobs_are_the_presets_axes_times_the_command_lines():
    """`jobs` expands a sweep as Hydra's basic sweeper does, each job composed and with its run directory."""
    from collapse.hydra_config import jobs

    sweep = jobs(["+experiment=gerstgrasser2024", "scale=smoke", "seed=0,1"], multirun=True)
    assert [(type(j.config.regime).__name__, j.config.seed) for j in sweep] == [
        ("ReplaceConfig", 0), ("ReplaceConfig", 1), ("AccumulateConfig", 0), ("AccumulateConfig", 1)]
    assert [str(j.run_dir) for j in sweep] == [f"runs/gerstgrasser2024/smoke/{n}" for n in range(4)]
    [one] = jobs(["model=gaussian", "out_dir=somewhere"], multirun=False)
    assert type(one.config.model).__name__ == "GaussianConfig" and str(one.run_dir) == "somewhere"


def test_hydra_writes_nothing_into_a_run_directory():
    """No .hydra/ and no job log file from Hydra (the command writes both once the study is accepted), and
    JAX's and absl's INFO chatter (e.g. "Unable to initialize backend 'tpu'") kept out of the log."""
    text = (CONF / "config.yaml").read_text()
    assert "output_subdir: null" in text and "override hydra/job_logging: collapse" in text
    logging = yaml.safe_load((CONF / "hydra" / "job_logging" / "collapse.yaml").read_text())
    assert set(logging["handlers"]) == {"console"} and logging["root"]["handlers"] == ["console"]
    assert logging["loggers"]["jax"]["level"] == logging["loggers"]["absl"]["level"] == "WARNING"
