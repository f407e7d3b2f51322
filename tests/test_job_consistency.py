"""One option, one meaning across the jobs: what a user learned in one job holds in the others."""
from __future__ import annotations

import pytest

from jobs import world_check


@pytest.mark.parametrize("models", [["worldclip-v2-a,worldclip-v2-c"], ["worldclip-v2-a", "worldclip-v2-c"],
                                    ["worldclip-v2-a,", "worldclip-v2-c"]])
def test_world_check_takes_models_as_a_comma_list_as_every_other_job_does(tmp_path, models):
    # jobs.grid, check_before and the benches take --models a,b; world_check refused 'a,b' as one unknown key
    args = world_check.parse_args(["--models", *models, "--out", str(tmp_path)])
    assert args.models == ["worldclip-v2-a", "worldclip-v2-c"]
    assert args.departures == ("--models worldclip-v2-a worldclip-v2-c",)


def test_world_check_still_names_an_unknown_model_in_a_comma_list(tmp_path):
    with pytest.raises(ValueError, match="'worldclip-v2-x' is not a world-v2 model"):
        world_check.parse_args(["--models", "worldclip-v2-a,worldclip-v2-x", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="--models names no model"):
        world_check.parse_args(["--models", ",", "--out", str(tmp_path)])
