import pytest

from tfface.models import benchmark


def test_measure_reports_throughput():
    result = benchmark.measure("small_cnn", image_size=16, batch_size=4, steps=2, warmup=1)
    assert result["images_per_second"] > 0
    assert result["seconds_per_step"] > 0
    assert result["params"] > 0 and result["batch_size"] == 4


def test_bad_step_counts_raise():
    with pytest.raises(ValueError, match="Received: steps=0, warmup=1"):
        benchmark.measure("small_cnn", image_size=16, batch_size=4, steps=0, warmup=1)
