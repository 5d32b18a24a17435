"""Watermarked sampling (green list, Gumbel rule) against NumPy and closed forms; detection's p-values exact,
valid under the null, and anti-conservative without deduplication."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from collapse import sample as sampler
from collapse import watermark
from collapse.errors import ConfigError
from collapse.watermark import Watermark
from tests.helpers import Z, tiny_config

V = 16
GREEN = Watermark("green_list", key=7, context=2, gamma=0.25, delta=2.0)
GUMBEL = Watermark("gumbel", key=7, context=2)


def _keys(mark, window_BC):
    return [_fold(mark.key, w) for w in np.asarray(window_BC)]


def _fold(key, window):
    k = jax.random.key(key)
    for t in window:
        k = jax.random.fold_in(k, int(t))
    return k


def _windows(B, seed=0):
    return np.random.default_rng(seed).integers(0, V + 1, (B, 2)).astype(np.int32)  # BOS = V may appear


def test_the_green_list_is_the_head_of_the_windows_permutation():
    """NumPy's stable argsort of the window's random words; the rule on words with many ties too."""
    window_BC = _windows(32)
    mask_BV = np.asarray(watermark.green_mask(GREEN, jnp.asarray(window_BC), V))
    for mask_V, key in zip(mask_BV, _keys(GREEN, window_BC)):
        head = np.argsort(np.asarray(jax.random.bits(key, (V,))), kind="stable")[:GREEN.n_green(V)]
        assert set(np.flatnonzero(mask_V)) == set(head.tolist())
    assert (mask_BV.sum(1) == 4).all()
    for words_V in np.random.default_rng(0).integers(0, 4, (32, V)):  # many ties: the first of the tied by index
        for n in (1, 4, 9):
            mask_V = np.asarray(watermark.head_mask(jnp.asarray(words_V, jnp.uint32), n))
            assert set(np.flatnonzero(mask_V)) == set(np.argsort(words_V, kind="stable")[:n].tolist())


def test_green_list_sampling_is_plain_sampling_of_the_raised_logits_token_for_token():
    window_BC = _windows(64, 1)
    logits_BV = jax.random.normal(jax.random.key(2), (64, V))
    raised_BV = np.asarray(logits_BV) + 2.0 * np.asarray(watermark.green_mask(GREEN, jnp.asarray(window_BC), V))
    for t, k, p in ((1.0, 0, 1.0), (0.7, 5, 1.0), (1.0, 0, 0.8), (0.0, 0, 1.0)):
        marked = sampler.choose(logits_BV, jax.random.key(3), t, k, p, V, GREEN, jnp.asarray(window_BC))
        plain = sampler.choose(jnp.asarray(raised_BV), jax.random.key(3), t, k, p, V)
        np.testing.assert_array_equal(marked, plain)


def test_the_gumbel_rule_is_argmax_of_r_to_the_one_over_p_token_for_token():
    """NumPy's r ** (1 / p) over the tokens top-k and top-p keep, the others excluded."""
    window_BC = _windows(64, 2)
    logits_BV = jax.random.normal(jax.random.key(4), (64, V)) * 2
    r_BV = np.stack([np.asarray(jax.random.uniform(k, (V,))) for k in _keys(GUMBEL, window_BC)])
    for t, top_k, top_p in ((1.0, 0, 1.0), (0.8, 6, 1.0), (1.0, 0, 0.7)):
        got = np.asarray(sampler.choose(logits_BV, jax.random.key(0), t, top_k, top_p, V, GUMBEL,
                                        jnp.asarray(window_BC)))
        z_BV = np.asarray(logits_BV, np.float64) / t
        order_BV = np.argsort(-z_BV, axis=1)
        kept_BV = np.zeros_like(z_BV, bool)
        for b in range(64):
            p_sorted = special.softmax(z_BV[b, order_BV[b]][:top_k or V])
            before = np.cumsum(p_sorted) - p_sorted
            kept_BV[b, order_BV[b][:top_k or V][(before < top_p) | (top_p >= 1)]] = True
        p_BV = np.where(kept_BV, special.softmax(np.where(kept_BV, z_BV, -np.inf), axis=1), 0)
        with np.errstate(divide="ignore"):
            want = np.argmax(np.where(kept_BV, r_BV ** (1 / p_BV), -1), axis=1)
        np.testing.assert_array_equal(got, want)


