"""The main window's layout, kept apart from its behaviour (as Qt Designer's setupUi does): actions,
menus, toolbar, status bar and the table/preview splitter. Every widget and action becomes an attribute
of the window; the slots they call are the window's methods."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSplitter, QStyle, QToolBar, QWidget


def setup_ui(window) -> None:
    _build_actions(window)
    _build_toolbar(window)
    _build_statusbar(window)
    _build_central(window)
    show_progress(window, False)


def show_progress(window, visible: bool) -> None:
    """The progress bar, rate and Cancel button show only while a job runs."""
    for widget in (window.progress, window.rate_label, window.cancel_button):
        widget.setVisible(visible)


def observe_status(window, session) -> None:
    """The status bar renders the session: "N files · U unsure · E could not be read · S other files skipped"
    (or "N of M shown" first, in bold, whenever a filter hides rows), the job's progress and rate (re-classified
    rows counted), and the session's messages."""
    def on_job(state) -> None:
        show_progress(window, state is not None)
        if state is not None:
            window.progress.setRange(0, 0)  # busy indicator while scanning / loading the model
            window.rate_label.setText(state.progress_text())

    def on_progress(state) -> None:
        if window.progress.maximum() != max(1, state.total):
            window.progress.setRange(0, max(1, state.total))
        window.progress.setValue(state.done)
        window.rate_label.setText(state.progress_text())

    def on_counts(counts) -> None:
        window.counts_label.setText(counts.text())
        window.counts_label.setStyleSheet("font-weight: bold;" if counts.shown != counts.total else "")

    session.job_changed.connect(on_job)
    session.job_progress.connect(on_progress)
    session.counts_changed.connect(on_counts)
    session.message.connect(lambda text, ms: window.statusBar().showMessage(text, ms))


def _action(window, text: str, slot, *, icon=None, shortcut=None) -> QAction:
    action = QAction(text, window, triggered=slot)
    if icon is not None:
        action.setIcon(window.style().standardIcon(icon))
    if shortcut is not None:
        action.setShortcut(shortcut)
    return action


def _build_actions(window) -> None:
    px = QStyle.StandardPixmap
    window.open_files_action = _action(window, "Open Files…", window.open_files_dialog, icon=px.SP_DialogOpenButton,
                                       shortcut=QKeySequence.StandardKey.Open)
    window.open_folder_action = _action(window, "Open Folder…", window.open_folder_dialog, icon=px.SP_DirOpenIcon,
                                        shortcut="Ctrl+Shift+O")
    window.export_csv_action = _action(window, "Export CSV…", lambda: window.export_dialog("csv"), shortcut="Ctrl+E")
    window.export_json_action = _action(window, "Export JSON…", lambda: window.export_dialog("json"))
    window.clear_action = _action(window, "Clear", window.clear, icon=px.SP_DialogResetButton)
    window.quit_action = _action(window, "Quit", window.close, shortcut=QKeySequence.StandardKey.Quit)
    window.card_action = _action(window, "Model Details…", window.show_model_card, icon=px.SP_FileDialogDetailedView,
                                 shortcut="Ctrl+I")
    window.reload_action = _action(window, "Reload Models", lambda: window.reload_models(), icon=px.SP_BrowserReload,
                                   shortcut=QKeySequence.StandardKey.Refresh)
    window.models_folder_action = _action(window, "Open User Models Folder", window._open_user_models)
    window.problems_action = _action(window, "Model Problems…", window.show_model_problems)
    window.about_action = _action(window, "About", window._about)
    window.organize_action = _action(window, "Sort into Class Folders…", window.show_organize_dialog)
    window.evaluate_action = _action(window, "Evaluate on a Labelled Folder…", window.show_evaluation_dialog)
    window.train_action = _action(window, "Train on a Folder…", lambda: window.show_train_dialog())
    window.resume_action = _action(window, "Resume Training…", lambda: window.show_resume_dialog())
    _enable_training(window.train_action)
    _enable_training(window.resume_action, "Continue a training run that was stopped, killed or interrupted, "
                                           "with the epochs it had finished")
    menu = window.menuBar()
    file_menu = menu.addMenu("&File")
    for action in (window.open_files_action, window.open_folder_action, None, window.export_csv_action,
                   window.export_json_action, None, window.organize_action, None, window.clear_action, None,
                   window.quit_action):
        file_menu.addSeparator() if action is None else file_menu.addAction(action)
    model_menu = menu.addMenu("&Models")
    for action in (window.card_action, window.evaluate_action, window.train_action, window.resume_action, None,
                   window.reload_action,
                   window.models_folder_action, window.problems_action):
        if action is None:
            model_menu.addSeparator()
            continue
        model_menu.addAction(action)
    menu.addMenu("&Help").addAction(window.about_action)


def _enable_training(action: QAction, tip: str = "Train a model on your own labelled pictures (one subfolder per "
                                                 "class)") -> None:
    """Train on a Folder… and Resume Training… run `cifar10 train` in a child process: without the training extra
    the item stays in the menu, disabled, and says what to install."""
    from desktop_app.train_process import INSTALL_HINT, TRAINING_EXTRA, training_unavailable

    missing = training_unavailable()
    action.setEnabled(missing is None)
    tip = missing or tip
    action.setToolTip(tip)
    action.setStatusTip(tip)
    if missing is not None:
        action.setText(f"{action.text()} (needs the '{TRAINING_EXTRA}' extra: {INSTALL_HINT})")


def _build_toolbar(window) -> None:
    """Fits a 1000 px wide window: the model picker and the search box keep readable widths (the picker shows
    the model's name and accuracy, elided in the middle; the whole line is in its list and tooltip), Model
    Details is an icon, and what does not fit goes into the toolbar's » menu from the end (Export CSV first)."""
    bar = QToolBar("Main", window)
    bar.setObjectName("main_toolbar")
    bar.setMovable(False)
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    window.addToolBar(bar)
    window.toolbar = bar
    for item in (window.open_files_action, window.open_folder_action, window.clear_action, None, QLabel(" Model: "),
                 window.model_combo, window.card_action, None, QLabel(" Show: "), window.class_filter, window.search,
                 None, window.export_csv_action):
        if item is None:
            bar.addSeparator()
        elif isinstance(item, QAction):
            bar.addAction(item)
        else:
            bar.addWidget(item)
    details = bar.widgetForAction(window.card_action)
    if details is not None:
        details.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        details.setToolTip("Model Details… (Ctrl+I): the model card: what it was trained on, how it scores")


def _build_statusbar(window) -> None:
    window.counts_label, window.rate_label = QLabel(""), QLabel("")
    window.progress = QProgressBar(window)
    window.progress.setMaximumWidth(220)
    window.progress.setFormat("%v / %m")
    window.cancel_button = QPushButton("Cancel", window)
    window.cancel_button.clicked.connect(window.cancel)
    window.provider_label = QLabel("")
    window.provider_label.setToolTip("onnxruntime execution provider in use")
    # The counts are a permanent widget: a status message (left) never hides "N of M shown".
    for widget in (window.counts_label, window.progress, window.rate_label, window.cancel_button,
                   window.provider_label):
        window.statusBar().addPermanentWidget(widget)


def _build_central(window) -> None:
    window.splitter = QSplitter(Qt.Orientation.Horizontal, window)
    window.splitter.addWidget(getattr(window, "results_area", window.results))
    window.splitter.addWidget(window.preview)
    window.splitter.setStretchFactor(0, 3)
    window.splitter.setStretchFactor(1, 2)
    window.splitter.setSizes([720, 440])
    holder = QWidget(window)
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(window.splitter)
    window.setCentralWidget(holder)
