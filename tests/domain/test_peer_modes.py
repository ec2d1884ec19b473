"""Peer fusion modes in the request: validation, the mode it reports, the switches it uses."""

from __future__ import annotations

import pytest

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import PEER_MODES, FusionMode, FusionSwitches, GenerateRequest


def test_peer_mode_sets_the_mode_and_turns_every_craft_component_off():
    for mode in PEER_MODES:
        request = GenerateRequest(model="m", prompt="p", peer_mode=mode, switches=FusionSwitches())
        request.validate()
        assert request.mode is FusionMode(mode)
        assert request.effective_switches == FusionSwitches(False, False, False, False)
    plain = GenerateRequest(model="m", prompt="p", switches=FusionSwitches(routing=False))
    assert plain.mode is FusionMode.CUSTOM and plain.effective_switches == plain.switches


def test_unknown_peer_mode_is_refused_and_dropped_from_a_record():
    with pytest.raises(RequestError, match="Unknown peer fusion mode 'zip-lora'"):
        GenerateRequest(model="m", prompt="p", peer_mode="zip-lora").validate()
    request, dropped = GenerateRequest.from_record({"model": "m", "prompt": "p", "peer_mode": "zip-lora"})
    assert request.peer_mode is None and "peer_mode" in dropped
    again, _ = GenerateRequest.from_record(GenerateRequest(model="m", prompt="p", peer_mode="switch").to_dict())
    assert again.mode is FusionMode.SWITCH
