"""The compute engine: torch, diffusers and peft. No Qt, no SQLite; takes paths and dataclasses."""
