"""Every refusal or message the docs quote is one the program can print (issue 14: operator.md quoted
refusal texts that differed from the program's).

A quoted text is a "…" in a docs line that speaks of a refusal, an error or what the program says. Numbers,
`N` and `REF` in a quote stand for any value; `…` for any text. Each quote must match text in firmware/.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CUE = re.compile(r"refus|error|says|reads|prints|warns|answers", re.I)
QUOTE = re.compile(r'"([A-Za-z][^"`{}]{5,})"')
SKIP = re.compile(r"^[a-z_]+$|^--")  # a bare key name or an option, not a message


def quoted_messages() -> list[tuple[str, str]]:
    """(where, text) of every quoted message in README.md and docs/*.md: quotes in a sentence with a cue."""
    found = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text()
        for para in re.split(r"\n\s*\n|\n(?=\s*[-|#*]|\s*\d+\. )", text):
            flat = " ".join(line.strip() for line in para.splitlines())
            for sentence in re.split(r"(?<=[.;:])\s+(?=[A-Z(])", flat):
                if CUE.search(sentence):
                    found += [(page.name, q) for q in QUOTE.findall(sentence) if not SKIP.search(q)]
    return found


PLACEHOLDER = re.compile(r"…|\.\.\.|\d+(?:[.:]\d+)?|\bN\b|\bREF\b|\b[A-Z]{2,}(?:-[A-Z0-9]+)+\b")
"""What stands for a value in a quote: numbers and times, `N`, `REF`, references like OP-REF, and `…`."""


def fragments(text: str) -> list[str]:
    """The fixed parts of a quote (between its values) that the program must contain word for word."""
    return [f.strip() for f in PLACEHOLDER.split(text) if len(f.strip()) >= 4]


def test_every_quoted_message_exists_in_the_code() -> None:
    source = "\n".join(p.read_text() for p in (REPO / "firmware").rglob("*.py"))
    source += "\n".join(p.read_text() for p in (REPO / "firmware").rglob("*.js"))
    flat = re.sub(r'"\s*\n\s*f?"', "", source)  # Python strings continued over lines, joined
    quotes = quoted_messages()
    assert len(quotes) >= 10, "the extractor found almost nothing: the docs' quoting changed?"
    missing = [f"{where}: {text!r} (no {part!r})" for where, text in quotes for part in fragments(text)
               if part not in flat]
    assert not missing, "quoted in the docs but printed by nothing:\n" + "\n".join(missing)


def test_a_made_up_refusal_is_caught() -> None:
    assert fragments("deployment 3 has 2 undecided alerts (14:02)") == ["deployment", "undecided alerts ("]
    assert fragments("Watchlist OP-REF: 182 accepted") == ["Watchlist", "accepted"]
