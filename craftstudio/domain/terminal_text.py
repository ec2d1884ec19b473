"""Text from files and images, made safe to print on a terminal.

A recorded prompt, a file name or a header value may hold escape sequences (which would move the
cursor, recolour or retitle the terminal) or line breaks (which would break a table or turn a
one-line error into several). `printable` shows such characters as visible escapes (`\x1b`);
`one_line` does the same for line breaks too.
"""

from __future__ import annotations

import unicodedata

_KEEP_MULTILINE = frozenset("\n\t")


def _escape(ch: str) -> str:
    # The JSON spelling, so JSON output stays valid JSON.
    return f"\\u{ord(ch):04x}"


# Bidirectional overrides and isolates reorder the text shown after them ("Trojan source").
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unsafe(ch: str) -> bool:
    # Cc: C0/C1 controls (ESC, CSI...); Cs: lone surrogates (bytes that were not UTF-8), which a
    # terminal cannot encode; Zl/Zp: line and paragraph separators. Joiners in emoji are kept.
    return ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")


def printable(text: str) -> str:
    """`text` with control characters other than newline and tab shown as escapes."""
    if text.isprintable():
        return text
    return "".join(_escape(ch) if ch not in _KEEP_MULTILINE and _unsafe(ch) else ch for ch in text)


def one_line(text: str) -> str:
    """`text` on one line: every control character, line breaks included, shown as an escape."""
    if text.isprintable():
        return text
    return "".join(_escape(ch) if _unsafe(ch) or ch == "\t" else ch for ch in text)
