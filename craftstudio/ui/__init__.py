"""Widgets only. Each widget binds to a view-model in `craftstudio.state`; no torch, no engine."""
