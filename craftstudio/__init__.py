"""CraftStudio: an offline studio that combines content and style LoRAs with CRAFT-LoRA."""

__version__ = "0.1.0"
