"""Run every Python example in the README, the docs and examples/, so the docs never rot.

Each fenced ```python block in README.md and docs/**/*.md is a complete program, and so is each
file in examples/. Each one runs in a fresh interpreter (the registries are process-global, so
two examples defining a tool of the same name must not share a process), with warnings as
errors, and must exit 0 without printing an "Exception ignored" report (an unawaited coroutine,
an async generator finalised too late ...).

Snippets that are deliberately not runnable are fenced ```pycon or ```text instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 30

# An opening fence: indentation, three or more backticks, the language, anything after it
# (mkdocs-material allows attributes such as title="...").
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})[ \t]*(?P<lang>[\w+-]*)[^\n`]*$")


@dataclass(frozen=True)
class Example:
    """One runnable program and where it came from."""

    path: Path
    line: int
    source: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def _python_blocks(path: Path) -> list[Example]:
    """Return the ```python blocks of a Markdown file, dedented, with their 1-based line."""
    examples: list[Example] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match["indent"], match["fence"], match["lang"].lower()
        start = i + 1
        close = re.compile(rf"^[ \t]*{fence}`*[ \t]*$")
        j = start
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        if lang in {"python", "py", "python3"}:
            body = [
                line[len(indent) :] if line.startswith(indent) else line for line in lines[start:j]
            ]
            examples.append(Example(path, start, "\n".join(body) + "\n"))
        i = j + 1
    return examples


def _collect() -> list[Example]:
    examples: list[Example] = []
    markdown = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    for path in markdown:
        if path.is_file():
            examples.extend(_python_blocks(path))
    examples.extend(
        Example(path, 1, path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "examples").glob("*.py"))
    )
    return examples


EXAMPLES = _collect()


def test_examples_were_found() -> None:
    # Guards the collector itself: a broken regex must not turn this module into a no-op.
    assert any(e.path.name == "README.md" for e in EXAMPLES)
    assert any(e.path.parent.name == "examples" for e in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs(example: Example, tmp_path: Path) -> None:
    if example.path.suffix == ".py":
        script = example.path
    else:
        # A real file (not `python -c`) so tracebacks show the offending line.
        script = tmp_path / f"{example.path.stem}_{example.line}.py"
        script.write_text(example.source, encoding="utf-8")
    try:
        proc = subprocess.run(
            [sys.executable, "-W", "error", str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(f"{example.id} did not finish within {TIMEOUT_S}s\n{stderr}")
    detail = (
        f"{example.id} exited with {proc.returncode}\n"
        f"--- source ---\n{example.source}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )
    assert proc.returncode == 0, detail
    assert "Exception ignored" not in proc.stderr, detail
