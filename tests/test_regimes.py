from dataclasses import dataclass

import numpy as np
import pytest

from collapse import regimes
from collapse.errors import ConfigError
from collapse.regimes import AccumulateConfig, AccumulateSubsampleConfig, MixConfig, RegimeConfig, ReplaceConfig

NH, NS, T = 40, 45, 5


def pools(generation):
    """Human rows hold -1 - i in every column, synthetic rows of generation j hold 1000 * j + i."""
    human = -1 - np.arange(NH)[:, None] * np.ones(T, int)
    fresh = -1 - (NH + np.arange(100))[:, None] * np.ones(T, int)
    synthetic = [(1000 * j + np.arange(NS))[:, None] * np.ones(T, int) for j in range(generation)]
    return human, fresh, synthetic


def check_provenance(ts, human, fresh, synthetic):
    """Every row's (provenance, index) points at exactly the tokens it holds."""
    for tokens, prov, index in zip(ts.tokens, ts.provenance, ts.index):
        if prov == -1:
            source = human[index] if index < NH else fresh[index - NH]
        else:
            source = synthetic[prov][index]
        np.testing.assert_array_equal(tokens, source)


REGIMES = [ReplaceConfig(), AccumulateConfig(), AccumulateSubsampleConfig(), AccumulateSubsampleConfig(size=25),
           MixConfig(), MixConfig(human_fraction=0.5, size=20), MixConfig(human_fraction=0.25, fresh=True)]


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: f"{r.name}{vars(r)}")
@pytest.mark.parametrize("generation", [0, 1, 3])
def test_sizes_and_provenance(regime, generation):
    human, fresh, synthetic = pools(generation)
    ts = regimes.training_set(regime, generation, human, fresh, synthetic, np.random.default_rng(0))
    assert len(ts.tokens) == len(ts.provenance) == len(ts.index)
    assert len(ts.tokens) == regimes.training_size(regime, generation, NH, NS)
    check_provenance(ts, human, fresh, synthetic)
    counts = ts.counts()
    if generation == 0:
        assert counts == {"human": NH}
    elif isinstance(regime, ReplaceConfig):
        assert counts == {f"gen_{generation - 1}": NS}
    elif isinstance(regime, AccumulateConfig):
        assert counts == {"human": NH, **{f"gen_{j}": NS for j in range(generation)}}
    elif isinstance(regime, MixConfig):
        n_h, n_s = regime.counts(NH)
        assert counts == {"human": n_h, f"gen_{generation - 1}": n_s}
        assert n_h == round(regime.human_fraction * (regime.size or NH))
        if regime.fresh:  # never-seen human rows, a new slice every generation
            assert (ts.index[ts.provenance == -1] >= NH + (generation - 1) * n_h).all()
            assert (ts.index[ts.provenance == -1] < NH + generation * n_h).all()
        else:
            assert (ts.index[ts.provenance == -1] < NH).all()
    else:  # accumulate_subsample: distinct rows of the accumulated pool
        keys = set(zip(ts.provenance.tolist(), ts.index.tolist()))
        assert len(keys) == len(ts.tokens)


def test_subsample_is_uniform_over_the_pool():
    """Each pool row is picked with probability size / pool: check the human share, a hypergeometric count."""
    regime, generation = AccumulateSubsampleConfig(size=35), 3
    human, fresh, synthetic = pools(generation)
    pool = NH + generation * NS
    draws = [regimes.training_set(regime, generation, human, fresh, synthetic, np.random.default_rng(s)).counts()["human"]
             for s in range(400)]
    mean = 35 * NH / pool
    var = 35 * (NH / pool) * (1 - NH / pool) * (pool - 35) / (pool - 1)
    assert abs(np.mean(draws) - mean) < 4.5 * np.sqrt(var / len(draws))


