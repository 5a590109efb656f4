"""The report's Markdown structure: sections and subsections, their headings numbered by position."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Subsection:
    """A ``###`` heading inside a section; its number follows the section's."""

    title: str


@dataclass(frozen=True)
class Section:
    """A ``##`` heading and the paragraphs, figures and tables under it."""

    title: str
    parts: list[str | Subsection]
    numbered: bool = True


def _numbered(sections: Sequence[Section]) -> list[str]:
    """The sections' Markdown blocks, each heading numbered by its position."""
    parts: list[str] = []
    counter = 0
    for section in sections:
        if section.numbered:
            counter += 1
            parts.append(f"## {counter} {section.title}")
        else:
            parts.append(f"## {section.title}")
        sub = 0
        for part in section.parts:
            if isinstance(part, Subsection):
                sub += 1
                parts.append(f"### {counter}.{sub} {part.title}")
            else:
                parts.append(part)
    return parts


def document(head: Sequence[str], sections: Sequence[Section]) -> str:
    """The whole document: ``head`` (title and opening paragraphs), then the numbered sections, a blank
    line between blocks."""
    return "\n\n".join([*head, *_numbered(sections)]) + "\n"
