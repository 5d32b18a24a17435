"""Membership tests without a watermark (collapse.membership, collapse.stats' rank tests, `collapse-audit
membership|palimpsest`): scipy's numbers, exact nulls, power where a model learned, refusals."""

import io
from contextlib import redirect_stdout

import numpy as np
import pytest
from scipy import stats

from collapse import audit, membership
from collapse.config import SampleConfig, TrainConfig
from collapse.curation import VerifierCurateConfig
from collapse.data import GrammarConfig
from collapse.errors import ConfigError
from collapse.stats import rank_correlation, rank_sum
from collapse.train import batch_order
from tests.helpers import tiny_config


def test_rank_tests_are_scipys_with_ties():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 6, 40).astype(float), rng.integers(0, 7, 55).astype(float)  # many ties
    t, ref = rank_sum(x, y), stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic", use_continuity=False)
    assert t.statistic == ref.statistic and 10**t.log10_p == pytest.approx(ref.pvalue, rel=1e-9)
    assert rank_sum([3.0, 4.0], [1.0, 2.0]).statistic == 4  # every released row above every withheld one
    a = rng.normal(size=60)
    b = np.repeat(np.arange(15), 4)  # positions: a batch of 4 rows shares its step
    t, ref = rank_correlation(a, b), stats.spearmanr(a, b, alternative="greater")
    assert t.statistic == pytest.approx(ref.statistic, abs=1e-12) and 10**t.log10_p == pytest.approx(ref.pvalue, rel=1e-9)


def test_p_values_are_uniform_under_the_randomisation_nulls():
    """Both nulls hold by randomisation: a fair split of fixed, tied scores into released and withheld, and a
    fixed score against a fresh batch order (`collapse.train.batch_order`, its last partial batch dropped). 400
    p-values each: a KS test does not reject uniformity at the 1 % level."""
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=200), 1)  # ties, as per-sequence log-likelihoods of short sequences have
    split = [membership.released_vs_withheld(*np.split(rng.permutation(scores), [96])) for _ in range(400)]
    order = []
    for _ in range(400):
        position = np.full(200, -1)
        position[batch_order(rng, 200, 16, 12)] = np.arange(12)[:, None]
        order.append(membership.palimpsest(scores, position))
    for tests in (split, order):
        assert stats.kstest([10**t.log10_p for t in tests], "uniform").pvalue > 0.01


def _p(argv) -> list[float]:
    """log10 p of each (generation, replicate) line `collapse-audit` prints."""
    out = io.StringIO()
    with redirect_stdout(out):
        audit.main(argv)
    return [float(line.split("log10 p")[1].split()[0]) for line in out.getvalue().splitlines()
            if line.startswith("generation") and "log10 p" in line]


def test_a_student_of_the_released_rows_is_told_from_a_model_that_never_read_them(tmp_path):
    """Generation 0 releases 128 samples and withholds 128; generation 1 trains 32 epochs on the released ones
    alone (share 1). Generation 0 drew both halves alike (the null: one p-value each, above 1e-3 but for 0.1 %
    of draws); its student gives the released rows higher log-likelihood at p < 1e-3 in both replicates (measured
    here: log10 p -7.6 and -11.4). The study's membership rows are the same tests."""
    from collapse.run import loop

    data = GrammarConfig(vocab_size=64, n_states=4, n_train=128, n_valid=16, n_test=32, seq_len=16)
    cfg = tiny_config(data=data, train=TrainConfig(batch_size=16, epochs=32, log_every=100), replicates=2,
                      sample=SampleConfig(batch_size=256, withheld=128))
    store = loop.run(cfg, tmp_path / "run")
    gen0, gen1 = (_p(["membership", str(tmp_path / "run"), "--source", str(tmp_path / "run"), "--generation", g])
                  for g in ("0", "1"))
    assert min(gen0) > -3 and max(gen1) < -3
    rows = {(row["generation"], row["replicate"]): row["value"] for row in store.read_metrics()
            if row["metric"] == "membership_log10p"}  # the study's own rows: each generation on its parent's rows
    assert [rows[1, r] for r in range(2)] == pytest.approx(gen1, abs=1e-3)
    assert [rows[0, r] for r in range(2)] == pytest.approx(gen0, abs=1e-3)


