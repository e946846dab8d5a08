"""Entity tags: IOB1/IOB2 checks and conversion, conlleval's chunking, and token spans <-> tags."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alrun.errors import AlrunError


def check_tag(tag: str, what: str) -> None:
    """`tag` must be O, B-TYPE or I-TYPE; `what` names it (file, line, token) in the error."""
    if tag != "O" and (len(tag) < 3 or tag[1] != "-" or tag[0] not in "BI"):
        raise AlrunError(
            f"{what} is not O, B-TYPE or I-TYPE; "
            "alrun reads IOB1/IOB2 tags (convert IOBES/BILOU first, and give every B-/I- a type)"
        )


def to_iob2(tags: Sequence[str], where: str) -> list[str]:
    """IOB1 or IOB2 -> IOB2: an I-X that does not continue an X entity starts one (B-X)."""
    out: list[str] = []
    prev = "O"
    for k, tag in enumerate(tags):
        check_tag(tag, f"{where}: tag {tag!r} (token {k + 1})")
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def entities(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end exclusive, type) chunks, found exactly as conlleval finds them.

    An I-X after O or after another type starts an entity; a B-X always starts one; a chunk
    ends before a B, an O or a type change.
    """
    chunks: list[tuple[int, int, str]] = []
    start: int | None = None
    prev_tag, prev_type = "O", ""
    for i, t in enumerate([*tags, "O"]):
        tag, typ = ("O", "") if t == "O" else (t[0], t[2:])
        if start is not None and (
            (prev_tag in "BI" and tag in "BO") or (prev_tag != "O" and prev_type != typ)
        ):
            chunks.append((start, i, prev_type))
            start = None
        if tag == "B" or (prev_tag == "O" and tag == "I") or (tag != "O" and prev_type != typ):
            start = i
        prev_tag, prev_type = tag, typ
    return chunks


def spans_to_tags(n: int, spans: Iterable[tuple[int, int, str]]) -> list[str]:
    """(first token, last token inclusive, label) spans -> IOB2 tags; spans must not overlap."""
    tags = ["O"] * n
    for a, b, label in spans:
        tags[a] = f"B-{label}"
        for k in range(a + 1, b + 1):
            tags[k] = f"I-{label}"
    return tags


def spans_from_tags(tokens: Sequence[dict[str, Any]], tags: Sequence[str]) -> list[dict[str, Any]]:
    """IOB tags -> Prodigy spans with character offsets, chunked the way conlleval chunks."""
    return [
        {
            "start": tokens[a]["start"],
            "end": tokens[b - 1]["end"],
            "token_start": a,
            "token_end": b - 1,
            "label": label,
        }
        for a, b, label in entities(tags)
    ]
