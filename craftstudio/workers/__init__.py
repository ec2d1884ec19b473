"""Background jobs for the GUI (QtCore only).

One `JobRunner` runs jobs on one QThread, in submission order. Jobs import the engine lazily
inside `run`, so importing this package never loads torch and the window opens first.
"""