def test_the_palimpsest_of_a_one_pass_model_is_in_its_training_order(tmp_path, capsys):
    """One pass in batches of 8 over 1024 rows at a constant learning rate: the model fits its last batches
    best. Less an independent model's log-likelihood (the reference, Kuditipudi et al.'s), the correlation with
    the order reads z = 4.8 and 3.4 in the two replicates here; the test asserts their mean above 2.33 (p < 0.01,
    about 2.5 standard deviations below the measured mean). The independent model itself reads nothing (the null,
    above 1e-3). A source that took more than one pass is refused naming train.epochs, and the membership test of
a source that withheld nothing names the file it lacks."""
    from collapse.run import loop

    data = GrammarConfig(vocab_size=256, n_states=4, n_train=1024, n_valid=16, n_test=32, seq_len=16)
    train = TrainConfig(batch_size=8, epochs=1, lr=1e-2, min_lr_ratio=1.0, log_every=100)
    for seed, R in ((0, 2), (1, 1)):
        loop.run(tiny_config(data=data, train=train, generations=1, seed=seed, replicates=R), tmp_path / f"s{seed}")
    source, other = str(tmp_path / "s0"), str(tmp_path / "s1")
    out = io.StringIO()
    with redirect_stdout(out):
        audit.main(["palimpsest", source, "--source", source, "--reference", other])
    z = [float(line.split(" z ")[1].split()[0]) for line in out.getvalue().splitlines() if "rho" in line]
    assert len(z) == 2 and np.mean(z) > 2.33
    assert _p(["palimpsest", other, "--source", source])[0] > -3
    with pytest.raises(SystemExit) as stop:  # the membership test on a source that withheld nothing
        audit.main(["membership", source, "--source", source])
    assert stop.value.code == 2 and "withheld.npy" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="train.epochs"):
        membership.training_order(tiny_config(data=data, train=TrainConfig(epochs=2)), 0, 0, 1024)


CONTINUING = dict(mode="continuation", prompt_len=4, withheld=8)


@pytest.mark.parametrize("overrides,key", [
    (dict(sample=SampleConfig(withheld=-1)), "sample.withheld"),
    (dict(sample=SampleConfig(withheld=8), curate=VerifierCurateConfig()), "sample.withheld"),
])
def test_meaningless_withholding_is_refused(overrides, key):
    """Negative counts; a curated corpus, which is not a draw of the model as the withheld rows are. (Decoding
    that makes a continuation a function of its prompt is allowed: the prompts themselves are exchangeable.)"""
    from collapse.validate import validate

    with pytest.raises(ConfigError, match=key):
        validate(tiny_config(**overrides))


def test_withheld_prompts_are_the_rows_the_corpus_left(tmp_path):
    """Continuation mode: the withheld rows' prompts are distinct train rows the corpus's prompts did not use (so
    both together are one draw without replacement), and a corpus and withheld rows that would not fit the train
    split are refused before any compute, naming sample.withheld."""
    from types import SimpleNamespace

    from collapse.rng import Phase, key_for
    from collapse.run import loop
    from collapse.run.synthesize import prompt_index, withheld_prompts

    study = SimpleNamespace(n_train=64, n=40, cfg=tiny_config(sample=SampleConfig(withheld=24, mode="continuation")),
                            key=lambda g, r, phase: key_for(0, g, r, phase))
    corpus, withheld = prompt_index(study, 1, 0, 40), withheld_prompts(study, 1, 0)
    assert len(set(withheld)) == 24 and not set(withheld) & set(corpus) and Phase.WITHHELD != Phase.SAMPLE
    with pytest.raises(ConfigError, match="sample.withheld"):
        loop.run(tiny_config(sample=SampleConfig(**CONTINUING)), tmp_path / "run")  # 64 + 8 rows > 64


def test_a_suspect_drawn_from_the_sources_keys_is_refused(tmp_path):
    """Another directory with the source's seed draws its samples and order from the source's keys."""
    from collapse.audit_runs import apart
    from collapse.errors import DataError
    from collapse.store import RunDir

    a, b = RunDir(tmp_path / "a"), RunDir(tmp_path / "b")
    with pytest.raises(DataError, match="keys"):
        apart(b, tiny_config(seed=3), a, tiny_config(seed=3))
    apart(b, tiny_config(seed=4), a, tiny_config(seed=3))  # another seed
    apart(a, tiny_config(seed=3), a, tiny_config(seed=3))  # the same run: its later generations are suspects
