"""Choose the language of an automatic answer: Content-Language, then offline detection, then the default.

Detection uses py3langid (the langid.py model: 97 languages, a few MB inside the wheel, no network, deterministic).
Measured on short support mails it separated en/hu/sk/pl/cs where langdetect (random unless seeded, weak on one-line
mails) did not, and lingua, as accurate, weighs about 100 MB. The model is loaded on first use (about a second;
`warm_up` does it ahead) and only a confident guess is trusted: probabilities are calibrated over all 97 languages,
so "Thanks!" or a German mail stays below CONFIDENCE and gets the organisation's default.

Czech is not shipped, but Slovak is its nearest language (mutually intelligible, and the model splits short texts
between the two), so a Czech mail is answered in Slovak: the probability of a language we do not serve counts
toward its NEAREST served one. The same holds for Content-Language: cs.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import Sequence
from typing import Any

from continuity.autoreply.message import Incoming

CONFIDENCE = 0.7  # summed probability a served language needs before detection beats the default
MAX_DETECT_CHARS = 3000  # the start of a mail says enough; longer text only costs time
MIN_LETTERS = 4  # fewer letters than this: no guess at all

# A language we do not serve -> the served languages closest to it, best first.
NEAREST: dict[str, tuple[str, ...]] = {"cs": ("sk",), "sk": ("cs",)}
_ALIASES = {"cz": "cs"}  # a frequent mistake in Content-Language

_QUOTE_START_RE = re.compile(
    r"""^(?:--\s*|_{5,}|-{3,}.*|>.*
         |(?:from|od|feladó|von|de|sent|wysłano|odoslané|küldve|date|datum|data):\s.*
         |.*\b(?:wrote|írta|napísal|napisał|napsal|schrieb)(?:\(a\))?\s*:\s*)$""",
    re.IGNORECASE | re.VERBOSE,
)
_NOISE_RE = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+|[\d_#*=+~<>|/\\]+")
_LETTER_RE = re.compile(r"[^\W\d_]")

_lock = threading.Lock()
_model: list[Any] = []  # [identifier] once loaded, [None] if py3langid is missing or broken


def _identifier() -> Any:
    """The py3langid identifier over all its languages, with probabilities; loaded once, thread-safe."""
    with _lock:
        if not _model:
            try:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _model.append(LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True))
            except Exception:  # a missing or broken optional model must not stop the responder
                _model.append(None)
        return _model[0]


def warm_up() -> bool:
    """Load the detection model now, so the first customer mail does not wait for it; False if unavailable."""
    return _identifier() is not None


def _served(served: Sequence[str]) -> tuple[str, ...]:
    return _served_codes(tuple(served))


@functools.lru_cache(maxsize=64)
def _served_codes(served: tuple[str, ...]) -> tuple[str, ...]:
    """Primary subtags of the served locales, in order (cached: the same few tuples are asked every message)."""
    seen: dict[str, None] = {}
    for tag in served:
        code = str(tag).strip().lower().replace("_", "-").split("-")[0]
        if code:
            seen.setdefault(code, None)
    return tuple(seen)


def _serve(code: str, served: tuple[str, ...]) -> str | None:
    """The served language to answer `code` in: itself, or its nearest served relative, or None."""
    code = _ALIASES.get(code, code)
    if code in served:
        return code
    return next((near for near in NEAREST.get(code, ()) if near in served), None)


def detection_text(msg: Incoming) -> str:
    """Subject and the customer's own words: quoted replies, signatures, links and numbers cut away."""
    lines = []
    kept = 0  # characters kept since the first one that is not blank: past MAX_DETECT_CHARS nothing counts
    for line in msg.text.splitlines():
        if _QUOTE_START_RE.match(line.strip()):
            if line.lstrip().startswith(">"):
                continue  # an inline quote: the customer may write again below it
            break  # a signature or the start of a quoted earlier mail: the rest is not theirs
        lines.append(line)
        if kept or line.strip():
            kept += len(line) + 1
            if kept > MAX_DETECT_CHARS:
                break
    own = "\n".join(lines).strip() or msg.text[:MAX_DETECT_CHARS]
    subject = re.sub(r"^(?:\s*(?:re|fwd?|aw|wg|vá|odp|pd|tr)\s*:\s*)+", "", msg.subject, flags=re.IGNORECASE)
    text = f"{subject}\n{own}"[:MAX_DETECT_CHARS]
    return _NOISE_RE.sub(" ", text)


def _enough_letters(text: str) -> bool:
    """At least MIN_LETTERS letters (counted only that far)."""
    return sum(1 for _ in itertools.islice(_LETTER_RE.finditer(text), MIN_LETTERS)) >= MIN_LETTERS


def detect_language(text: str, served: Sequence[str]) -> tuple[str, float] | None:
    """The served language `text` is most likely in and its summed probability, or None if no guess is possible."""
    codes = _served(served)
    if not codes or not _enough_letters(text):
        return None
    identifier = _identifier()
    if identifier is None:
        return None
    totals: dict[str, float] = {}
    try:
        columns = _columns(identifier, codes)
        if columns is not None:
            # The model's probability vector, summed over the few columns each served language takes: the
            # same sums as walking rank()'s 97 (label, probability) pairs, without sorting and mapping them all.
            scores = identifier._decide(text)
            for target, idx in columns.items():
                totals[target] = float(scores[idx].sum())
        else:
            for lang, prob in identifier.rank(text):
                chosen = _serve(str(lang), codes)
                if chosen is not None:
                    totals[chosen] = totals.get(chosen, 0.0) + float(prob)
    except Exception:
        return None
    if not totals:
        return None
    best = max(totals, key=lambda code: (totals[code], code))
    return best, totals[best]


_column_cache: dict[tuple[int, tuple[str, ...]], dict[str, Any] | None] = {}


def _columns(identifier: Any, codes: tuple[str, ...]) -> dict[str, Any] | None:
    """Served language -> the model's columns counting toward it (itself and its NEAREST kin), per identifier
    and served tuple (both fixed for the life of a process); None when the model does not expose its classes."""
    key = (id(identifier), codes)
    if key not in _column_cache:
        columns: dict[str, Any] | None = None
        classes = getattr(identifier, "nb_classes", None)
        if classes is not None and callable(getattr(identifier, "_decide", None)):
            import numpy as np

            found: dict[str, list[int]] = {}
            for i, lang in enumerate(classes):
                target = _serve(str(lang), codes)
                if target is not None:
                    found.setdefault(target, []).append(i)
            columns = {target: np.asarray(idx, dtype=np.intp) for target, idx in found.items()}
        _column_cache[key] = columns
    return _column_cache[key]


def choose_language(msg: Incoming, served: Sequence[str], default: str) -> str:
    """Content-Language if served, else offline detection on subject+text if confident and served, else default.

    Never raises: any failure gives the default.
    """
    try:
        codes = _served(served)
        if msg.content_language:
            declared = _serve(msg.content_language, codes)
            if declared is not None:
                return declared
        guess = detect_language(detection_text(msg), codes)
        if guess is not None and guess[1] >= CONFIDENCE:
            return guess[0]
    except Exception:  # a language guess is never worth a crash
        pass
    return default
