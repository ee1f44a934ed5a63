import os

import pytest

pytest.importorskip("torch_geometric")
import torch  # noqa: E402

from opgraph.perf.errors import CheckpointError  # noqa: E402
from opgraph.perf.model import CostModel, ModelConfig  # noqa: E402


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_saved_model_loads_weights_only_and_evil_one_is_refused(tmp_path, make_layout):
    data = [make_layout(f"g{s}", seed=s) for s in range(2)]
    m = CostModel(ModelConfig(kind="layout", epochs=1, hidden=8, layers=1, ensemble=2)).fit(data)
    path = m.save(tmp_path / "m.pt")
    ck = torch.load(path, weights_only=True)  # the format itself is weights_only-safe
    assert isinstance(ck["config"], dict)
    m2 = CostModel.load(path)
    assert (m2.normalizer.mean == m.normalizer.mean).all()
    marker = tmp_path / "pwned"
    ck["history"] = _Evil(marker)
    torch.save(ck, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="re-save"):
        CostModel.load(tmp_path / "evil.pt")
    assert not marker.exists()
