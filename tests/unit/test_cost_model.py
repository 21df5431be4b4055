"""bench/cost.py's model of inference on Lambda: time by vCPUs from two measurements, and the
memory setting it recommends."""

import pytest

from bench.cost import InferenceScaling, StageTimes, inference_cost, needed_memory_mb, recommended_memory_mb
from cutout_inference.engine import LAMBDA_MB_PER_VCPU

# Measured on this machine (bench/inference.py, 2 MP): 352 ms on one core, 216 ms on two.
MEASURED = InferenceScaling(one_vcpu_ms=352, two_vcpus_ms=216)


def times(scaling: InferenceScaling) -> StageTimes:
    return StageTimes(post_ms=2, get_ms=2, normalize_ms=4, inference=scaling)


def test_the_two_measurements_are_reproduced_and_split_into_serial_and_parallel_parts():
    assert MEASURED.ms_at(1) == pytest.approx(352)
    assert MEASURED.ms_at(2) == pytest.approx(216)
    # serial 80 ms + parallel 272 ms over the vCPUs
    assert MEASURED.ms_at(4) == pytest.approx(80 + 272 / 4)
    assert MEASURED.ms_at(1.7) == pytest.approx(80 + 272 / 1.7)


def test_with_one_onnx_thread_a_fraction_of_a_vcpu_more_changes_nothing():
    assert MEASURED.ms_at(1.05) == MEASURED.ms_at(1.2) == 352
    assert MEASURED.ms_at(1.3) == pytest.approx(80 + 272 / 1.3)


def test_below_one_vcpu_the_whole_run_slows_in_proportion():
    assert MEASURED.ms_at(0.5) == pytest.approx(704)


def test_two_cores_measured_slower_than_one_counts_as_nothing_parallel():
    noisy = InferenceScaling(one_vcpu_ms=300, two_vcpus_ms=310)
    assert noisy.ms_at(2) == noisy.ms_at(6) == 300


def test_a_container_needs_its_peak_with_headroom_in_whole_steps():
    assert needed_memory_mb(1613) == 1856
    assert needed_memory_mb(1000) == 1152


def test_the_recommendation_is_one_vcpu_when_the_peak_fits_and_the_run_is_not_all_parallel():
    assert recommended_memory_mb(times(MEASURED), peak_rss_mb=1000) == LAMBDA_MB_PER_VCPU


def test_the_recommendation_holds_every_model_when_their_peak_needs_more_than_one_vcpu():
    assert recommended_memory_mb(times(MEASURED), peak_rss_mb=1613) == 1856


def test_a_serial_run_costs_more_with_every_gigabyte_above_one_vcpu():
    serial = times(InferenceScaling(one_vcpu_ms=300, two_vcpus_ms=300))
    assert inference_cost(serial, 3008) > inference_cost(serial, 2048) > inference_cost(serial, LAMBDA_MB_PER_VCPU)


def test_a_perfectly_parallel_run_costs_the_same_at_any_vcpus():
    parallel = times(InferenceScaling(one_vcpu_ms=300, two_vcpus_ms=150))
    # Only the fixed AWS round trip grows with memory.
    assert inference_cost(parallel, 3538) == pytest.approx(inference_cost(parallel, LAMBDA_MB_PER_VCPU), rel=0.05)