def test_fresh_needed_and_size_checks():
    assert MixConfig(human_fraction=0.25, fresh=True).fresh_per_generation(40) == 10
    assert regimes.fresh_needed(MixConfig(human_fraction=0.25, fresh=True), 5, 40) == 10 * 4
    assert regimes.fresh_needed(MixConfig(human_fraction=0.25), 5, 40) == 0
    assert regimes.fresh_needed(MixConfig(human_fraction=0.5, size=20, fresh=True), 3, 40) == 10 * 2
    with pytest.raises(ConfigError, match="train.batch_size"):
        regimes.check_sizes(ReplaceConfig(), 3, 100, 20, batch_size=32)
    with pytest.raises(ConfigError, match="regime.size"):
        regimes.check_sizes(MixConfig(human_fraction=0.1, size=100), 3, 100, 50, batch_size=8)
    with pytest.raises(ConfigError, match="regime.size"):
        regimes.check_sizes(AccumulateSubsampleConfig(size=500), 3, 100, 50, batch_size=8)
    regimes.check_sizes(AccumulateConfig(), 3, 100, 50, batch_size=64)


def test_check_fresh_refuses_an_exhausted_reserve_with_the_numbers():
    regime = MixConfig(human_fraction=0.1, fresh=True)
    regimes.check_fresh(regime, 5, 1434, 4 * 143, 0.1)  # exactly enough: 143 per generation, 4 generations
    with pytest.raises(ConfigError) as err:
        regimes.check_fresh(regime, 10, 1434, 4 * 143, 0.1)
    assert err.value.key == "data.fresh_fraction"
    assert str(err.value) == ("data.fresh_fraction: needs 1287 fresh human sequences over 10 generations (143 per "
                              "generation) but the reserve data.fresh_fraction=0.1 holds 572; raise "
                              "data.fresh_fraction or lower generations")
    with pytest.raises(ConfigError, match="needs 143 fresh .* data.fresh_fraction=0.0 holds 0"):
        regimes.check_fresh(regime, 2, 1434, 0, 0.0)
    regimes.check_fresh(MixConfig(human_fraction=0.1), 10, 1434, 0, 0.0)  # fresh=false needs no reserve
    regimes.check_fresh(ReplaceConfig(), 10, 1434, 0, 0.0)


def test_fresh_rows_of_each_generation_are_their_own_slice():
    """Generation g takes reserve rows (g-1)*n_h .. g*n_h: disjoint from train and from other generations."""
    regime = MixConfig(human_fraction=0.25, fresh=True)
    n_h = regime.fresh_per_generation(NH)
    seen = set()
    for g in range(1, 5):
        human, fresh, synthetic = pools(g)
        ts = regimes.training_set(regime, g, human, fresh, synthetic, np.random.default_rng(g))
        rows = ts.index[ts.provenance == -1]
        np.testing.assert_array_equal(rows, NH + np.arange((g - 1) * n_h, g * n_h))
        assert seen.isdisjoint(rows.tolist())
        seen |= set(rows.tolist())


@pytest.mark.parametrize("regime", [AccumulateConfig(human_fraction=h) for h in (0, 0.1, 0.5, 0.9, 1)]
                         + [AccumulateSubsampleConfig(human_fraction=h, size=s) for h in (0, 0.25, 1) for s in (0, 30)]
                         + [MixConfig(human_fraction=h) for h in (0, 1)], ids=lambda r: f"{r.name}{vars(r)}")
@pytest.mark.parametrize("generation", [1, 3])
def test_human_share_is_the_same_number_under_every_regime(regime, generation):
    """`human_fraction` h: the human share of every training set of generation >= 1, whichever synthetic data
    the regime keeps (mix: the newest generation's; accumulate_subsample: a subset of all; accumulate: all)."""
    human, fresh, synthetic = pools(generation)
    ts = regimes.training_set(regime, generation, human, fresh, synthetic, np.random.default_rng(0))
    check_provenance(ts, human, fresh, synthetic)
    assert len(ts.tokens) == regimes.training_size(regime, generation, NH, NS)
    is_human = ts.provenance == -1
    h = regime.human_fraction
    assert abs(is_human.mean() - h) <= 1 / len(ts.tokens)
    if isinstance(regime, AccumulateConfig) and h < 1:  # every sample so far, human rows repeated evenly
        assert (~is_human).sum() == generation * NS
        uses = np.bincount(ts.index[is_human], minlength=NH)
        assert uses.max() - uses.min() <= 1
    if isinstance(regime, AccumulateSubsampleConfig):  # distinct rows; synthetic ones from every generation
        assert len(set(zip(ts.provenance.tolist(), ts.index.tolist()))) == len(ts.tokens)
        assert len(ts.tokens) == (regime.size or NH)
        if h == 0 and generation == 3:
            assert set(ts.provenance.tolist()) == {0, 1, 2}