def test_green_share_of_uniform_logits_is_the_closed_form():
    """Uniform logits: P(green) = g e^delta / (g e^delta + 1 - g), g = floor(gamma V) / V."""
    B = 4000
    window_BC = jnp.asarray(_windows(B, 3))
    token_B = sampler.choose(jnp.zeros((B, V)), jax.random.key(5), 1.0, 0, 1.0, V, GREEN, window_BC)
    green_B = np.asarray(watermark.green_mask(GREEN, window_BC, V))[np.arange(B), np.asarray(token_B)]
    g = 4 / V
    want = g * math.e ** 2 / (g * math.e ** 2 + 1 - g)
    assert abs(green_B.mean() - want) < Z * math.sqrt(want * (1 - want) / B)


def test_the_gumbel_rule_draws_from_p_over_keys():
    p_V = np.array([0.5, 0.3, 0.15, 0.05])
    B = 8000
    token_B = np.asarray(sampler.choose(jnp.log(jnp.broadcast_to(p_V, (B, 4))), jax.random.key(0), 1.0, 0, 1.0, 4,
                                        GUMBEL, jnp.asarray(_windows(B, 4) % 4)))
    # windows repeat (4^2 of them), so draws are independent only across distinct windows: compare per window
    window_B = (_windows(B, 4) % 4) @ np.array([4, 1])
    first = np.unique(window_B, return_index=True)[1]
    assert len(first) == 16
    # every draw of one window is the same token (the rule is deterministic given key and window)
    for w in range(16):
        assert len(set(token_B[window_B == w])) == 1
    freq = np.bincount(token_B[first], minlength=4)
    assert stats.chisquare(freq, 16 * p_V).pvalue > 1e-3 or freq.sum() < 50  # 16 draws: a coarse check
    big = np.asarray(sampler.choose(jnp.log(jnp.broadcast_to(p_V, (B, 4))), jax.random.key(0), 1.0, 0, 1.0, 4,
                                    Watermark("gumbel", key=1, context=1), jnp.asarray(np.arange(B)[:, None])))
    for x in range(4):  # 8000 distinct windows: independent draws
        assert abs((big == x).mean() - p_V[x]) < Z * math.sqrt(p_V[x] * (1 - p_V[x]) / B)


def test_p_values_are_scipys_on_hand_counts():
    d = watermark.p_value(GREEN, np.array([1.0] * 9 + [0.0] * 11), V)
    assert d.scored == 20 and d.score == 9
    assert d.p_value == pytest.approx(stats.binom.sf(8, 20, 0.25), rel=1e-10)
    assert d.z == pytest.approx((9 - 5) / math.sqrt(20 * 0.25 * 0.75))
    scores = np.array([0.3, 2.5, 1.1, 0.7])
    g = watermark.p_value(GUMBEL, scores, V)
    assert g.p_value == pytest.approx(stats.gamma.sf(scores.sum(), 4), rel=1e-10)
    assert watermark.p_value(GREEN, np.zeros(0), V).p_value == 1.0


def test_scored_positions_deduplicate_and_skip_prompt_windows():
    tokens = np.array([[1, 2, 3, 1, 2, 3, 1, 2],
                       [5, 6, 7, 5, 6, 8, 1, 2]])
    window_MC, token_M = watermark.scored_positions(tokens, prompt_len=3, bos=V, context=2)
    rows = [tuple(w) + (t,) for w, t in zip(window_MC.tolist(), token_M.tolist())]
    # row 0 skips window (1, 2) (its prompt's token 3 follows it), then its repeats; row 1 skips (5, 6)
    assert rows == [(2, 3, 1), (3, 1, 2), (6, 7, 5), (7, 5, 6), (6, 8, 1), (8, 1, 2)]
    assert len(watermark.scored_positions(tokens, prompt_len=3, bos=V, context=2, dedup=False)[1]) == 10
    first = watermark.scored_positions(tokens[:1], prompt_len=0, bos=V, context=2)[0][0]
    assert first.tolist() == [V, V]  # unconditional: the first token's window is BOS, BOS
    within = np.array([[3, 1, 9]])  # its windows (BOS, BOS), (BOS, 3), (3, 1): only rows' (3, 1) is scored
    window_MC, token_M = watermark.scored_positions(tokens, prompt_len=3, bos=V, context=2, within_NT=within)
    assert window_MC.tolist() == [[3, 1]] and token_M.tolist() == [2]


