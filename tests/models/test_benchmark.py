import pytest

from tests.module_imports import run_module
from tfface.models import benchmark


def test_measure_reports_throughput():
    result = benchmark.measure("small_cnn", image_size=16, batch_size=4, steps=2, warmup=1)
    assert result["images_per_second"] > 0
    assert result["seconds_per_step"] > 0
    assert result["params"] > 0 and result["batch_size"] == 4


def test_bad_step_counts_raise():
    with pytest.raises(ValueError, match="Received: steps=0, warmup=1"):
        benchmark.measure("small_cnn", image_size=16, batch_size=4, steps=0, warmup=1)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backbone", "resnet9000"], "argument --backbone: invalid choice: 'resnet9000'"),
        (["--steps", "0"], "--steps must be >= 1. Received: --steps=0"),
        (["--warmup", "-1"], "--warmup must be >= 0. Received: --warmup=-1"),
        (["--image_size", "0"], "--image_size must be >= 1"),
    ],
)
def test_bad_arguments_exit_2_before_tensorflow_loads(argv, message):
    """The backbone names come from the registry's table, so even `--backbone` is checked
    without importing Keras."""
    code, _, errors, imported = run_module("tfface.models.benchmark", *argv, timeout=120)
    assert code == 2, errors
    assert message in errors
    assert not {m.split(".")[0] for m in imported} & {"tensorflow", "keras"}, errors
