"""The demo lab: how the ShapesWorld artefacts were made and how CRAFT is measured there.

Training the demo base model (`base_model`, `vocabulary`, `autoencoder_training`,
`base_training`), the oracle (`oracle_training`), the shipped backbone and LoRAs
(`asset_training`), the quality benchmark (`benchmark`, `evaluation`, `parallel_training`) and
their command line (`commands`, run as `python -m craftstudio.demo ...`). The application never
imports this package at run time.
"""
