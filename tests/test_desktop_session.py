"""The desktop app's session model (desktop_app/session.py) without Qt: plain pytest, no QApplication. Jobs run
inline (InlineRunner) on real files with real onnxruntime sessions of tiny models."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cifar10.inference import Classifier, classify_files
from cifar10.registry import load_model_info
from desktop_app.session import ERRORS_ONLY, InlineRunner, Session, model_key, unsure_row_text
from image_files import mixed_folder, solid
from onnx_fixtures import BLUE, GREEN, MAPPING_B, RED, write_model


@pytest.fixture()
def models_dir(tmp_path):
    directory = tmp_path / "models"
    write_model(directory, "colour_a", test_accuracy=0.6)
    write_model(directory, "colour_b", test_accuracy=0.8, mapping=MAPPING_B)
    return directory


def make_session(models_dir, prefer=None, batch_size=4):
    runner = InlineRunner()
    session = Session(runner, model_dirs=[models_dir], batch_size=batch_size)
    runner.session = session
    session.reload_models(prefer)
    return session, runner


class Recorder:
    """Every event of a session, in order: (name, args)."""

    def __init__(self, session):
        self.events = []
        for name in ("model_changed", "rows_added", "rows_updated", "rows_removed", "rows_cleared",
                     "filters_changed", "counts_changed", "job_changed", "job_progress", "message", "note_changed"):
            getattr(session, name).connect(lambda *args, name=name: self.events.append((name, args)))

    def named(self, name):
        return [args for n, args in self.events if n == name]


def colours(folder, n=6):
    paths = []
    for i in range(n):
        paths.append(solid(folder / f"f{i:02d}.png", (RED, GREEN, BLUE)[i % 3]))
    return paths


def labels(session):
    return {os.path.basename(r.path): r.label for r in session.rows()}


def test_the_session_imports_no_qt():
    code = ("import sys, desktop_app.session, desktop_app.jobs; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', 'superqt', 'qtpy'))]; "
            "assert not bad, bad")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), str(Path(__file__).parent)])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_retrained_under_the_same_name_gives_new_results(models_dir, tmp_path):
    paths = colours(tmp_path / "imgs")
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    assert set(labels(session).values()) == {"airplane", "automobile", "bird"}
    old_key = session.model_key
    # Re-trained: the same name, a new file (other weights, another card).
    os.remove(models_dir / "colour_a.onnx")
    write_model(models_dir, "colour_a", test_accuracy=0.667, mapping=MAPPING_B)
    assert session.check_model_files() is False  # first sight of the change: wait until it is stable
    recorder = Recorder(session)
    assert session.check_model_files() is True
    assert session.model.name == "colour_a" and session.model_key != old_key
    assert session.model.test_accuracy == pytest.approx(0.667)  # the new card
    assert recorder.named("model_changed") and session.busy  # the rows are classified again
    runner.run()
    fresh = Classifier(load_model_info(models_dir / "colour_a.onnx"))
    cli = {os.path.basename(r.path): r.label for r in classify_files(fresh, [str(p) for p in paths])}
    assert labels(session) == cli and set(cli.values()) == {"horse", "ship", "truck"}
    assert session.counts().stale == 0
    assert session.classifier is not None and session.classifier.model.test_accuracy == pytest.approx(0.667)


def test_reload_with_no_change_keeps_the_model_and_rows(models_dir, tmp_path):
    colours(tmp_path / "imgs", 3)
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    recorder = Recorder(session)
    session.reload_models()
    assert not session.busy and not recorder.named("model_changed")
    assert session.check_model_files() is False


def test_file_change_detection(models_dir, tmp_path):
    session, runner = make_session(models_dir)
    assert [m.name for m in session.models] == ["colour_b", "colour_a"]
    assert session.check_model_files() is False  # nothing changed
    write_model(models_dir, "colour_c", test_accuracy=0.9)
    assert session.check_model_files() is False and session.check_model_files() is True
    assert "colour_c" in [m.name for m in session.models]
    assert session.model.name == "colour_b"  # a new, better model does not replace the one in use
    os.remove(models_dir / "colour_c.onnx")
    os.remove(models_dir / "colour_c.json")
    assert session.check_model_files(wait_stable=False) is True
    assert [m.name for m in session.models] == ["colour_b", "colour_a"]
    # A copy over the current model's card (calibration, a new summary) is a new model version too.
    key = model_key(session.model)
    card = models_dir / "colour_b.json"
    card.write_text(card.read_text().replace("0.8", "0.81"))
    os.utime(card, ns=(key.card_mtime_ns + 10**9, key.card_mtime_ns + 10**9))
    assert session.check_model_files(wait_stable=False) and session.model.test_accuracy == pytest.approx(0.81)
    assert session.model_key != key


def test_progress_counts_rows_reclassified_in_place(models_dir, tmp_path):
    colours(tmp_path / "imgs", 10)
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    recorder = Recorder(session)
    progress = []  # the JobState is one object, updated: record what each event said
    session.job_progress.connect(lambda state: progress.append((state.done, state.total)))
    session.set_model("colour_b")
    runner.run()
    assert progress[0] == (0, 10) and progress[-1] == (10, 10)
    assert [done for done, _ in progress] == [0, 4, 8, 10]  # batches of 4
    assert recorder.named("message")[-1][0].startswith("Classified 10 files")
    assert not recorder.named("rows_added") and sum(len(a[0]) for a in recorder.named("rows_updated")) == 10
    assert set(labels(session).values()) == {"horse", "ship", "truck"}


def test_switching_back_uses_the_kept_results_at_once(models_dir, tmp_path):
    colours(tmp_path / "imgs", 6)
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    first = labels(session)
    session.set_model("colour_b")
    runner.run()
    progress = []
    session.job_progress.connect(lambda state: progress.append((state.done, state.total)))
    session.set_model("colour_a")
    assert labels(session) == first  # at once: the results of this file version were kept
    runner.run()  # a job checks that no file changed on disk since: none is read again
    assert labels(session) == first and progress == [(0, 0)] and session.counts().stale == 0


def test_filter_then_clear_resets_it_and_counts_say_n_of_m(models_dir, tmp_path):
    colours(tmp_path / "imgs", 6)
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    recorder = Recorder(session)
    session.set_class_filter("bird")
    counts = session.counts()
    assert (counts.total, counts.shown) == (6, 2) and counts.text().startswith("2 of 6 shown")
    assert recorder.named("counts_changed")[-1][0] == counts
    session.set_text_filter("F05")
    assert session.counts().shown == 1 and session.counts().text().startswith("1 of 6 shown")
    session.clear()
    assert session.class_filter is None and session.text_filter == "" and recorder.named("filters_changed")
    assert session.rows() == [] and session.counts().text() == "0 files"
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    assert session.counts().shown == 6 and session.counts().text() == "6 files"


def test_a_class_filter_the_new_model_lacks_is_dropped(models_dir, tmp_path):
    write_model(models_dir, "pets", class_names=("cat", "dog", "hamster"), test_accuracy=0.7)
    colours(tmp_path / "imgs", 3)
    session, runner = make_session(models_dir, prefer="pets")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    session.set_class_filter("hamster")
    session.set_model("colour_a")
    assert session.class_filter is None
    session.set_class_filter(ERRORS_ONLY)
    session.set_model("pets")
    assert session.class_filter == ERRORS_ONLY


def test_non_image_files_are_skipped_and_counted(models_dir, tmp_path):
    folder = tmp_path / "mixed"
    expected = mixed_folder(folder)
    (folder / "report.pdf").write_bytes(b"%PDF-1.4")
    session, runner = make_session(models_dir)
    recorder = Recorder(session)
    session.add_paths([folder])
    runner.run()
    names = sorted(os.path.relpath(r.path, folder) for r in session.rows())
    assert names == sorted(n.replace("/", os.sep) for n in expected if not n.endswith(".txt"))
    counts = session.counts()
    assert counts.skipped == 2 and counts.errors == 2  # notes.txt, report.pdf; empty.jpg, broken.png
    assert "2 other files skipped" in counts.text() and "2 could not be read" in counts.text()
    assert recorder.named("message")[-1][0].startswith("Classified ")  # the counts say what was skipped
    session.add_paths([folder / "notes.txt"])  # given again: still skipped, not counted twice
    runner.run()
    assert session.counts().skipped == 2 and len(session.rows()) == len(expected) - 1


def test_only_non_images_says_so(models_dir, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    session, runner = make_session(models_dir)
    recorder = Recorder(session)
    session.add_paths([tmp_path / "docs"])
    runner.run()
    assert session.note == "No images found in docs (1 other file skipped)"
    assert recorder.named("note_changed")


def test_model_switch_during_a_first_load_classifies_every_found_file(models_dir, tmp_path):
    colours(tmp_path / "imgs", 12)
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.step(3)  # classifier, files, first batch of 4
    assert len(session.rows()) == 4
    session.set_model("colour_b")
    runner.run()
    assert len(session.rows()) == 12 and set(labels(session).values()) == {"horse", "ship", "truck"}
    assert session.counts().stale == 0


def test_cancel_keeps_classified_rows_and_says_which_are_stale(models_dir, tmp_path):
    colours(tmp_path / "imgs", 12)
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    recorder = Recorder(session)
    session.set_model("colour_b")
    runner.step(3)
    session.cancel()
    runner.run()
    counts = session.counts()
    assert counts.total == 12 and 0 < counts.stale < 12
    assert "from the previous model" in counts.text()
    assert "the other rows still show the previous model's answers" in recorder.named("message")[-1][0]


def test_remove_and_selection(models_dir, tmp_path):
    paths = colours(tmp_path / "imgs", 4)
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    shown = []
    session.selection_changed.connect(shown.append)
    session.select(str(paths[0]))
    assert shown[-1].path == str(paths[0]) and shown[-1].label == "airplane"
    session.set_model("colour_b")
    runner.run()
    assert shown[-1].path == str(paths[0]) and shown[-1].label == "horse"  # the preview follows the new answer
    session.remove([str(paths[0])])
    assert shown[-1] is None and len(session.rows()) == 3
    session.set_model("colour_a")
    runner.run()
    assert len(session.rows()) == 3  # a removed file does not come back


def test_unsure_row_text():
    import numpy as np

    from cifar10.inference import Result

    probs = np.array([0.87, 0.13] + [0.0] * 8, np.float32)
    result = Result.from_probabilities("/x/a.png", probs, unsure=True, ood_score=0.9)
    assert unsure_row_text(result) == "unsure — most like airplane (87 %)"


# --- training guardrails (desktop_app/guardrails.py): plain Python too -------------------------------------------

def card_model(tmp_path, name, accuracy, *, classes=("cat", "dog", "hamster"), n=30, matrix=None, calibration=None):
    per_class = {c: {"recall": r} for c, r in zip(classes, (0.9, 0.5, 0.6))}
    card = {"test_metrics": {"n": n, "accuracy": accuracy, "per_class": per_class,
                             "confusion_matrix": matrix or [[9, 1, 0], [4, 5, 1], [2, 2, 6]]}}
    if calibration:
        card["calibration"] = calibration
    path = write_model(tmp_path, name, class_names=classes, test_accuracy=accuracy, card=card)
    return load_model_info(path)


def test_review_compares_with_chance_and_the_current_model(tmp_path):
    from desktop_app.guardrails import review_training

    current = card_model(tmp_path, "pets_v1", 0.7)
    new = card_model(tmp_path, "pets_v2", 0.8)
    epochs = [{"event": "epoch", "epoch": 1, "accuracy": 0.5, "val_accuracy": 0.45},
              {"event": "epoch", "epoch": 2, "accuracy": 0.85, "val_accuracy": 0.78}]
    review = review_training(new, epochs, current)
    assert review.chance == pytest.approx(1 / 3) and review.current_accuracy == pytest.approx(0.7)
    assert review.recall == {"cat": 0.9, "dog": 0.5, "hamster": 0.6}
    assert review.confused == ("dog", "cat", 4)
    assert review.curve == [(1, 0.5, 0.45), (2, 0.85, 0.78)]
    assert review.warnings == [] and review.recommended
    assert review.comparison() == ("80.0% right on its 30 held-out test pictures — guessing would give 33.3% "
                                   "(3 classes); better than pets_v1 (70.0%)")
    cifar = load_model_info(write_model(tmp_path, "colour_a", test_accuracy=0.9))
    assert review_training(new, epochs, cifar).current_name is None  # other classes: not comparable


def test_review_warns_at_chance_overfitting_few_test_images_and_worse_calibration(tmp_path):
    from desktop_app.guardrails import review_training

    chance = card_model(tmp_path, "three_epochs", 1 / 3, n=21,
                        calibration={"ece_before": 0.05, "ece_after": 0.08})
    epochs = [{"event": "epoch", "epoch": 40, "accuracy": 0.99, "val_accuracy": 0.67}]
    review = review_training(chance, epochs, None)
    text = " ".join(review.warnings)
    assert len(review.warnings) == 4 and not review.recommended
    assert "At chance level: 33.3%" in text and "Overfitting: 99%" in text and "67%" in text
    assert "Few test pictures: 21 for 3 classes" in text and "less reliable" in text
    current = card_model(tmp_path, "better", 0.9)
    fine = card_model(tmp_path, "fine", 0.8)
    assert not review_training(fine, [], current).recommended  # worse than the model in use


def test_counts_kept_as_rows_change_equal_a_full_count(models_dir, tmp_path):
    from desktop_app.session import Counts

    colours(tmp_path / "imgs", 9)
    (tmp_path / "imgs" / "bad.png").write_bytes(b"nope")
    session, runner = make_session(models_dir, prefer="colour_a")

    def full(s):
        rows = s.rows()
        return Counts(total=len(rows), shown=sum(map(s.accepts, rows)), unsure=sum(r.unsure for r in rows),
                      errors=sum(bool(r.error) for r in rows), skipped=len(s.skipped),
                      stale=sum(s._row_model[k] != s.model_key for k in s._rows))

    session.add_paths([tmp_path / "imgs"])
    runner.run()
    session.set_class_filter("bird")
    assert session.counts() == full(session) and session.counts().shown == 3
    session.set_model("colour_b")
    runner.step(3)
    assert session.counts() == full(session) and 0 < session.counts().stale < 10
    runner.run()
    session.remove([str(tmp_path / "imgs" / "f00.png")])
    session.set_class_filter(ERRORS_ONLY)
    assert session.counts() == full(session) == Counts(total=9, shown=1, errors=1)


# --- an afternoon on the user's own files: what the rows say stays true while jobs run -----------------------

def test_rows_removed_while_a_job_runs_stay_removed(models_dir, tmp_path):
    paths = [str(p) for p in colours(tmp_path / "imgs", 12)]
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    session.set_model("colour_b")  # re-classified in place, 4 at a time
    runner.step(2)                 # the model is loaded and the files listed: no row re-classified yet
    session.remove([paths[8]])
    runner.run()
    assert paths[8] not in session.files and len(session.rows()) == 11
    assert session.counts() == session.counts().__class__(total=11, shown=11)
    # During a first load, a model switch restarts the job with the files it had not reached: not the removed one.
    session.clear()
    session.add_paths([tmp_path / "imgs"])
    runner.step(3)  # the first 4 rows
    session.remove([paths[0], paths[9]])  # a row on show, and a file the job had still to read
    session.set_model("colour_a")
    runner.run()
    assert paths[0] not in session.files and len(session.rows()) == 11  # paths[9]: not a row, so still read
    assert set(labels(session).values()) == {"airplane", "automobile", "bird"}


def test_a_file_replaced_or_deleted_on_disk_is_never_shown_with_its_old_answer(models_dir, tmp_path):
    paths = colours(tmp_path / "imgs", 6)  # red, green, blue, ...
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    session.set_model("colour_b")
    runner.run()
    session.set_model("colour_a")
    runner.run()
    # In the file manager: f00 is replaced by another picture under the same name, f01 is deleted.
    os.remove(paths[0])
    solid(paths[0], BLUE)
    os.remove(paths[1])
    session.set_model("colour_b")  # colour_b's answers are kept: shown at once, then each file is checked
    runner.run()
    fresh = Classifier(load_model_info(models_dir / "colour_b.onnx"))
    assert session.result(str(paths[0])).label == next(iter(classify_files(fresh, [str(paths[0])]))).label == "truck"
    assert session.result(str(paths[1])).error == "file not found"
    assert labels(session)["f02.png"] == "truck" and session.counts().errors == 1
    # Adding the folder again classifies a file changed since its row was made (and only that one).
    solid(paths[2], RED, size=(41, 30))
    progress = []
    session.job_progress.connect(lambda state: progress.append(state.total))
    session.add_paths([tmp_path / "imgs"])
    runner.run()
    assert labels(session)["f02.png"] == "horse" and len(session.rows()) == 6 and progress[-1] == 1


def test_rows_follow_the_files_a_sort_moves_even_while_a_job_reads_them(models_dir, tmp_path):
    from cifar10.organize import execute, plan_organize, undo

    paths = [str(p) for p in colours(tmp_path / "imgs", 12)]
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.step(3)  # 4 rows; the job has 8 files still to read
    session.select(paths[0])
    shown = []
    session.selection_changed.connect(shown.append)
    # Sort into Class Folders (move) runs meanwhile, on its own worker.
    plan = plan_organize(Classifier(load_model_info(models_dir / "colour_a.onnx")), [str(tmp_path / "imgs")],
                         str(tmp_path / "sorted"), mode="move")
    report = execute(plan)
    assert len(report.done) == 12
    session.remove([paths[1]])  # taken out of the list meanwhile: it does not come back
    session.follow_moves(report.done)
    runner.run()
    moved = dict(report.done)
    assert session.files[:3] == [moved[p] for p in (paths[0], *paths[2:4])]  # in place: the rows keep their order
    assert sorted(session.files) == sorted(moved[p] for p in paths if p != paths[1])
    assert session.counts().errors == 0
    assert all(os.path.basename(os.path.dirname(r.path)) == r.label for r in session.rows())
    assert session.selected_result().path == moved[paths[0]] and shown[-1].path == moved[paths[0]]
    # Undo puts the files back: the rows follow them again.
    back = undo(str(tmp_path / "sorted"))
    assert back.restored == 12 and sorted(back.moved_back) == sorted((dst, src) for src, dst in report.done)
    session.follow_moves(back.moved_back)
    kept = sorted(p for p in paths if p != paths[1])
    assert sorted(session.files) == kept and session.counts().errors == 0
    session.set_model("colour_b")
    runner.run()
    totals = []
    session.job_progress.connect(lambda state: totals.append(state.total))
    session.set_model("colour_a")
    runner.run()
    assert totals == [0]  # the kept answers moved with their files, which are unchanged
    assert sorted(session.files) == kept and set(labels(session).values()) == {"airplane", "automobile", "bird"}


@pytest.mark.parametrize("stop", ["clear", "cancel"])
def test_a_folder_added_while_a_stopped_job_winds_down_is_classified(models_dir, tmp_path, stop):
    colours(tmp_path / "imgs", 12)
    colours(tmp_path / "other", 5)
    session, runner = make_session(models_dir, prefer="colour_a")
    session.add_paths([tmp_path / "imgs"])
    runner.step(3)
    getattr(session, stop)()  # the job stops after the batch it is on: until then the session is busy
    session.add_paths([tmp_path / "other"])
    runner.run()
    other = sorted(r.path for r in session.rows() if os.path.dirname(r.path) == str(tmp_path / "other"))
    assert len(other) == 5 and session.queue == [] and not session.busy
    assert len(session.rows()) == (5 if stop == "clear" else 9)