def test_detection_is_valid_without_the_watermark_and_anti_conservative_without_dedup():
    """200 texts the key never wrote: deduplicated p-values are valid (green list: P(p <= u) <= u, a discrete
    test; Gumbel: uniform); repeating texts without deduplication read as watermarked far too often."""
    rng = np.random.default_rng(0)
    texts = rng.integers(0, V, (200, 64))
    green = [watermark.detect(GREEN, t[None], V).p_value for t in texts]
    gumbel = [watermark.detect(GUMBEL, t[None], V).p_value for t in texts]
    assert stats.kstest(green, "uniform", alternative="greater").pvalue > 0.01
    assert stats.kstest(gumbel, "uniform").pvalue > 0.01
    loops = np.tile(rng.integers(0, V, (200, 4)), 16)  # a 4-token pattern 16 times: 4 windows, each 15 times
    naive = np.array([watermark.detect(GREEN, t[None], V, dedup=False).p_value for t in loops])
    dedup = np.array([watermark.detect(GREEN, t[None], V).p_value for t in loops])
    # P(two or more of the 4 tuples green) = 0.26: each then reads p < 0.01 without deduplication
    assert (naive < 0.01).mean() > 0.15
    assert (dedup < 0.01).mean() <= 0.01 + Z * math.sqrt(0.01 * 0.99 / 200)


def test_a_reader_that_copies_in_context_reads_no_watermark_it_never_learned():
    """The open-model null: watermarked texts (uniform logits, green list) read by a reader that never saw the key
    but copies in context (at a window seen earlier in the row it predicts the token that followed it there,
    else a random token). Skipping windows seen earlier in the row keeps the p-values valid (KS over 200 texts);
    scoring them, the reader reads as watermarked by what it copied."""
    B, T, C = 200, 256, GREEN.context  # 256 tokens over 289 windows: most windows recur in a row
    pick = jax.jit(lambda key, window_BC: sampler.choose(jnp.zeros((B, V)), key, 1.0, 0, 1.0, V, GREEN, window_BC))
    seq_BS = np.full((B, C), V, np.int32)
    for t in range(T):
        token_B = np.asarray(pick(jax.random.key(t), jnp.asarray(seq_BS[:, -C:])))
        seq_BS = np.concatenate([seq_BS, token_B[:, None]], axis=1)
    texts_BT, rng = seq_BS[:, C:], np.random.default_rng(2)
    predicted_BT = rng.integers(0, V, (B, T))
    for b in range(B):
        after = {}
        for t in range(T):
            window = tuple(seq_BS[b, t:t + C])
            if window in after:
                predicted_BT[b, t] = after[window]
            after[window] = texts_BT[b, t]
    valid = [watermark.detect(GREEN, texts_BT[b:b + 1], V, predicted_NT=predicted_BT[b:b + 1]).p_value
             for b in range(B)]
    assert stats.kstest(valid, "uniform", alternative="greater").pvalue > 0.01
    copied = []
    for b in range(B):  # the (window, prediction) deduplication alone
        window_MC, _ = watermark.scored_positions(texts_BT[b:b + 1], 0, V, C, dedup=False)
        tuples = np.concatenate([window_MC, predicted_BT[b, :, None]], axis=1)
        first = np.sort(np.unique(tuples, axis=0, return_index=True)[1])
        scores = watermark.token_scores(GREEN, window_MC[first], predicted_BT[b, first], V)
        copied.append(watermark.p_value(GREEN, scores, V).p_value)
    assert (np.array(copied) < 0.01).mean() > 0.5  # all 200 read p < 0.01 (a valid test: 1 % +- 0.7 %)


@pytest.fixture(scope="module")
def radioactive(tmp_path_factory):
    """Generation 0 samples with a green-list watermark (delta 4), generation 1 (a student of those samples
    alone, regime=replace, 16 epochs on 512 of them) samples without: the study and its metric rows."""
    from collapse.config import SampleConfig, TrainConfig
    from collapse.data import GrammarConfig
    from collapse.run import loop

    cfg = tiny_config(data=GrammarConfig(vocab_size=V, n_states=4, n_train=512, n_valid=16, n_test=32, seq_len=16),
                      train=TrainConfig(batch_size=16, epochs=16, log_every=100),
                      sample=SampleConfig(batch_size=512, watermark="green_list", watermark_key=3, watermark_delta=4.0,
                                          watermark_generations=1))
    store = loop.run(cfg, tmp_path_factory.mktemp("radioactive") / "run")
    return store, {(row["generation"], row["metric"]): row["value"] for row in store.read_metrics()}


