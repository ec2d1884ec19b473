"""ShapesWorld, the built-in demo: a procedural world of shapes drawn in styles (`world`), an
oracle CNN that names a picture's shape and style (`oracle`), the demo base model's trainer
(`base_training`) and where the shipped artefacts are (`assets`, torch-free).

Nothing is imported here: `craftstudio.demo.assets` must stay importable without torch.
"""
