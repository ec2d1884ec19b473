"""Tools › Merge two LoRAs (ZipLoRA): the dialog opens filled from Generate and runs the merge."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from tests.state.conftest import TIMEOUT
from tests.state.test_merge_state import FakeMerge


def test_the_tools_menu_opens_the_merge_dialog_filled_from_generate(qtbot, make_studio, tmp_path):
    studio = make_studio()
    studio.generate.model = str(tmp_path / "model")
    studio.generate.craft.content_lora = str(tmp_path / "cat.safetensors")
    studio.generate.craft.style_lora = str(tmp_path / "ink.safetensors")
    studio.merge._engine = FakeMerge()
    studio.window.merge_action.trigger()
    from craftstudio.ui.merge_dialog import MergeDialog

    [dialog] = studio.window.findChildren(MergeDialog)
    assert dialog.isVisible() and "cat + ink (ZipLoRA)" in dialog.out_edit.text()
    assert not dialog.use_button.isEnabled()
    dialog.content_prompt_edit.setText("a photo of cat")
    dialog.style_prompt_edit.setText("an image in ink style")
    Path(dialog.out_edit.text()).parent.mkdir(parents=True, exist_ok=True)
    with qtbot.waitSignal(studio.merge.merged, timeout=TIMEOUT):
        qtbot.mouseClick(dialog.merge_button, Qt.MouseButton.LeftButton)
    assert dialog.use_button.isEnabled() and "Merged 12 layers" in dialog.status_label.text()
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert studio.generate.craft.content_lora == dialog.out_edit.text()
