"""Metric families (collapse.metrics.families): declared by the modules that compute the metrics; a name
belongs to the most specific pattern that matches it, and a name nobody declares is "other"."""

import collapse.metrics.score  # noqa: F401  (declares the built-in families)
from collapse.metrics.families import declared, family_of


def test_every_family_is_declared_in_report_order():
    assert list(declared()) == ["perplexity", "diversity", "tails", "tails_true", "teacher", "curation", "healing",
                                "knowledge", "ecosystem", "watermark", "other"]


def test_a_name_belongs_to_its_most_specific_pattern():
    expected = {"kl_true": "perplexity", "ppl_gen0_p99": "perplexity", "distinct_4": "diversity",
                "rep_4": "diversity", "tail_mass_ratio": "tails", "tail_mass_ratio_model_true": "tails_true",
                "survival": "tails", "survival_tail": "tails", "survival_tail_true": "tails_true",
                "survival_true": "tails_true", "zipf_exponent": "tails", "teacher_gap_kl_true": "teacher",
                "curate_ess": "curation", "closed_book_acc_tail": "knowledge", "hallucination_rate": "knowledge",
                "fact_coverage_head": "knowledge", "error_repeat_chance": "knowledge",
                "a_metric_nobody_declares": "other"}
    assert {name: family_of(name) for name in expected} == expected
