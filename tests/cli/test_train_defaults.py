"""Every registered model trains with `genlab train NAME` alone: its own preset and default data
(one step here, with small batches, so the check is cheap)."""

import json

import pytest

from genlab import MODELS


@pytest.mark.parametrize("name", MODELS.names())
def test_train_with_no_other_argument(cli, tmp_path, name):
    out = tmp_path / name
    code, _, err = cli("train", name, "--out", out, "train.steps=1", "train.batch_size=8")
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["name"] == name and (out / "samples" / "step_1.png").is_file()
