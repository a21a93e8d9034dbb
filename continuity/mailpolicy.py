"""The e-mail policy every message we write uses.

Python's modern folder (policy.default) drops the space at a fold between two RFC 2047 encoded words, so a
long localised subject such as "Údržba skončila: chat – overte …" arrives as "chat– overte". Subjects with
non-ASCII text are folded by the older `email.header.Header` encoder instead, which keeps every space inside
the encoded words; everything else (addresses with display names, bodies) stays with the modern policy.
"""

from __future__ import annotations

from email.header import Header
from email.policy import EmailPolicy


class MailPolicy(EmailPolicy):
    def _subject(self, name: str, value: str) -> str | None:
        text = str(value)
        if name.lower() != "subject" or text.isascii():
            return None
        limit = self.max_line_length or 78
        encoded = Header(text, "utf-8", maxlinelen=limit, header_name=name).encode(linesep=self.linesep)
        return f"{name}: {encoded}{self.linesep}"

    def fold(self, name: str, value: str) -> str:
        return self._subject(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = self._subject(name, value)
        return folded.encode("ascii") if folded is not None else super().fold_binary(name, value)


MAIL = MailPolicy()
SMTP_MAIL = MailPolicy(linesep="\r\n")
