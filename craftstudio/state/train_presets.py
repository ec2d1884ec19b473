"""Quality and memory presets of the Train page.

Quality presets set how long and how much a run learns (steps, LoRA rank, learning rate; for
the backbone steps and the top rank). Standard follows common LoRA practice (rank 16, lr 1e-4,
about 1,000 steps for 10–20 images) and, for the backbone, half the paper's 5,000 steps; Best
is the paper's backbone and a longer, higher-rank LoRA; Quick is for a first look.

Memory presets set what decides the GPU memory a run needs and nothing that changes what it
learns per image: batch size, gradient checkpointing (recomputes activations instead of storing
them: about a third slower, far less memory) and 8-bit Adam (optimizer state in 8 bits; needs
the bitsandbytes package, so a preset asks for it only where it is installed). The page picks
the preset that fits the card's memory; on the CPU memory is not the limit, so the CPU preset
turns gradient checkpointing off, which only costs time there.
"""

from __future__ import annotations

from dataclasses import dataclass

QUALITY = ("Quick", "Standard", "Best")
DEFAULT_QUALITY = "Standard"


@dataclass(frozen=True)
class QualityPreset:
    steps: int
    learning_rate: float
    rank: int = 0  # LoRA rank (0 for the backbone)
    r_max: int = 0  # backbone top rank (0 for a LoRA)


LORA_QUALITY = {
    "Quick": QualityPreset(steps=300, learning_rate=2e-4, rank=8),
    "Standard": QualityPreset(steps=1000, learning_rate=1e-4, rank=16),
    "Best": QualityPreset(steps=2500, learning_rate=1e-4, rank=32),
}
BACKBONE_QUALITY = {
    "Quick": QualityPreset(steps=500, learning_rate=1e-3, r_max=64),
    "Standard": QualityPreset(steps=2500, learning_rate=1e-3, r_max=128),
    "Best": QualityPreset(steps=5000, learning_rate=1e-3, r_max=128),
}


@dataclass(frozen=True)
class MemoryPreset:
    label: str
    min_gb: float  # the smallest card this preset is for
    batch_size: int
    gradient_checkpointing: bool
    adam_8bit: bool  # used only when bitsandbytes is installed


MEMORY = (
    MemoryPreset("8 GB", 0, batch_size=1, gradient_checkpointing=True, adam_8bit=True),
    MemoryPreset("12 GB", 11, batch_size=1, gradient_checkpointing=True, adam_8bit=False),
    MemoryPreset("16 GB", 15, batch_size=2, gradient_checkpointing=True, adam_8bit=False),
    MemoryPreset("24+ GB", 22, batch_size=4, gradient_checkpointing=False, adam_8bit=False),
    MemoryPreset("CPU", 0, batch_size=1, gradient_checkpointing=False, adam_8bit=False),
)
MEMORY_LABELS = tuple(p.label for p in MEMORY)
CPU_PRESET = "CPU"


def memory_preset(label: str) -> MemoryPreset:
    for preset in MEMORY:
        if preset.label == label:
            return preset
    raise KeyError(label)


def preset_for_device(kind: str, memory_gb: float) -> str:
    """The memory preset that fits a device: "CPU" for the CPU, else the largest preset whose
    card size the device reaches (8 GB when the size is unknown: the safe choice)."""
    if kind == "cpu":
        return CPU_PRESET
    fitting = [p for p in MEMORY if p.label != CPU_PRESET and memory_gb >= p.min_gb]
    return fitting[-1].label if memory_gb else MEMORY[0].label
