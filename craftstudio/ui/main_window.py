"""`MainWindow`: navigation on the left (Library, Generate, Train, Gallery, Settings), the area on
the right, a menu bar, keyboard shortcuts, and the window's layout remembered between sessions.

An area is a (name, widget) pair. Generate and Settings are built here from their states; the
others are given by the composition root (`pages`); an area not given is left out. Dropping a
PNG made by CraftStudio (or A1111) on the window, or File › Open image…, restores its settings
on the Generate page.

The window's size and position, every splitter's sizes and the last area are saved in the
settings file's "window" section (through `SettingsState`) and restored on start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRect, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QWidget,
)

from craftstudio import __version__
from craftstudio.state.generate_state import GenerateState
from craftstudio.state.settings_state import SettingsState
from craftstudio.ui.generate_panel import GeneratePanel
from craftstudio.ui.settings_page import SettingsPage

AREAS = ("Library", "Generate", "Train", "Gallery", "Settings")
# (keys, what they do): shown by Help › Keyboard shortcuts and in docs/settings.md.
SHORTCUTS = (
    ("Ctrl+Enter", "Generate (on the Generate page)"),
    ("Esc", "Cancel the running generation (on the Generate page)"),
    ("Ctrl+1 … Ctrl+5", "Go to Library, Generate, Train, Gallery, Settings"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo in the curve editor (click the curves first)"),
    ("Ctrl+O", "Open an image and restore the settings that made it"),
    ("Ctrl+Shift+O", "Add a folder of models or LoRAs to the library"),
    ("F1", "This list"),
    ("Ctrl+Q", "Quit"),
)
ABOUT = (f"<h3>CraftStudio {__version__}</h3><p>An offline studio for Stable Diffusion artists: a "
         "library of models and LoRAs, training of content and style LoRAs, and generation that "
         "combines one content LoRA with one style LoRA through CRAFT-LoRA (CVPR 2026, arXiv "
         "2602.18936).</p><p>Everything runs on this computer; nothing is sent anywhere.</p>")


class MainWindow(QMainWindow):
    def __init__(self, generate_state: GenerateState, settings_state: SettingsState, *,
                 pages: Iterable[tuple[str, QWidget]] = (), logs: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("CraftStudio")
        self.resize(1100, 720)
        self.setAcceptDrops(True)
        self.generate_state = generate_state
        self.settings_state = settings_state
        self.logs = logs
        # Saved splitter sizes wait until their page is on screen: a splitter that has no size
        # yet would squeeze them.
        self._pending_splitters: dict[str, list[int]] = {}
        self.open_url: Callable[[QUrl], Any] = QDesktopServices.openUrl  # tests replace it
        # What opening or dropping a PNG calls (a page may offer a richer restore, e.g. one that
        # also finds the image's LoRAs in the library), and what may veto closing the window.
        self.png_opener: Callable[[str], Any] = generate_state.apply_png
        # What File › Add folder… calls: a scan job into the catalog, or the Library page's own
        # "add a watched folder" once it is there.
        self.folder_adder: Callable[[str], Any] = settings_state.add_folder
        self.merge_opener: Callable[[], Any] | None = None  # Tools › Merge two LoRAs (set by the app)
        self.close_guards: list[Callable[[], bool]] = []
        self.dialogs: list[QMessageBox] = []  # open non-modal dialogs (Help), newest last
        self.generate_panel = GeneratePanel(generate_state)
        self.settings_page = SettingsPage(settings_state)

        given = {"Generate": self.generate_panel, "Settings": self.settings_page, **dict(pages)}
        # The five areas in their order (those given), then any extra area a caller adds.
        self.areas = [*(name for name in AREAS if name in given), *(name for name in given if name not in AREAS)]
        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setFixedWidth(140)
        self.navigation.setIconSize(QSize(0, 0))
        self.pages = QStackedWidget()
        for area in self.areas:
            page = given[area]
            self.pages.addWidget(page)
            item = QListWidgetItem(area)
            item.setSizeHint(QSize(120, 40))
            number = self.areas.index(area) + 1
            item.setToolTip(f"{area} (Ctrl+{number})" if number <= 9 else area)
            self.navigation.addItem(item)
        self.navigation.currentRowChanged.connect(self._area_shown)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.navigation)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self._build_shortcuts()
        self.show_area("Generate")
        self.statusBar().showMessage("Ready")
        generate_state.error_changed.connect(self._show_error_in_status_bar)
        generate_state.show_requested.connect(lambda: self.show_area("Generate"))
        settings_state.scan_status_changed.connect(lambda text: self.statusBar().showMessage(text))
        self.restore_layout()

    # ---------- areas
    def show_area(self, area: str) -> None:
        self.navigation.setCurrentRow(self.areas.index(area))

    @property
    def current_area(self) -> str:
        return self.areas[self.pages.currentIndex()]

    def page(self, area: str) -> QWidget:
        return self.pages.widget(self.areas.index(area))

    def _open_merge(self) -> None:
        if self.merge_opener is not None:
            self.merge_opener()

    def _area_shown(self, row: int) -> None:
        self.pages.setCurrentIndex(row)
        actions = self.area_actions
        if 0 <= row < len(actions):
            actions[row].setChecked(True)
        if self._pending_splitters:
            QTimer.singleShot(0, self._apply_pending_splitters)

    # ---------- menus and shortcuts
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_image_action = self._action(file_menu, "&Open image…", self._open_image, "Ctrl+O",
                                              "Restore the settings recorded in a PNG made by "
                                              "CraftStudio or A1111")
        self.add_folder_action = self._action(file_menu, "&Add folder…", self._add_folder, "Ctrl+Shift+O",
                                              "Add a folder of models or LoRAs to the library")
        self.scan_action = self._action(file_menu, "&Scan library folders", self.settings_state.scan_library_folders,
                                        None, "Look for new and changed files in the models and LoRAs "
                                              "folders chosen on the Settings page")
        file_menu.addSeparator()
        self.quit_action = self._action(file_menu, "&Quit", self.close, "Ctrl+Q", "Close CraftStudio")

        view_menu = bar.addMenu("&View")
        group = QActionGroup(self)
        self.area_actions: list[QAction] = []
        for index, area in enumerate(self.areas):
            keys = f"Ctrl+{index + 1}" if index < 9 else None
            action = self._action(view_menu, area, lambda _c=False, a=area: self.show_area(a), keys,
                                  f"Show the {area} page")
            action.setCheckable(True)
            group.addAction(action)
            self.area_actions.append(action)

        tools_menu = bar.addMenu("&Tools")
        self.merge_action = self._action(tools_menu, "&Merge two LoRAs (ZipLoRA)…", self._open_merge, None,
                                         "Merge the Generate page's content and style LoRAs into one LoRA file")

        help_menu = bar.addMenu("&Help")
        self.shortcuts_action = self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1",
                                             "List the keyboard shortcuts")
        self.welcome_action = self._action(help_menu, "&Welcome", self.show_welcome, None,
                                           "Show the first-run introduction again")
        self.logs_action = self._action(help_menu, "Open &logs folder", self.open_logs, None,
                                        "Open the folder with CraftStudio's log files (attach them "
                                        "to a bug report)")
        help_menu.addSeparator()
        self.about_action = self._action(help_menu, "&About CraftStudio", self.show_about, None,
                                         "Version and what CraftStudio is")
        for menu in (file_menu, view_menu, help_menu):
            menu.setToolTipsVisible(True)

    def _action(self, menu, text: str, slot: Callable, keys: str | None, tip: str) -> QAction:
        action = QAction(text, self)
        if keys:
            action.setShortcut(QKeySequence(keys))
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # the shortcut works wherever the focus is in the window
        return action

    def _build_shortcuts(self) -> None:
        # Esc cancels while the focus is on the Generate page (other pages keep Esc for their
        # own use, e.g. leaving a viewer); if the page binds Esc too, Qt reports the key as
        # ambiguous, which cancels as well.
        cancel = QShortcut(QKeySequence(Qt.Key.Key_Escape), self.generate_panel)
        cancel.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        cancel.activated.connect(self.generate_state.cancel)
        cancel.activatedAmbiguously.connect(self.generate_state.cancel)
        # The panel binds Ctrl+Return; Ctrl+Enter on the keypad does the same.
        QShortcut(QKeySequence("Ctrl+Enter"), self.generate_panel, self.generate_state.generate)

    # ---------- menu actions
    def _open_image(self) -> None:
        start = self.settings_state.outputs_folder
        path, _ = QFileDialog.getOpenFileName(self, "Open an image made by CraftStudio or A1111", start,
                                              "PNG images (*.png)")
        if path:
            self.open_image(path)

    def open_image(self, path: str | Path) -> None:
        self.show_area("Generate")
        self.png_opener(str(path))

    def confirm(self, question: str, title: str = "CraftStudio") -> bool:
        """Ask a yes/no question (e.g. for a close guard); No is the default."""
        answer = QMessageBox.question(self, title, question,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of models or LoRAs to the library",
                                                  self.settings_state.loras_folder)
        if folder:
            self.folder_adder(folder)

    def shortcuts_text(self) -> str:
        rows = "".join(f"<tr><td><b>{keys}</b>&nbsp;&nbsp;</td><td>{what}</td></tr>" for keys, what in SHORTCUTS)
        return f"<h3>Keyboard shortcuts</h3><table>{rows}</table>"

    def show_shortcuts(self) -> None:
        self._message("Keyboard shortcuts", self.shortcuts_text())

    def show_welcome(self) -> None:
        self.show_area("Generate")
        self.generate_panel.show_welcome()

    def show_about(self) -> None:
        self._message("About CraftStudio", ABOUT)

    def open_logs(self) -> None:
        if self.logs is None:
            self.statusBar().showMessage("Logging to a file is off in this session.")
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        self.open_url(QUrl.fromLocalFile(str(self.logs)))

    def _message(self, title: str, html: str) -> None:
        # Non-modal: reading help never blocks the window (or a test).
        box = QMessageBox(QMessageBox.Icon.NoIcon, title, html, QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setModal(False)
        box.finished.connect(lambda _r: self.dialogs.remove(box) if box in self.dialogs else None)
        self.dialogs.append(box)
        box.show()

    # ---------- layout, saved between sessions
    def _splitters(self) -> dict[str, QSplitter]:
        found: dict[str, QSplitter] = {}
        for index, area in enumerate(self.areas):
            for number, splitter in enumerate(self.pages.widget(index).findChildren(QSplitter)):
                found[f"{area}/{number}"] = splitter
        return found

    def layout_settings(self) -> dict[str, Any]:
        splitters = {key: splitter.sizes() for key, splitter in self._splitters().items()}
        return {
            # Plain numbers rather than saveGeometry(): readable, and exact on every platform.
            "geometry": list(self.normalGeometry().getRect()),
            "maximized": self.isMaximized(),
            "splitters": {**splitters, **self._pending_splitters},
            "area": self.current_area,
        }

    def save_layout(self) -> None:
        self.settings_state.save_window_layout(self.layout_settings())

    def restore_layout(self) -> None:
        saved = self.settings_state.window_layout()
        geometry = saved.get("geometry")
        if isinstance(geometry, list) and len(geometry) == 4 and all(isinstance(v, int) for v in geometry):
            self._restore_geometry(QRect(*geometry))
        if saved.get("maximized") is True:
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)
        sizes = saved.get("splitters")
        if isinstance(sizes, dict):
            for key, splitter in self._splitters().items():
                value = sizes.get(key)
                if isinstance(value, list) and len(value) == splitter.count() \
                        and all(isinstance(v, int) and v >= 0 for v in value):
                    self._pending_splitters[key] = value
        if saved.get("area") in self.areas:
            self.show_area(saved["area"])

    def _apply_pending_splitters(self) -> None:
        if not self.isVisible():
            return  # showEvent comes back here
        area = self.current_area
        for key, splitter in self._splitters().items():
            if key.startswith(f"{area}/") and key in self._pending_splitters:
                splitter.setSizes(self._pending_splitters.pop(key))

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._pending_splitters:
            QTimer.singleShot(0, self._apply_pending_splitters)

    def _restore_geometry(self, rect: QRect) -> None:
        if rect.width() < 200 or rect.height() < 150:
            return
        screens = [screen.availableGeometry() for screen in QGuiApplication.screens()]
        if any(area.intersects(rect) for area in screens):
            self.setGeometry(rect)
        else:  # the screen it was on is gone: keep the size, let the system place it
            self.resize(rect.size())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if not all(guard() for guard in self.close_guards):
            event.ignore()
            return
        self.save_layout()
        super().closeEvent(event)

    # ---------- status and drops
    def _show_error_in_status_bar(self, message: str) -> None:
        # The panel shows the full message; the status bar catches the eye on other pages.
        self.statusBar().showMessage(message or "Ready")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if any(url.toLocalFile().lower().endswith(".png") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        for url in event.mimeData().urls():
            path = url.toLocalFile()
            if path.lower().endswith(".png"):
                self.open_image(path)
                event.acceptProposedAction()
                return
