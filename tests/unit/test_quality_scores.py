"""bench.quality's scores on tiny hand-made alphas and masks."""

import numpy as np
import pytest

from bench.quality import Scores, score

# A 4x4 mask whose left half is foreground.
MASK = np.zeros((4, 4), dtype=np.uint8)
MASK[:, :2] = 255


def test_a_perfect_alpha_scores_perfectly():
    assert score(MASK.copy(), MASK) == Scores(mae=0.0, iou=1.0, f_beta=1.0)


def test_an_inverted_alpha_scores_worst():
    assert score(255 - MASK, MASK) == Scores(mae=1.0, iou=0.0, f_beta=0.0)


def test_void_pixels_count_for_nothing():
    alpha = MASK.copy()
    alpha[0, :] = 255 - alpha[0, :]
    void = np.zeros(MASK.shape, dtype=bool)
    void[0, :] = True
    assert score(alpha, MASK, void) == Scores(mae=0.0, iou=1.0, f_beta=1.0)
    assert score(alpha, MASK).mae == pytest.approx(4 / 16)


def test_half_overlap():
    # The prediction covers the top half: 4 of its 8 pixels are foreground, 4 of the mask's 8 found.
    alpha = np.zeros((4, 4), dtype=np.uint8)
    alpha[:2, :] = 255
    scores = score(alpha, MASK)
    assert scores.mae == pytest.approx(0.5)
    assert scores.iou == pytest.approx(4 / 12)
    # precision = recall = 0.5, so F-beta is 0.5 whatever beta.
    assert scores.f_beta == pytest.approx(0.5)


def test_f_beta_weighs_precision_more_than_recall():
    # Predicting 2 of the mask's 8 pixels: precision 1, recall 1/4; F = 1.3 * 0.25 / (0.3 + 0.25).
    alpha = np.zeros((4, 4), dtype=np.uint8)
    alpha[0, :2] = 255
    assert score(alpha, MASK).f_beta == pytest.approx(1.3 * 0.25 / 0.55)


def test_soft_levels_count_in_mae_and_split_at_128():
    alpha = np.where(MASK == 255, 128, 127).astype(np.uint8)
    scores = score(alpha, MASK)
    assert scores.mae == pytest.approx(127 / 255)
    assert scores.iou == 1.0


def test_empty_prediction_of_an_empty_mask_is_perfect_and_of_a_subject_is_zero():
    empty = np.zeros((4, 4), dtype=np.uint8)
    assert score(empty, empty) == Scores(mae=0.0, iou=1.0, f_beta=1.0)
    assert score(empty, MASK) == Scores(mae=0.5, iou=0.0, f_beta=0.0)
    assert score(MASK.copy(), empty) == Scores(mae=0.5, iou=0.0, f_beta=0.0)
