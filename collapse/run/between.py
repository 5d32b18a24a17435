"""A round's measurements between labs (collapse.metrics.ecosystem defines them): every pair's homogenisation on
the human test split's contexts, cross-perplexity, bigram overlap and each one's gain on the other's private
human rows; the ecosystem's mixture KL to the truth,
the diversity and tails of the labs' samples pooled, and the web's composition."""

from __future__ import annotations

import itertools

import numpy as np

from collapse.metrics import ecosystem, perplexity, score


def between_labs(eco, g: int, drawn: dict[str, list[np.ndarray]]) -> dict[tuple[str, str | None], list[dict]]:
    """{(a, b): per replicate {metric: value}} for every pair of labs, and {(ALL, None): ...} for the ecosystem:
    round g's models (each lab's generation g) and their own draws `drawn[lab][r]` `[n, T]`."""
    from collapse.families.transformer import divergences

    studies = eco.studies
    first = studies[0]
    R, P, T = first.replicates, first.P, first.humans[0].test.shape[1]
    test_RMT = np.stack([h.test for h in first.humans])
    models = {s.name: lineage.newest for s, lineage in zip(studies, eco.lineages)}
    test_lp = {name: m.family.logprob(m.params, test_RMT) for name, m in models.items()}  # [R, M] each
    private = {s.name: _private(s) for s in studies}
    out: dict[tuple[str, str | None], list[dict]] = {}
    js_R = []
    for a, b in itertools.combinations([s.name for s in studies], 2):
        ma, mb = models[a], models[b]
        div_R3 = divergences(ma.family, ma.params, mb.family, mb.params, test_RMT)
        a_RNT, b_RNT = np.stack(drawn[a]), np.stack(drawn[b])
        ab_RN = mb.family.logprob(mb.params, a_RNT, skip=P)  # a's samples under b's model
        ba_RN = ma.family.logprob(ma.params, b_RNT, skip=P)
        V = first.humans[0].vocab_size
        out[(a, b)] = [{"kl_pair_ab": div_R3[r, 0], "kl_pair_ba": div_R3[r, 1], "js_pair": div_R3[r, 2],
                        "cross_ppl_ab": perplexity.perplexity(ab_RN[r], T - P),
                        "cross_ppl_ba": perplexity.perplexity(ba_RN[r], T - P),
                        "bigram_overlap": ecosystem.bigram_overlap(a_RNT[r, :, P:], b_RNT[r, :, P:], V)}
                       for r in range(R)]
        for x, y, m in ((a, b, ma), (b, a, mb)):  # x's model on y's private rows
            if private[y] is not None:
                lp_RN = m.family.logprob(m.params, private[y])
                for r in range(R):
                    out[(a, b)][r][f"private_gain_{'ab' if x == a else 'ba'}"] = ecosystem.private_gain(
                        test_lp[x][r], lp_RN[r], T)
        js_R.append(div_R3[:, 2])
    whole = [{} for _ in range(R)]
    if js_R:
        for r in range(R):
            whole[r]["homogenisation_js"] = float(np.mean([js[r] for js in js_R]))
    if first.humans[0].truth is not None:
        from collapse.data.grammar import true_logprob

        lp_KRM = np.stack(list(test_lp.values()))
        for r, human in enumerate(first.humans):
            whole[r]["kl_true_mixture"] = ecosystem.mixture_kl(true_logprob(human.truth, human.test), lp_KRM[:, r], T)
    for r, (human, ref) in enumerate(zip(first.humans, first.refs)):
        rng = _rng(eco, g, r)
        metrics, _ = score.corpus_metrics(first.cfg.metrics, human, ref, pooled([drawn[s.name][r][:, P:] for s in
                                                                                  studies], rng), rng)
        whole[r].update({f"union_{k}": v for k, v in metrics.items()})
        if eco.web.active:
            web = eco.web.record(g)["replicates"][r]
            whole[r].update(web_rows=web["rows"], web_synthetic_share=web["synthetic_share"],
                            web_mean_depth=web["mean_depth"])
    out[(ecosystem.ALL, None)] = whole
    return out


def _private(study) -> np.ndarray | None:
    """The lab's own segment of the human train split `[R, N, T]` (None: every row is shared)."""
    rows = [h.train[h.shared:] for h in study.humans]
    return np.stack(rows) if len(rows[0]) else None


def pooled(corpora: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """The labs' samples pooled into a corpus as large as the first lab's `[n, T]`: an equal share of rows from
    each lab (`pools.allocate`), a uniform subset of each, so its diversity and tails compare with one lab's
    (distinct-n and the like depend on the corpus size)."""
    from collapse.run.pools import allocate

    counts = allocate({k: 1 / len(corpora) for k in range(len(corpora))}, len(corpora[0]))
    return np.concatenate([x[np.sort(rng.choice(len(x), counts[k], replace=counts[k] > len(x)))]
                           for k, x in enumerate(corpora)])


def _rng(eco, g: int, r: int) -> np.random.Generator:
    """The union's metric subsets: the key of lab 0's score phase, round 1 (its own round 0 scores its samples)."""
    from collapse.rng import Phase, for_round, numpy_rng

    return numpy_rng(for_round(eco.studies[0].key(g, r, Phase.SCORE), 1))