def test_human_share_sizes_are_checked():
    with pytest.raises(ConfigError, match="regime.size"):
        regimes.check_sizes(AccumulateSubsampleConfig(human_fraction=0.0, size=NS + 1), 3, NH, NS, 1)
    with pytest.raises(ConfigError, match="regime.size"):
        regimes.check_sizes(AccumulateSubsampleConfig(human_fraction=1.0, size=NH + 1), 3, NH, NS, 1)
    regimes.check_sizes(AccumulateSubsampleConfig(human_fraction=0.5, size=NH), 3, NH, NS, 1)


# A new regime is one module: its schema, validation and behaviour, registered under its option name. This one
# trains generation g on the first half of the human train split and the first half of generation g - 1's samples.
@dataclass(frozen=True)
class HalvesConfig(RegimeConfig, option="halves_for_a_test"):
    share: float = 0.5  # the human share

    def validate(self) -> None:
        if not 0 <= self.share <= 1:
            raise ConfigError("regime.share", f"must be in [0, 1], got {self.share}")

    def training_size(self, g, n_human, n_synthetic):
        return round(self.share * n_human) + n_synthetic - round(self.share * n_synthetic)

    def build(self, g, human, fresh, synthetic, rng):
        n_h, n_s = round(self.share * len(human)), len(synthetic[-1]) - round(self.share * len(synthetic[-1]))
        return regimes.base.concat([regimes.base.take(human, -1, np.arange(n_h)),
                                    regimes.base.take(synthetic[-1], g - 1, np.arange(n_s))])


def test_a_new_regime_is_one_registered_module(tmp_path):
    """Registered by its class alone: listed among the options, written to config.json by name and read back,
    validated, checked for sizes and run by the loop; refused by the analytic families, which need its form."""
    from collapse.config import Config, choices, from_dict, to_dict
    from collapse.families import GaussianConfig
    from collapse.run import loop
    from collapse.validate import validate
    from tests.helpers import tiny_config

    assert "halves_for_a_test" in choices("regime")
    cfg = tiny_config(regime=HalvesConfig())
    assert to_dict(cfg)["regime"] == {"_option": "halves_for_a_test", "share": 0.5}
    assert from_dict(to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="regime.share"):
        validate(tiny_config(regime=HalvesConfig(share=2.0)))
    with pytest.raises(ConfigError, match="regime: regime=halves_for_a_test has no form for the analytic"):
        validate(Config(model=GaussianConfig(), regime=HalvesConfig()))
    loop.run(cfg, tmp_path)
    origins = np.load(tmp_path / "gen_001" / "rep_00" / "train_provenance.npy")
    index = np.load(tmp_path / "gen_001" / "rep_00" / "train_index.npy")
    np.testing.assert_array_equal(origins, [-1] * 32 + [0] * 32)
    np.testing.assert_array_equal(index, np.r_[np.arange(32), np.arange(32)])


