"""Every built-in family trains through the shared loop on digits-, MNIST- and CIFAR-shaped data."""

import pytest
import torch

from ganbench.budget import Budget
from ganbench.data import BatchStream, ImageDataset
from ganbench.loop import TrainingLoop
from ganbench.model import BuildContext, TrainSettings
from ganbench.records import RunConfig, RunInfo

FAMILIES = ["vanilla", "dcgan", "conditional", "lapgan", "began", "progressive"]
OBJECTIVES = ["minimax", "nonsaturating", "lsgan", "wgan-gp", "hinge", "began"]
SHAPES = {"digits": (1, 16), "mnist": (1, 28), "cifar10": (3, 32)}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_six_families_and_six_objectives_with_descriptions_and_papers(registry):
    assert set(FAMILIES) <= set(registry.names("model"))
    assert set(OBJECTIVES) <= set(registry.names("objective"))
    for kind, names in (("model", FAMILIES), ("objective", OBJECTIVES)):
        for name in names:
            spec = registry.get(kind, name).spec
            assert spec.description and "\n" not in spec.description
            assert any(ch.isdigit() for ch in spec.paper), f"{name} names no paper year"


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_through_the_shared_loop(registry, family, shape, tmp_path):
    channels, resolution = SHAPES[shape]
    g = torch.Generator().manual_seed(0)
    data = ImageDataset(shape, torch.randint(0, 256, (16, channels, resolution, resolution), generator=g, dtype=torch.uint8),
                        torch.arange(16) % 10, num_classes=10)
    spec = registry.model(family)
    objective = registry.objective(spec.default_objective).build()
    config = RunConfig(family, objective.name, shape, "3steps", 0, "cpu", 8, log_every=1)
    ctx = BuildContext(data.info, objective, TrainSettings(batch_size=8), torch.device("cpu"), 0)
    model = spec.build(ctx)
    def generator_parameters():
        return [p for name, net in model.networks().items() if name.startswith("generator") for p in net.parameters()]

    before = [p.detach().clone() for p in generator_parameters()]
    loop = TrainingLoop(model, BatchStream(data, 8, 0, torch.device("cpu")), Budget.parse("3steps"),
                        RunInfo("r", config, tmp_path, 3, "steps"), torch.device("cpu"))
    outcome = loop.run()
    assert outcome.status == "completed" and outcome.counters.steps == 3 and outcome.counters.images >= 24
    assert all(torch.isfinite(torch.tensor(v)) for v in outcome.losses.values())
    after = generator_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    model.eval()
    with torch.no_grad():
        z = model.sample_latent(4, torch.device("cpu"))
        labels = torch.tensor([0, 1, 2, 3]) if model.conditional else None
        images = model.generate(z, labels)
    assert images.shape == (4, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert (tmp_path / "samples" / "final.png").exists()
