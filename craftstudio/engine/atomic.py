"""Write files safely (temp file beside the target, renamed into place): see domain/atomic_file.py."""

from craftstudio.domain.atomic_file import atomic_path

__all__ = ["atomic_path"]
