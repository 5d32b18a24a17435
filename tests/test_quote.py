"""Quoted README tables (collapse.quote): each block rewritten from summary.csv as comparison.md computes it,
the three kinds of spec by hand, and refusals naming the block."""

import json

import pytest

from collapse import quote, summary
from collapse.errors import DataError
from collapse.stats import mean_ci
from collapse.tables import ci_cell

# Two conditions (regime replace / mix) of two seeds each, one replicate, generations 0..2.
VALUES = {("replace", 0): [0.3, 0.5, -0.1], ("replace", 1): [0.2, 0.4, 0.2],
          ("mix", 0): [0.3, 0.35, 0.1], ("mix", 1): [0.25, 0.3, -0.05]}


def _study(folder, labels=None):
    rows = []
    for (regime, seed), values in VALUES.items():
        run = {"run": f"{regime}{seed}", "regime": regime, "seed": seed, "shared_human_data": False,
               "planned_generations": 3, "finished_generations": 3, "incomplete": ""}
        for g, v in enumerate(values):
            rows.append({**run, "generation": g, "replicate": 0, "metric": "kl_true", "value": v})
            rows.append({**run, "generation": g, "replicate": 0, "metric": "distinct_2", "value": 1 + v})
    summary.write_csv(folder / "summary.csv", rows, ["regime"])
    (folder / "report.json").write_text(json.dumps({"labels": labels or {}}))


def _cell(regime, g, offset=0.0):
    return ci_cell(*mean_ci([VALUES[(regime, s)][g] + offset for s in (0, 1)]))


def test_blocks_are_rewritten_from_the_summary(tmp_path):
    _study(tmp_path, {"regime=mix": "10 % human"})
    readme = tmp_path / "README.md"
    readme.write_text("Intro.\n\n<!-- quote: kl_true at 0,2 -->\nstale\n<!-- /quote -->\n\n"
                      "<!-- quote: kl_true, distinct_2 at 1; rows 10 % human -->\n<!-- /quote -->\n\n"
                      "<!-- quote: kl_true below 0 over 1-2 -->\n<!-- /quote -->\nEnd.\n")
    assert quote.rewrite(readme) and not quote.rewrite(readme)  # a second pass changes nothing
    text = readme.read_text()
    assert text.startswith("Intro.\n\n<!-- quote: kl_true at 0,2 -->\nkl_true:\n") and text.endswith("End.\n")
    assert f"| regime=replace | {_cell('replace', 0)} | {_cell('replace', 2)} |" in text
    assert f"| 10 % human | {_cell('mix', 0)} | {_cell('mix', 2)} |" in text
    assert f"| 10 % human | {_cell('mix', 1)} | {_cell('mix', 1, 1.0)} |" in text
    assert "| regime=replace | " + _cell("replace", 1) not in text.split("rows 10 % human")[1].split("/quote")[0]
    # below 0: replace has -0.1 (seed 0, gen 2) among its 4 cells; mix has -0.05
    assert "| regime=replace | 1 of 4 (25 %) |" in text and "| 10 % human | 1 of 4 (25 %) |" in text
    assert quote.readmes(tmp_path) == [readme]


@pytest.mark.parametrize("spec, message", [
    ("ppl_nope at 0", "no metric 'ppl_nope'"),
    ("kl_true, distinct_2 at 0,1", "at one generation"),
    ("kl_true at 0; rows nobody", "no condition labelled 'nobody'"),
    ("kl_true around 0", "not a quote spec"),
])
def test_a_bad_block_is_refused_naming_it(tmp_path, spec, message):
    _study(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"<!-- quote: {spec} -->\n<!-- /quote -->\n")
    with pytest.raises(DataError, match=message) as info:
        quote.rewrite(readme)
    assert "README.md" in str(info.value)


def test_a_block_quotes_another_folder(tmp_path):
    (tmp_path / "all").mkdir()
    _study(tmp_path / "all")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- quote all/: kl_true at 1 -->\n<!-- /quote -->\n")
    quote.rewrite(readme)
    assert f"| regime=replace | {_cell('replace', 1)} |" in readme.read_text()


def test_inline_quotes_are_rewritten_in_sentences(tmp_path):
    _study(tmp_path, {"regime=mix": "10 % human"})
    readme = tmp_path / "README.md"
    readme.write_text("KL <!--q kl_true at 2 for 10 % human-->old<!--/q--> against "
                      "<!--q kl_true mean at 2 for regime=replace-->x<!--/q--> without human data.\n")
    assert quote.rewrite(readme)
    mean = (VALUES[("replace", 0)][2] + VALUES[("replace", 1)][2]) / 2
    assert readme.read_text() == (f"KL <!--q kl_true at 2 for 10 % human-->{_cell('mix', 2)}<!--/q--> against "
                                  f"<!--q kl_true mean at 2 for regime=replace-->{mean:.4g}<!--/q--> without "
                                  "human data.\n")
    assert quote.readmes(tmp_path) == [readme]
    readme.write_text("<!--q kl_true at 9 for 10 % human-->x<!--/q-->\n")
    with pytest.raises(DataError, match="has no kl_true at generation 9"):
        quote.rewrite(readme)
