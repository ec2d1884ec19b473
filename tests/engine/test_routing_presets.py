"""The B-LoRA routing preset (arXiv 2403.14572): content and style confined to one block each,
at inference and in training, on the SD1.x and SDXL layouts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import GenerateRequest, LoraRef
from craftstudio.engine.generation import generate
from craftstudio.engine.loader import load_model
from craftstudio.engine.routing import CONTENT, NONE, STYLE, LayerSets, describe, target_modules
from tests.kit.tiny_loras import random_lora, save_peft

CPU = torch.device("cpu")
BLOCKS = {"sd1": ("up_blocks.1.attentions.0", "up_blocks.1.attentions.1"),
          "sdxl": ("up_blocks.0.attentions.0", "up_blocks.0.attentions.1")}


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_b_lora_puts_each_role_in_its_one_block(family, tiny_sd1, tiny_sdxl):
    model = tiny_sd1 if family == "sd1" else tiny_sdxl
    unet = load_model(model, CPU, torch.float32).unet
    blocks = describe(unet, family, preset="b-lora")
    assert blocks[CONTENT] == [BLOCKS[family][0]] and blocks[STYLE] == [BLOCKS[family][1]]
    assert blocks[NONE] and all(not b.startswith(BLOCKS[family]) for b in blocks[NONE])
    # The CRAFT sets hold the B-LoRA blocks in the same roles, so B-LoRAs also route under CRAFT.
    craft = LayerSets.for_family(family)
    assert craft.role_of(BLOCKS[family][0] + ".to_q") == CONTENT and craft.role_of(BLOCKS[family][1]) == STYLE


def test_an_unknown_preset_is_one_sentence():
    with pytest.raises(RequestError, match="Unknown routing preset 'zip'"):
        LayerSets.for_family("sd1", preset="zip")
    with pytest.raises(RequestError, match="routing preset"):
        GenerateRequest(model="m", prompt="p", routing_preset="zip").validate()


def test_generation_applies_each_lora_in_its_block_only(tiny_sdxl, tmp_path):
    unet = load_model(tiny_sdxl, CPU, torch.float32).unet
    content = save_peft(random_lora(unet, seed=1), tmp_path / "c.safetensors")
    style = save_peft(random_lora(unet, seed=2), tmp_path / "s.safetensors")
    request = GenerateRequest(model=str(tiny_sdxl), prompt="a cat <c> in ink style <s>", width=32, height=32,
                              steps=2, scheduler="euler", device="cpu", content_lora=LoraRef(str(content)),
                              style_lora=LoraRef(str(style)), routing_preset="b-lora")
    result = generate(request)
    per_block = {role: sum(1 for m in target_modules(unet) if m.startswith(BLOCKS["sdxl"][i] + "."))
                 for i, role in enumerate((CONTENT, STYLE))}
    used = {role: result.details["loras"][role]["layers_used"] for role in (CONTENT, STYLE)}
    assert used == per_block and 0 < used[CONTENT] < len(target_modules(unet)) // 2
    craft = generate(dataclasses.replace(request, routing_preset="craft"))
    assert craft.details["loras"][CONTENT]["layers_used"] > used[CONTENT]