def test_human_weight_weights_each_rows_loss(tmp_path):
    """regime.human_weight on the transformer: human rows weigh w·n/n_h in the loss, synthetic (1 − w)·n/n_s
    (mean 1; the manifest records both), and the weighted study trains differently from the unweighted one."""
    import json

    from collapse.regimes.mix import golden_weight
    from collapse.run import loop
    from tests.helpers import tiny_config

    weights = MixConfig(human_fraction=0.25, human_weight="golden").loss_weights(np.r_[np.full(16, -1), np.zeros(48)])
    w = golden_weight(16 / 48)
    np.testing.assert_allclose(weights[:16], w * 64 / 16, rtol=1e-6)
    np.testing.assert_allclose(weights[16:], (1 - w) * 64 / 48, rtol=1e-6)
    assert weights.mean() == pytest.approx(1.0)
    assert MixConfig(human_fraction=0.25).loss_weights(np.zeros(4)) is None  # unweighted: every row 1

    losses = {}
    for name, weight in (("plain", ""), ("golden", "golden")):
        loop.run(tiny_config(regime=MixConfig(human_fraction=0.25, human_weight=weight)), tmp_path / name)
        losses[name] = np.load(tmp_path / name / "gen_001" / "train_loss.npy")
    manifest = json.loads((tmp_path / "golden" / "gen_001" / "manifest.json").read_text())["replicates"][0]
    assert manifest["loss_weight"] == pytest.approx({"human": w * 4, "synthetic": (1 - w) * 64 / 48})
    np.testing.assert_array_equal(np.load(tmp_path / "golden" / "gen_000" / "train_loss.npy"),
                                  np.load(tmp_path / "plain" / "gen_000" / "train_loss.npy"))  # generation 0: human
    assert not np.allclose(losses["golden"], losses["plain"])


@pytest.mark.parametrize("regime", [ReplaceConfig(heal_after=1, heal_generations=2),
                                    MixConfig(human_fraction=0.25, fresh=True, heal_after=1, heal_generations=2)],
                         ids=["replace", "mix-fresh"])
def test_healing_generations_train_on_the_human_split_then_the_regime_resumes(regime):
    """heal_after=1, heal_generations=2: generations 2 and 3 hold the whole human train split (as generation 0
    does), generation 4 is the regime's again, its synthetic rows from generation 3 (the healed model's)."""
    for g in range(5):
        human, fresh, synthetic = pools(g)
        ts = regimes.training_set(regime, g, human, fresh, synthetic, np.random.default_rng(0))
        check_provenance(ts, human, fresh, synthetic)
        assert regime.heals(g) == (g in (2, 3))
        assert len(ts.tokens) == regimes.training_size(regime, g, NH, NS)
        if g in (0, 2, 3):
            np.testing.assert_array_equal(ts.provenance, -1)
            np.testing.assert_array_equal(ts.index, np.arange(NH))
        else:
            assert set(ts.provenance[ts.provenance >= 0]) == {g - 1}
    if getattr(regime, "fresh", False):  # generation 4 takes its own fresh slice (healing used none)
        assert ts.index[ts.provenance < 0].min() == NH + 3 * regime.counts(NH)[0]


@pytest.mark.parametrize("overrides, key, match", [
    (dict(regime=ReplaceConfig(heal_after=1, heal_generations=2), generations=3), "regime.heal_generations",
     "heals generations 2..3, past the last generation 2: raise generations to >= 4"),
    (dict(regime=ReplaceConfig(heal_generations=1), generations=3), "regime.heal_after", "got 0"),
    (dict(regime=ReplaceConfig(heal_after=1), generations=3), "regime.heal_generations", "got 0"),
    (dict(regime=ReplaceConfig(heal_after=1, heal_generations=1), generations=3), "train.init",
     "from scratch a healing generation never sees the collapsed model"),
])
def test_healing_that_cannot_mean_anything_is_refused(overrides, key, match):
    from collapse.validate import validate
    from tests.helpers import tiny_config

    with pytest.raises(ConfigError, match=match) as e:
        validate(tiny_config(**overrides))
    assert e.value.key == key


def test_healing_an_analytic_family_or_with_teacher_labels_on_human_rows_is_refused():
    import dataclasses

    from collapse.config import Config
    from collapse.families import GaussianConfig
    from collapse.validate import validate
    from tests.helpers import tiny_config

    heal = ReplaceConfig(heal_after=1, heal_generations=1)
    with pytest.raises(ConfigError, match="generation 0 again") as e:
        validate(Config(model=GaussianConfig(), regime=heal, generations=3, compilation_cache=""))
    assert e.value.key == "regime.heal_generations"
    train = dataclasses.replace(tiny_config().train, init="previous", target="soft", distill_on="both")
    with pytest.raises(ConfigError, match="healing generations would learn from a model") as e:
        validate(tiny_config(regime=heal, generations=3, train=train))
    assert e.value.key == "train.distill_on"


