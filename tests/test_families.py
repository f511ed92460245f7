"""Every built-in family keeps the family contracts, checked by the conformance kit plugin authors run."""

import pytest

from ganbench.plugin.registry import build_registry
from ganbench.testing import contracts

FAMILIES = ["vanilla", "dcgan", "conditional", "lapgan", "began", "progressive"]
OBJECTIVES = ["minimax", "nonsaturating", "lsgan", "wgan-gp", "hinge", "began"]
#: Narrow convolutional families keep the kit fast; vanilla's MLP has no width option.
SMALL = {family: {"width": 8} for family in FAMILIES if family != "vanilla"}
REGISTRY = build_registry()


pytestmark = pytest.mark.usefixtures("one_thread")


def test_six_families_and_six_objectives_with_descriptions_and_papers(registry):
    assert set(FAMILIES) <= set(registry.names("model"))
    assert set(OBJECTIVES) <= set(registry.names("objective"))
    for kind, names in (("model", FAMILIES), ("objective", OBJECTIVES)):
        for name in names:
            spec = registry.get(kind, name).spec
            assert spec.description and "\n" not in spec.description
            assert any(ch.isdigit() for ch in spec.paper), f"{name} names no paper year"


#: Each family's contracts on one xdist worker (``--dist loadgroup``): they share the kit's probe, which builds and
#: trains the family once per data shape, so spreading them over workers would train it once per worker.
FAMILY_CONTRACTS = [pytest.param(c, id=str(c), marks=pytest.mark.xdist_group(f"kit-{f}"))
                    for f in FAMILIES for c in contracts(f, REGISTRY, SMALL)]


@pytest.mark.parametrize("contract", FAMILY_CONTRACTS)
def test_family_contract(contract):
    contract.check()


@pytest.mark.parametrize("contract", [c for o in OBJECTIVES for c in contracts(o, REGISTRY) if c.id.startswith("objective.")],
                         ids=str)
def test_objective_contract(contract):
    contract.check()
