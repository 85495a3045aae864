"""`cifar10 sweep`'s options: the Ray Tune search space they make, and each trial's `cifar10 train` line."""

import pytest

from cifar10.errors import UserFacingError
from training.sweep import SweepSpec, grid_size, param_space, parse_lr, train_command


def test_lr_values_and_ranges():
    assert parse_lr(["1e-3", "3e-4"]) == [1e-3, 3e-4]
    assert parse_lr(["1e-4:1e-2"]) == [(1e-4, 1e-2)]
    with pytest.raises(UserFacingError, match="0 < LOW < HIGH"):
        parse_lr(["1e-2:1e-4"])


def test_grid_and_random_spaces():
    tune = pytest.importorskip("ray.tune")
    grid = SweepSpec(optimizer=["adam", "sgd"], lr=[1e-3, 1e-2], epochs=[3], augment=[True, False])
    space, samples = param_space(grid)
    assert samples == 1 and grid_size(grid) == 8
    assert space["optimizer"] == {"grid_search": ["adam", "sgd"]} and space["epochs"] == 3
    assert "batch_size" not in space  # not swept: the model's default
    repeated = SweepSpec(optimizer=["adam", "sgd"], samples=3, seed=5)
    space, samples = param_space(repeated)
    assert samples == 1 and space["seed"] == {"grid_search": [5, 6, 7]}  # 2 x 3 trials, one seed per repeat
    random = SweepSpec(optimizer=["adam", "sgd"], lr=[(1e-4, 1e-2)], search="random", samples=5)
    space, samples = param_space(random)
    assert samples == 5 and isinstance(space["lr"], tune.search.sample.Float)
    assert 1e-4 <= space["lr"].sample() <= 1e-2
    with pytest.raises(UserFacingError, match="needs --search random"):
        param_space(SweepSpec(lr=[(1e-4, 1e-2)]))


def test_trial_command_is_a_train_command():
    config = {"model": "baseline", "optimizer": "sgd", "lr": 0.003, "batch_size": 128, "epochs": 5,
              "augment": False, "seed": 0, "limit": 500, "data_dir": "/data/cifar"}
    assert train_command(config) == ("cifar10 train --model baseline --optimizer sgd --lr 0.003 --batch-size 128 "
                                     "--epochs 5 --no-augment --seed 0 --limit 500 --data-dir /data/cifar")
