import os
import pickle

import pytest
import torch

from opgraph._base.torchio import load_checkpoint
from opgraph.errors import OpgraphError


class _Evil:
    """Unpickling this calls os.mkdir(marker): a stand-in for any code a crafted checkpoint could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_plain_checkpoint_round_trips(tmp_path):
    state = {"config": {"a": 1, "b": [1.5, None, "x"], "t": (1, 2)}, "w": torch.arange(4.0)}
    torch.save(state, tmp_path / "ok.pt")
    back = load_checkpoint(tmp_path / "ok.pt")
    assert back["config"] == state["config"]
    assert torch.equal(back["w"], state["w"])


def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"config": {}, "payload": _Evil(marker)}, tmp_path / "evil.pt")
    with pytest.raises(OpgraphError, match="re-save it") as info:
        load_checkpoint(tmp_path / "evil.pt", what="--model")
    assert not marker.exists()
    assert "\n" not in str(info.value)
    # a raw pickle (not a torch zip) is refused the same way
    (tmp_path / "raw.pt").write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(OpgraphError):
        load_checkpoint(tmp_path / "raw.pt")
    assert not marker.exists()


def test_numpy_objects_need_resaving(tmp_path):
    import numpy as np

    torch.save({"norm_mean": np.zeros(3)}, tmp_path / "old.pt")
    with pytest.raises(OpgraphError, match="re-save"):
        load_checkpoint(tmp_path / "old.pt")


@pytest.mark.parametrize("data", [b"", b"nope", b"PK\x03\x04garbage"])
def test_garbage_is_one_line(tmp_path, data):
    class Mine(OpgraphError):
        pass

    (tmp_path / "bad.pt").write_bytes(data)
    with pytest.raises(Mine, match="not a readable checkpoint") as info:
        load_checkpoint(tmp_path / "bad.pt", error=Mine)
    assert "\n" not in str(info.value)
    with pytest.raises(Mine, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt", error=Mine)
