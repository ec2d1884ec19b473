"""`CraftState`: the CRAFT fusion settings of the Generate panel.

One content LoRA and one style LoRA (file and weight), an optional backbone file, the four
ablation switches of DESIGN.md §1 and the curves (`CurvesState`). The CRAFT modes are never
stored: `craft`/`direct`/`custom` is `FusionSwitches.mode` of the four switches, so choosing
`craft` or `direct` sets the switches and toggling one switch by hand makes the mode `custom` by
itself. A peer mode (`k-lora`, `switch`, `composite`: docs/method.md) is stored as `peer_mode`;
choosing one turns every switch off (the peer methods use no CRAFT component), and ticking a
switch by hand leaves it.

Persisted inside the Generate settings section (`GenerateState` saves `settings()` under one
key), and restored from a recorded request by `apply_request`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from craftstudio.domain.generation import (
    PEER_MODES,
    ROUTING_PRESETS,
    FusionMode,
    FusionSwitches,
    GenerateRequest,
    LoraRef,
)
from craftstudio.state.curves_state import CurvesState
from craftstudio.state.properties import ObservableObject, Property, persisted, restore

log = logging.getLogger(__name__)

MAX_LORA_WEIGHT = 2.0
SWITCHES = ("backbone", "routing", "asymmetric", "gates")
SWITCH_LABELS = {
    "backbone": "Backbone (W_init)",
    "routing": "Routing",
    "asymmetric": "Asymmetric CFG",
    "gates": "Gates (curves)",
}
MODES = tuple(mode.value for mode in FusionMode)


class CraftState(ObservableObject):
    content_lora = Property("", persist=True)
    content_lora_changed = Signal(str)
    content_weight = Property(1.0, persist=True)
    content_weight_changed = Signal(float)
    style_lora = Property("", persist=True)
    style_lora_changed = Signal(str)
    style_weight = Property(1.0, persist=True)
    style_weight_changed = Signal(float)
    backbone = Property("", persist=True)
    backbone_changed = Signal(str)
    # The switches are named after the FusionSwitches fields with a `use_` prefix, so a check
    # box binds to each like any other bool property.
    use_backbone = Property(True, persist=True)
    use_backbone_changed = Signal(bool)
    use_routing = Property(True, persist=True)
    use_routing_changed = Signal(bool)
    use_asymmetric = Property(True, persist=True)
    use_asymmetric_changed = Signal(bool)
    use_gates = Property(True, persist=True)
    use_gates_changed = Signal(bool)
    # Which layer sets route the LoRAs under the routing switch: "craft" or "b-lora".
    routing_preset = Property("craft", persist=True)
    routing_preset_changed = Signal(str)
    peer_mode = Property("", persist=True)  # "" = a CRAFT mode, else one of PEER_MODES
    peer_mode_changed = Signal(str)

    mode_changed = Signal(str)  # the mode (craft/direct/custom derived, or the peer mode); see `mode`

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.curves = CurvesState(self)
        self._mode = self.mode
        self._setting_all = False
        for name in SWITCHES:
            getattr(self, f"use_{name}_changed").connect(self._switch_toggled)

    # --- mode and switches ---------------------------------------------------------------

    @property
    def switches(self) -> FusionSwitches:
        return FusionSwitches(**{name: getattr(self, f"use_{name}") for name in SWITCHES})

    @switches.setter
    def switches(self, value: FusionSwitches) -> None:
        # One mode change for the whole set: craft → direct never passes through "custom".
        self._setting_all = True
        try:
            for name in SWITCHES:
                setattr(self, f"use_{name}", bool(getattr(value, name)))
        finally:
            self._setting_all = False
        self._emit_mode(True)

    @property
    def mode(self) -> str:
        return self.peer_mode or self.switches.mode.value

    def set_mode(self, mode: str) -> None:
        """`craft`/`direct` set every switch, a peer mode turns them all off; `custom` is reached
        by toggling one, so choosing it keeps the switches as they are."""
        if mode == FusionMode.CUSTOM.value:
            return
        self._set_peer_mode(mode if mode in PEER_MODES else "")
        self.switches = FusionSwitches.for_mode(mode)  # emits mode_changed once

    def _set_peer_mode(self, peer: str) -> None:
        self._setting_all = True
        try:
            self.peer_mode = peer
        finally:
            self._setting_all = False

    def _switch_toggled(self, checked: bool) -> None:
        if not self._setting_all and self.peer_mode:
            self._set_peer_mode("")  # a switch ticked by hand leaves the peer mode
        self._emit_mode(checked)

    def _emit_mode(self, _checked: bool) -> None:
        mode = self.mode
        if not self._setting_all and mode != self._mode:
            self._mode = mode
            self.mode_changed.emit(mode)

    # --- request -------------------------------------------------------------------------

    def lora_refs(self) -> tuple[LoraRef | None, LoraRef | None]:
        return (_ref(self.content_lora, self.content_weight), _ref(self.style_lora, self.style_weight))

    def request_fields(self) -> dict[str, Any]:
        """The GenerateRequest fields these settings describe."""
        content, style = self.lora_refs()
        return {"content_lora": content, "style_lora": style,
                "backbone": self.backbone.strip() or None, "switches": self.switches,
                "curves": self.curves.to_request(),  # kept in a peer mode (unused there) for going back
                "peer_mode": self.peer_mode or None, "routing_preset": self.routing_preset}

    def apply_request(self, request: GenerateRequest) -> list[str]:
        """Show a recorded request's CRAFT settings. Files are restored even when missing here
        (a silently different LoRA would make a different image); their names are returned so
        the caller can say which are missing."""
        missing = []
        for role, ref in (("content", request.content_lora), ("style", request.style_lora)):
            setattr(self, f"{role}_lora", ref.path if ref else "")
            setattr(self, f"{role}_weight", float(ref.weight) if ref else 1.0)
            if ref and not Path(ref.path).exists():
                missing.append(f"{role} LoRA {Path(ref.path).name}")
        self.backbone = request.backbone or ""
        if request.backbone and not Path(request.backbone).exists():
            missing.append(f"backbone {Path(request.backbone).name}")
        self._set_peer_mode(request.peer_mode or "")
        self.routing_preset = request.routing_preset
        self.switches = request.effective_switches
        self.curves.apply_curves(request.curves)
        return missing

    # --- settings ------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return {**persisted(self), "curves": self.curves.settings()}

    def restore_settings(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        self._setting_all = True  # restoring the switches must not clear a restored peer mode
        try:
            restore(self, data)
            if self.peer_mode not in PEER_MODES:
                self.peer_mode = ""
            if self.routing_preset not in ROUTING_PRESETS:
                self.routing_preset = "craft"
        finally:
            self._setting_all = False
        self._emit_mode(True)
        self.curves.restore_settings(data.get("curves"))
        for name in ("content_weight", "style_weight"):  # a hand-edited file may exceed the spin
            setattr(self, name, min(max(getattr(self, name), 0.0), MAX_LORA_WEIGHT))

    @property
    def has_loras(self) -> bool:
        return bool(self.content_lora.strip() or self.style_lora.strip())


def _ref(path: str, weight: float) -> LoraRef | None:
    path = path.strip()
    return LoraRef(path, float(weight)) if path else None
