"""Qt view-models (QtCore only): observable properties the widgets bind to.

No widgets here and never torch or the engine: state talks to the engine only through jobs
submitted to the `JobRunner`.
"""