def test_recovery_is_the_share_of_the_collapse_undone():
    """(m(collapsed) - m(healed)) / (m(collapsed) - m(generation 0)), per replicate, by hand."""
    from collapse.metrics.score import recoveries

    rows = lambda values: [{"replicate": r, "metric": m, "value": v}  # noqa: E731
                           for r, named in enumerate(values) for m, v in named.items()]
    start = rows([{"kl_true": 0.1, "distinct_2": 0.5}, {"kl_true": 0.2, "distinct_2": 0.4}])
    collapsed = rows([{"kl_true": 0.5, "distinct_2": 0.3}, {"kl_true": 0.2, "distinct_2": 0.2}])
    healed = [{"kl_true": 0.2, "distinct_2": 0.35, "vendi": 3.0}, {"kl_true": 0.3, "distinct_2": 0.5}]
    got = recoveries(healed, start, collapsed)
    assert got[0] == pytest.approx({"recovery_kl_true": 0.75, "recovery_distinct_2": 0.25})
    # replicate 1: kl_true never moved (no collapse to undo: no row); distinct_2 overshot generation 0
    assert got[1] == pytest.approx({"recovery_distinct_2": 1.5})


def test_a_healing_study_records_its_healing_and_recovery(tmp_path):
    """A tiny study, heal_after=1, heal_generations=1: generation 2 trains on human rows only from generation
    1's parameters, its manifest says so, and its recovery rows are the formula over the metric rows."""
    import dataclasses
    import json

    from collapse.run import loop
    from tests.helpers import tiny_config

    cfg = tiny_config(regime=ReplaceConfig(heal_after=1, heal_generations=1), generations=3,
                      train=dataclasses.replace(tiny_config().train, init="previous"))
    loop.run(cfg, tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "gen_002" / "rep_00" / "train_provenance.npy"), -1)
    np.testing.assert_array_equal(np.load(tmp_path / "gen_001" / "rep_00" / "train_provenance.npy"), 0)
    manifests = [json.loads((tmp_path / f"gen_{g:03d}" / "manifest.json").read_text()) for g in range(3)]
    assert [m.get("healing", False) for m in manifests] == [False, False, True]
    value = {(r["generation"], r["metric"]): r["value"]
             for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())}
    recovered = {m for g, m in value if m.startswith("recovery_")}
    assert {"recovery_kl_true", "recovery_ppl_human_test", "recovery_distinct_2"} <= recovered
    assert all(g == 2 for g, m in value if m.startswith("recovery_"))
    for m in recovered:
        base = m.removeprefix("recovery_")
        collapsed, healed, start = (value[(g, base)] for g in (1, 2, 0))
        assert value[(2, m)] == pytest.approx((collapsed - healed) / (collapsed - start))
    assert "heal_after" in json.loads((tmp_path / "config.json").read_text())["regime"]


def test_the_epochs_budget_gives_the_documented_steps_per_generation():
    """docs/regimes.md's table: train.tokens=0 trains train.epochs passes over each generation's training set
    (accumulate's grows), train.tokens > 0 the same steps every generation."""
    from pathlib import Path

    from collapse.config import TrainConfig
    from collapse.train import total_steps

    text = (Path(__file__).parent.parent / "docs" / "regimes.md").read_text()
    table = {line.split("|")[1].strip(): [int(x) for x in line.split("|")[2:6]]
             for line in text.splitlines() if line.startswith(("| replace", "| accumulate", "| mix"))}
    epochs, fixed = TrainConfig(batch_size=16, epochs=2, tokens=0), TrainConfig(batch_size=16, tokens=8192)
    for name, regime in (("replace", ReplaceConfig()), ("accumulate", AccumulateConfig()),
                         ("accumulate_subsample", AccumulateSubsampleConfig()),
                         ("mix (`human_fraction=0.5`)", MixConfig(human_fraction=0.5))):
        sizes = [regimes.training_size(regime, g, 64, 64) for g in range(4)]
        assert [total_steps(n, 16, epochs) for n in sizes] == table[name], name
        assert [total_steps(n, 64, fixed) for n in sizes] == [8] * 4
