import numpy as np
import pytest

from cifar10.contract import CLASS_NAMES
from cifar10.metrics import classification_metrics, expected_calibration_error


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_metrics_equal_scikit_learn(seed):
    """cifar10.metrics is numpy-only (the apps' install has no scikit-learn); it must give sklearn's figures."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    n = 500
    y_true = rng.integers(0, 10, n)
    if seed == 1:
        y_true[y_true == 3] = 4  # a class with no images: recall undefined -> 0, as sklearn's zero_division=0
    probs = rng.dirichlet(np.ones(10), n)
    probs[np.arange(n)[: n // 2], y_true[: n // 2]] += 1.5
    if seed == 2:
        probs[:, 7] = 0  # a class never predicted: precision undefined -> 0
    probs /= probs.sum(1, keepdims=True)
    y_pred = probs.argmax(1)
    m = classification_metrics(y_true, probs)
    labels = list(range(10))
    p, r, f, s = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    macro = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                            zero_division=0)
    assert m["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y_true, y_pred))
    assert m["confusion_matrix"] == sklearn_metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert [m["per_class"][k]["precision"] for k in m["per_class"]] == pytest.approx(p.tolist())
    assert [m["per_class"][k]["recall"] for k in m["per_class"]] == pytest.approx(r.tolist())
    assert [m["per_class"][k]["f1"] for k in m["per_class"]] == pytest.approx(f.tolist())
    assert [m["per_class"][k]["support"] for k in m["per_class"]] == s.tolist()
    assert (m["precision_macro"], m["recall_macro"], m["f1_macro"]) == pytest.approx(macro[:3])


def test_metrics_module_imports_without_scikit_learn():
    import subprocess
    import sys

    code = ("import sys; sys.modules['sklearn'] = None; sys.modules['tensorflow'] = None\n"
            "from cifar10.metrics import classification_metrics; import numpy as np\n"
            "print(classification_metrics([0, 1], np.eye(10)[[0, 2]])['accuracy'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.5"


def test_macro_over_present_classes_equals_scikit_learn_with_those_labels():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y_true = np.array([3, 3, 3, 5, 5, 5, 5])
    pred = [3, 3, 5, 5, 5, 3, 8]
    m = classification_metrics(y_true, one_hot_probs(pred), macro_over="present")
    macro = sklearn_metrics.precision_recall_fscore_support(y_true, pred, labels=[3, 5], average="macro",
                                                            zero_division=0)
    assert (m["precision_macro"], m["recall_macro"], m["f1_macro"]) == pytest.approx(macro[:3])
    assert m["macro_over"] == ["cat", "dog"]
    assert classification_metrics(y_true, one_hot_probs(pred))["macro_over"] == list(CLASS_NAMES)


def test_reliability_bins_are_what_ece_sums():
    from cifar10.metrics import reliability_bins

    # 4 images at confidence 0.95 (3 right) and 2 at 0.35 (both right): over-confident high, under-confident low.
    y_true = np.array([0, 0, 0, 1, 2, 3])
    probs = np.vstack([one_hot_probs([0, 0, 0, 0], 0.95), one_hot_probs([2, 3], 0.35)])
    rows = reliability_bins(y_true, probs)
    assert [(r["n"], round(r["confidence"], 6), r["accuracy"]) for r in rows] == [(2, 0.35, 1.0), (4, 0.95, 0.75)]
    assert rows[0]["low"] == pytest.approx(1 / 3) and rows[1]["high"] == 1.0
    assert expected_calibration_error(y_true, probs) == pytest.approx(2 / 6 * 0.65 + 4 / 6 * 0.2)
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(10) * 0.3, 500)
    y_true = rng.integers(0, 10, 500)
    rows = reliability_bins(y_true, probs, bins=10)
    assert sum(r["n"] for r in rows) == 500
    assert expected_calibration_error(y_true, probs, bins=10) == pytest.approx(
        sum(r["n"] / 500 * abs(r["accuracy"] - r["confidence"]) for r in rows))
    assert reliability_bins(np.zeros(0), np.zeros((0, 10))) == []
