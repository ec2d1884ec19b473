"""ShapesWorld, the built-in demo.

What the application uses at run time lives here: the world itself (`world`, with its
`shapes` and `styles`), the oracle CNN that names a picture's shape and style (`oracle`), and
where the shipped artefacts are (`assets`, torch-free). The tooling that made those artefacts
and measures CRAFT in this world (training the demo model and the oracle, the quality
benchmark, parallel training) is the lab, `craftstudio.demo.lab`, run as
`python -m craftstudio.demo ...`.

Nothing is imported here: `craftstudio.demo.assets` must stay importable without torch.
"""
