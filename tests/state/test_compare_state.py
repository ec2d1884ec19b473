"""CompareState with the fake engine: the fusion grid and sweeps produce labelled cells whose
settings are recorded in the sheet and in each cell's PNG."""

from __future__ import annotations

from PIL import Image

from craftstudio.domain.generation import FusionSwitches
from craftstudio.library.contact_sheet import read_sheet
from craftstudio.library.png_params import read_request
from craftstudio.state.compare_state import CompareState
from tests.state.conftest import TIMEOUT, make_state
from tests.workers.fake_engine import FakeEngine


def _compare(runner, tmp_path, engine=None):
    engine = engine or FakeEngine()
    generate = make_state(runner, tmp_path, engine, prompt="a sks <c> in ohwx style <s:0.25>")
    generate.craft.content_lora, generate.craft.style_lora = "/loras/heart.safetensors", "/loras/mosaic.safetensors"
    generate.random_seed, generate.seed = False, 8
    return generate, CompareState(runner, generate, engine=engine, outputs=tmp_path / "outputs")


def test_fusion_grid_records_each_cells_mode_and_switches_in_the_sheet(qtbot, runner, tmp_path):
    engine = FakeEngine()
    generate, compare = _compare(runner, tmp_path, engine)
    previews = []
    compare.preview_changed.connect(previews.append)
    with qtbot.waitSignal(compare.sheet_path_changed, timeout=TIMEOUT):
        assert compare.run_fusion_grid() is not None
    assert any(p is not None for p in previews) and compare.preview is None
    cells = read_sheet(compare.sheet_path)
    labels = [c.label for c in cells]
    assert labels == ["direct merge", "CRAFT", "no backbone", "no routing", "no asymmetric CFG", "no gates",
                      "content LoRA only", "style LoRA only"]
    by_label = {c.label: c.request for c in cells}
    assert by_label["direct merge"].mode.value == "direct"
    assert by_label["CRAFT"].switches == FusionSwitches() and by_label["CRAFT"].mode.value == "craft"
    assert by_label["no routing"].switches == FusionSwitches(routing=False)
    assert by_label["no gates"].switches == FusionSwitches(gates=False)
    assert by_label["no asymmetric CFG"].mode.value == "custom"
    assert by_label["content LoRA only"].style_lora is None and by_label["content LoRA only"].content_lora
    assert by_label["style LoRA only"].content_lora is None
    assert {c.seed for c in cells} == {8}
    # Every cell is its own PNG with its own request; the engine saw exactly these requests.
    assert [read_request(c.path).switches for c in cells] == [c.request.switches for c in cells]
    assert engine.calls == [c.request for c in cells]
    with Image.open(compare.sheet_path) as sheet:
        assert sheet.width > 4 * 64 and sheet.height > 2 * 64


def test_sweep_varies_one_value_over_a_row(qtbot, runner, tmp_path):
    generate, compare = _compare(runner, tmp_path)
    compare.sweep_field, compare.sweep_values = "style_weight", "0, 0.5, 1"
    with qtbot.waitSignal(compare.sheet_path_changed, timeout=TIMEOUT):
        compare.run_sweep()
    cells = read_sheet(compare.sheet_path)
    assert [c.label for c in cells] == ["style weight 0", "style weight 0.5", "style weight 1"]
    assert [c.request.style_lora.weight for c in cells] == [0.0, 0.5, 1.0]
    assert compare.columns == 3


def test_sweep_of_curve_presets_and_bad_values(qtbot, runner, tmp_path):
    generate, compare = _compare(runner, tmp_path)
    compare.sweep_field, compare.sweep_values = "cfg_scale", "3, lots"
    assert compare.run_sweep() is None
    assert compare.error == "CFG values must be numbers separated by commas, not '3, lots'."
    compare.sweep_field, compare.sweep_values = "curves", "paper, constant"
    with qtbot.waitSignal(compare.sheet_path_changed, timeout=TIMEOUT):
        compare.run_sweep()
    assert [c.request.curves["name"] for c in read_sheet(compare.sheet_path)] == ["paper", "constant"]


def test_fusion_grid_needs_both_loras(qtbot, runner, tmp_path):
    generate, compare = _compare(runner, tmp_path)
    generate.craft.style_lora = ""
    assert compare.run_fusion_grid() is None
    assert "needs a content LoRA and a style LoRA" in compare.error


def test_without_its_own_folder_the_sheet_goes_to_the_generate_pages_outputs(qtbot, runner, tmp_path):
    generate, _ = _compare(runner, tmp_path)
    compare = CompareState(runner, generate, engine=FakeEngine())
    with qtbot.waitSignal(compare.sheet_path_changed, timeout=TIMEOUT):
        assert compare.run_fusion_grid() is not None
    assert generate.outputs_folder() == tmp_path / "outputs"
    assert compare.sheet_path.startswith(str(tmp_path / "outputs"))
