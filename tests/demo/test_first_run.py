"""First run: with nothing configured, the CLI and the GUI fall back to the shipped demo model,
its backbone, LoRAs and prompt."""

from __future__ import annotations

import pytest

from craftstudio.demo import assets
from craftstudio.domain.curves import load_preset

pytestmark = pytest.mark.skipif(assets.demo_lora("content") is None or assets.demo_model_dir() is None,
                                reason="the demo model and LoRAs are not installed")


def test_cli_generate_without_model_uses_the_demo(tmp_path):
    from craftstudio.cli import main
    from craftstudio.library.png_params import read_request

    out = tmp_path / "first.png"
    assert main(["generate", "--steps", "3", "--device", "cpu", "--out", str(out)]) == 0
    request = read_request(out)
    assert request.model == str(assets.demo_model_dir())
    assert (request.width, request.height) == (64, 64)  # the demo model's native size
    assert request.content_lora.path == str(assets.demo_lora("content"))
    assert request.style_lora.path == str(assets.demo_lora("style"))
    assert request.backbone == str(assets.demo_backbone())  # the shipped W_init is on by default
    assert request.prompt == assets.demo_prompt() and "<c>" in request.prompt
    # The demo prompt's style weight is tuned to its guidance scale and curve preset.
    assert request.cfg_scale == assets.demo_cfg_scale() == 5.0
    assert assets.demo_curves() == "guidance-interval"
    assert request.curves == load_preset("guidance-interval").to_dict()


def test_cli_keeps_the_users_guidance_scale_and_the_default_without_the_demo(tmp_path, tiny_sd1):
    from craftstudio.cli import main
    from craftstudio.library.png_params import read_request

    out = tmp_path / "cfg.png"
    assert main(["generate", "--steps", "2", "--device", "cpu", "--cfg", "3", "--out", str(out)]) == 0
    assert read_request(out).cfg_scale == 3.0
    assert main(["generate", "--model", str(tiny_sd1), "--prompt", "a cat", "--steps", "2", "--size", "64x64",
                 "--device", "cpu", "--out", str(out), "--overwrite"]) == 0
    assert read_request(out).cfg_scale == 7.0


def test_gui_first_run_picks_the_demo(qtbot, tmp_path, monkeypatch):
    from craftstudio.app import build_studio
    from craftstudio.library.paths import AppPaths

    monkeypatch.setenv("CRAFTSTUDIO_HOME", str(tmp_path))
    studio = build_studio(paths=AppPaths(tmp_path))
    try:
        state = studio.generate
        assert state.model == str(assets.demo_model_dir())
        assert state.craft.content_lora == str(assets.demo_lora("content"))
        assert state.craft.style_lora == str(assets.demo_lora("style"))
        assert state.craft.backbone == str(assets.demo_backbone())
        assert state.cfg_scale == assets.demo_cfg_scale()
        assert state.craft.curves.preset == assets.demo_curves() and not state.craft.curves.edited
        assert state.craft.curves.to_request() == load_preset(assets.demo_curves()).to_dict()
        # The first request is the demo's own: its 64×64 size, prompt, curves and guidance scale.
        request = state.request()
        assert (request.width, request.height) == (64, 64)
        assert request.prompt == assets.demo_prompt()
        assert request.curves == load_preset(assets.demo_curves()).to_dict()
        assert request.cfg_scale == assets.demo_cfg_scale()
        assert (request.content_lora.path, request.style_lora.path) == (
            str(assets.demo_lora("content")), str(assets.demo_lora("style")))
        request.validate()
        panel = studio.window.generate_panel
        assert panel.model_edit.lineEdit().text().startswith("ShapesWorld demo")
        assert panel.width_spin.value() == panel.height_spin.value() == 64
        assert state.size_hint == ""
        studio.window.show()
        assert panel.welcome.isVisible()
    finally:
        studio.shutdown()
