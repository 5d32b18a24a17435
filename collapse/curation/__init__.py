"""Curation: what happens to a generation's samples before they join the pools (docs/curation.md), one module
per option (`base.CurateConfig`), registered on import; `select` (quantile bands, thresholds with rounds),
`scores` (the exact truth, a model's perplexity, a user's verifier: `plugin`) and `classifier` (the detector's
model) are the mechanisms they share."""

# registration, in the order `collapse --help` lists the options
from collapse.curation import none, verifier, perplexity, detector, correct  # noqa: F401, I001
from collapse.curation.base import CurateConfig, Curated, Drawing, Synthesis  # noqa: F401
from collapse.curation.correct import CorrectCurateConfig  # noqa: F401
from collapse.curation.detector import DetectorCurateConfig  # noqa: F401
from collapse.curation.none import NoCurateConfig  # noqa: F401
from collapse.curation.perplexity import PerplexityCurateConfig  # noqa: F401
from collapse.curation.verifier import VerifierCurateConfig  # noqa: F401
