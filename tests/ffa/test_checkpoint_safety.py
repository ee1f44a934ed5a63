import hashlib
import json
import os

import pytest
import torch

from opgraph import ffa
from opgraph.ffa.errors import FFAError
from opgraph.ffa.training import CHECKPOINT, MANIFEST


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture(scope="module")
def digits():
    return ffa.data.load("digits").subset(200, 100)


def test_run_checkpoint_is_weights_only_and_evil_one_runs_nothing(digits, tmp_path):
    pair = ffa.mirror(ffa.models.mlp(64, hidden=(16,), n_classes=10))
    ffa.train(pair, digits, method="ffa", epochs=1, seed=0, batch_size=64, run_dir=tmp_path / "r")
    ck = tmp_path / "r" / CHECKPOINT
    state = torch.load(ck, weights_only=True)
    assert ffa.load_run(tmp_path / "r").config["method"] == "ffa"
    marker = tmp_path / "pwned"
    state["history"] = _Evil(marker)
    torch.save(state, ck)
    with pytest.raises(FFAError, match="does not match"):  # the manifest's SHA-256 refuses it first
        ffa.load_run(tmp_path / "r")
    # an attacker can rewrite the manifest too (a checksum is no signature): weights_only must still refuse it
    manifest = json.loads((tmp_path / "r" / MANIFEST).read_text())
    manifest["files"][CHECKPOINT]["sha256"] = hashlib.sha256(ck.read_bytes()).hexdigest()
    (tmp_path / "r" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FFAError, match="re-save"):
        ffa.load_run(tmp_path / "r")
    with pytest.raises(FFAError, match="re-save"):
        ffa.train(pair, digits, method="ffa", epochs=2, batch_size=64, run_dir=tmp_path / "r", resume=True)
    assert not marker.exists()
