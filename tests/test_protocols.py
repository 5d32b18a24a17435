"""Every family meets its contract (collapse.families.protocols): the members exist and take the arguments
the protocol names, in order, with its defaults."""

import inspect

import pytest

from collapse.config import schemas
from collapse.families import AnalyticConfig, categorical, gaussian, gmm, linreg, protocols
from collapse.families.transformer import TransformerFamily
from tests.helpers import TINY_MODEL


def _members(protocol) -> list[str]:
    return [name for name, _ in inspect.getmembers(protocol, inspect.isfunction) if not name.startswith("_")]


def _parameters(fn, drop_self: bool) -> list[tuple[str, object]]:
    params = list(inspect.signature(fn).parameters.values())[1 if drop_self else 0:]
    return [(p.name, p.default) for p in params]


@pytest.mark.parametrize("module", [gaussian, gmm, categorical, linreg], ids=lambda m: m.__name__)
def test_analytic_families_meet_the_protocol(module):
    assert isinstance(module, protocols.AnalyticFamily)
    assert module.combine is None or callable(module.combine)
    for name in _members(protocols.AnalyticFamily):
        ours = _parameters(getattr(module, name), drop_self=False)
        theirs = _parameters(getattr(protocols.AnalyticFamily, name), drop_self=True)
        assert len(ours) == len(theirs), name  # positional: names differ (x_ND, tokens_NL, ...)


def test_the_analytic_runner_holds_only_protocol_families():
    from collapse.families import analytic

    assert all(isinstance(analytic.family(cls()), protocols.AnalyticFamily)
               for cls in schemas("model", AnalyticConfig).values())


def test_the_transformer_family_meets_the_model_family_protocol():
    family = TransformerFamily(TINY_MODEL, 7)
    assert isinstance(family, protocols.ModelFamily) and isinstance(family, protocols.Scorer)
    for name in _members(protocols.ModelFamily):  # names and defaults: callers pass some by keyword
        assert _parameters(getattr(family, name), drop_self=False) == \
            _parameters(getattr(protocols.ModelFamily, name), drop_self=True), name


def test_a_family_missing_a_member_does_not_meet_the_protocol():
    class NoMass:
        def logprob(self, params_R, tokens_RNT, batch=256, skip=0): ...

    assert not isinstance(NoMass(), protocols.Scorer)
