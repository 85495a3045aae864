import numpy as np
import pytest

from training.metrics import classification_metrics, expected_calibration_error


def one_hot_probs(pred, confidence=0.91):
    probs = np.full((len(pred), 10), (1 - confidence) / 9)
    probs[np.arange(len(pred)), pred] = confidence
    return probs


def test_hand_computed_case():
    # 6 images: classes 0 and 1 only. true 0,0,0,1,1,1; predicted 0,0,1,1,1,0.
    y_true = np.array([0, 0, 0, 1, 1, 1])
    metrics = classification_metrics(y_true, one_hot_probs([0, 0, 1, 1, 1, 0]))
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    cat0 = metrics["per_class"]["airplane"]
    assert cat0["precision"] == pytest.approx(2 / 3) and cat0["recall"] == pytest.approx(2 / 3)
    assert cat0["support"] == 3
    assert metrics["confusion_matrix"][0][:2] == [2, 1] and metrics["confusion_matrix"][1][:2] == [1, 2]
    # Classes 2..9 have no support and no predictions: they count as 0 in the macro average.
    assert metrics["precision_macro"] == pytest.approx((2 / 3 + 2 / 3) / 10)
    # Every prediction has confidence 0.91 and 4/6 are right: ECE = |0.6667 - 0.91|.
    assert metrics["ece"] == pytest.approx(abs(4 / 6 - 0.91))


def test_figures_cannot_disagree_with_each_other():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 2000)
    probs = rng.dirichlet(np.ones(10), 2000)
    probs[np.arange(2000)[:1200], y_true[:1200]] += 2  # 60 % (plus chance) correct
    probs /= probs.sum(1, keepdims=True)
    m = classification_metrics(y_true, probs)
    cm = np.array(m["confusion_matrix"])
    assert cm.sum() == 2000
    assert m["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    recall = np.diag(cm) / cm.sum(1)
    assert m["recall_macro"] == pytest.approx(recall.mean())
    assert [m["per_class"][k]["support"] for k in m["per_class"]] == cm.sum(1).tolist()
    # Balanced classes: macro recall is close to accuracy (the study's 0.99 vs 0.25 cannot happen).
    assert abs(m["recall_macro"] - m["accuracy"]) < 0.05


def test_mismatched_arrays_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        classification_metrics(np.zeros(5), np.full((4, 10), 0.1))


def test_perfectly_calibrated_predictions_have_zero_ece():
    y_true = np.array([0] * 10)
    probs = one_hot_probs([0] * 10, confidence=1.0)
    assert expected_calibration_error(y_true, probs) == pytest.approx(0.0)