def test_a_watermark_is_detected_in_its_samples_and_in_a_student_that_read_them(radioactive):
    """Closed model: generation 0's samples read as watermarked, the human data (text the key never wrote) does
    not. Open model: generation 0, which never read watermarked text, does not continue the watermarked windows
    with green tokens; its student does (Sander et al.'s radioactivity, here at p < 1e-3)."""
    from collapse.files import load_json

    store, rows = radioactive
    assert rows[0, "watermark_log10p"] < -6 and rows[0, "watermark_scored"] > 50
    [human] = load_json(store.human_reference)
    assert human["watermark_log10p"] > -3
    assert rows[0, "watermark_read_log10p"] > -3 and rows[1, "watermark_read_scored"] > 50
    assert rows[1, "watermark_read_log10p"] < -3


def test_a_gumbel_watermark_is_detected_in_its_samples(tmp_path):
    """The Gumbel rule continues human prefixes (from BOS alone every sequence would be one)."""
    from collapse.config import SampleConfig
    from collapse.run import loop

    cfg = tiny_config(sample=SampleConfig(batch_size=64, watermark="gumbel", watermark_key=3, watermark_generations=1,
                                          mode="continuation", prompt_len=4))
    rows = {(row["generation"], row["metric"]): row["value"] for row in loop.run(cfg, tmp_path).read_metrics()}
    assert rows[0, "watermark_log10p"] < -6 and rows[0, "watermark_scored"] > 50
    assert rows[0, "watermark_read_log10p"] > -3 and (1, "watermark_read_log10p") in rows


def test_collapse_audit_repeats_the_studys_tests_from_the_run_directory(radioactive, capsys):
    """A third party with the key: closed and open model from the files alone give the study's own rows; another
    key reads nothing; a directory that is not a run is one error naming it (exit 2)."""
    from collapse import audit

    store, rows = radioactive

    def log10p(argv):
        audit.main(argv)
        [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("generation")]
        return float(line.split("log10 p")[1])

    assert log10p(["detect", str(store.path), "--generation", "0"]) == pytest.approx(rows[0, "watermark_log10p"],
                                                                                    abs=1e-3)
    assert log10p(["read", str(store.path), "--marked", str(store.path), "--generation", "1"]) == pytest.approx(
        rows[1, "watermark_read_log10p"], abs=1e-3)
    assert log10p(["detect", str(store.path), "--generation", "0", "--key", "99"]) > -3
    # Sander et al.'s filter: only windows of the student's own training set (all its rows are generation 0's)
    assert log10p(["read", str(store.path), "--marked", str(store.path), "--generation", "1", "--filter",
                   "training"]) == pytest.approx(rows[1, "watermark_read_log10p"], abs=1e-3)
    audit.main(["read", str(store.path), "--marked", str(store.path), "--generation", "1", "--rows", "16"])
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("generation")]
    assert 0 < int(line.split("scored")[1].split()[0]) < rows[1, "watermark_read_scored"]  # the first 16 rows
    with pytest.raises(SystemExit) as stop:
        audit.main(["detect", str(store.path / "gen_000")])
    assert stop.value.code == 2 and "config.json" in capsys.readouterr().err


@pytest.mark.parametrize("overrides,key", [
    ({"watermark": "gumbel", "temperature": 0.0, "mode": "continuation"}, "sample.watermark"),
    ({"watermark": "green_list", "beam_size": 5, "mode": "continuation"}, "sample.watermark"),
    ({"watermark": "green_list", "watermark_gamma": 0.01}, "sample.watermark_gamma"),
    ({"watermark": "gumbel"}, "sample.watermark"),  # unconditional: one sequence N times
    ({"watermark": "red_list"}, "sample.watermark"),
])
def test_meaningless_watermarks_are_refused(overrides, key):
    from collapse.config import SampleConfig
    from collapse.validate import validate

    with pytest.raises(ConfigError) as error:
        validate(tiny_config(sample=SampleConfig(**overrides)))
    assert error.value.key == key
