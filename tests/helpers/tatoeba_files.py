"""Tatoeba v1 files of one language pair in a fake data root (``root/tatoeba/v1``), as the readers expect them."""

from __future__ import annotations

from pathlib import Path


def write_tatoeba_pair(root: Path, code: str, xx: list[str], en: list[str]) -> None:
    """``tatoeba.{code}-eng.{code}`` and ``tatoeba.{code}-eng.eng``, one line per sentence."""
    folder = root / "tatoeba" / "v1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"tatoeba.{code}-eng.{code}").write_text("\n".join(xx) + "\n", encoding="utf-8")
    (folder / f"tatoeba.{code}-eng.eng").write_text("\n".join(en) + "\n", encoding="utf-8")
