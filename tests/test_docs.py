"""The README and docs/ run as written: every `uv run collapse ...` line of their shell blocks composes and
validates (as the command would, before any compute), the other commands' arguments parse, and every link
points to a file (and heading) in the repository, never outside it."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import sys
import tomllib
import unicodedata
from pathlib import Path

import pytest

from collapse.errors import ConfigError
from collapse.hydra_config import compose
from collapse.validate import validate

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = ("", "bash", "sh", "shell", "console")
FENCE = re.compile(r"^(```+|~~~+)\s*(\S*)")


def blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """The fenced code blocks of a markdown file: (info string, line number of the first line, lines)."""
    return blocks_in(path.read_text(encoding="utf-8"), path.name)


def blocks_in(text: str, name: str = "") -> list[tuple[str, int, list[str]]]:
    out, info, start, body, fence = [], None, 0, [], ""
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line.strip())
        if info is None and m:
            info, start, body, fence = m.group(2).lower(), n + 1, [], m.group(1)
        elif info is not None and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            out.append((info, start, body))
            info = None
        elif info is not None:
            body.append(line)
    assert info is None, f"{name}: unclosed code block from line {start - 1}"
    return out


def commands(program: str) -> list[tuple[str, list[str]]]:
    """Every line of a shell block in README.md and docs/*.md that runs `uv run <program>`, as
    ("file:line", the arguments after the program, split as the shell would, comments dropped)."""
    found = []
    for path in PAGES:
        for info, start, body in blocks(path):
            if info not in SHELL:
                continue
            for i, line in enumerate(body):
                line = line.strip().removeprefix("$ ")
                if not line.startswith(f"uv run {program}"):
                    continue
                words = shlex.split(line, comments=True)
                if words[:3] == ["uv", "run", program]:
                    found.append((f"{path.relative_to(ROOT)}:{start + i}", words[3:]))
    return found


def _sweep_values(value: str) -> list[str]:
    """A Hydra sweep value `a,b,c` as its choices; commas inside brackets or quotes are not separators."""
    parts, depth, quote, current = [], 0, "", ""
    for ch in value:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    return [*parts, current]


def override_sets(args: list[str]) -> list[list[str]]:
    """The Hydra overrides of a `collapse` command line, one list per job to check: Hydra's own flags and
    keys dropped (`-m`, `--cfg job`, `hydra/launcher=...`, `hydra.*`), and each value of a sweep `key=a,b`
    checked once, the other keys at their first value."""
    overrides, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg in ("--cfg", "-c", "--package", "-p"):
            i += 2
            continue
        if arg.startswith("-") or arg.startswith(("hydra/", "hydra.", "+hydra", "~hydra")):
            i += 1
            continue
        overrides.append(arg)
        i += 1
    choices = [(o.split("=", 1)[0], _sweep_values(o.split("=", 1)[1])) if "=" in o else (o, None)
               for o in overrides]
    first = [o if values is None else f"{key}={values[0]}" for o, (key, values) in zip(overrides, choices)]
    jobs = [first]
    for j, (key, values) in enumerate(choices):
        for value in (values or [])[1:]:
            jobs.append([*first[:j], f"{key}={value}", *first[j + 1:]])
    return jobs


COLLAPSE = commands("collapse")


@pytest.fixture
def doc_modules(tmp_path, monkeypatch):
    """The Python files the docs show (a block whose first line is `# name.py ...`), importable, as a reader
    who saved them on the PYTHONPATH would have them (`curate.scorer=my_verifiers:fewer_repeats`)."""
    for path in PAGES:
        for info, _, body in blocks(path):
            m = re.match(r"#\s*(\w+)\.py\b", body[0].strip()) if info == "python" and body else None
            if m:
                (tmp_path / f"{m.group(1)}.py").write_text("\n".join(body) + "\n", encoding="utf-8")
                sys.modules.pop(m.group(1), None)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


def test_the_docs_run_collapse():
    assert len(COLLAPSE) >= 40, COLLAPSE  # the README and the pages show many; a parser change lost them


@pytest.fixture
def checkpoint(tmp_path, monkeypatch):
    """The pretrained folder the docs name (checkpoints/gpt2): a tiny random GPT-2 of 128 positions, in the
    directory the commands run in."""
    from tests.test_pretrained import gpt2_folder

    monkeypatch.chdir(tmp_path)
    gpt2_folder(tmp_path / "checkpoints" / "gpt2", positions=128)


@pytest.mark.parametrize("where,args", COLLAPSE, ids=[w for w, _ in COLLAPSE])
def test_collapse_command_composes_and_validates(where, args, doc_modules, checkpoint):
    for overrides in override_sets(args):
        try:
            validate(compose(*overrides))
        except ConfigError as e:
            pytest.fail(f"{where}: uv run collapse {' '.join(overrides)}: {e}")


def _entry_points() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


class _Parsed(Exception):
    pass


@pytest.mark.parametrize("program", sorted(set(_entry_points()) - {"collapse"}))
def test_tool_commands_parse(program, monkeypatch):
    """collapse-report, collapse-lineage, collapse-bench: each line's arguments parse with the command's own
    argparse parser (stopped right after parsing: nothing runs)."""
    module, func = _entry_points()[program].split(":")
    main = getattr(importlib.import_module(module), func)
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    for where, args in commands(program):
        with pytest.raises(_Parsed):
            try:
                main(args)
            except SystemExit as e:
                pytest.fail(f"{where}: uv run {program} {shlex.join(args)}: argparse refused it (exit {e.code})")


def test_readme_setup_commands():
    """The README's set-up section holds the two commands a fresh machine needs, exactly."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Set-up", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#")[0].strip() for info, _, body in blocks_in(section) for line in body]
    assert "uv run collapse" in lines and "uv run pytest" in lines


# --- links -------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")


def prose(path: Path, spans: bool = False) -> str:
    """The file without its fenced code blocks and (unless `spans`) inline code spans: links there are not
    links."""
    lines, fence = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        m = FENCE.match(line.strip())
        if not fence and m:
            fence = m.group(1)
        elif fence and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            fence = ""
        elif not fence:
            lines.append(line)
    text = "\n".join(lines)
    return text if spans else re.sub(r"(`+)(?:(?!\1).)+?\1", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"(`+)(.+?)\1", r"\2", heading.strip()).lower()
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path, spans=True).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links() -> list[tuple[Path, str]]:
    return [(path, target) for path in PAGES
            for target in LINK.findall(prose(path)) + HTML.findall(prose(path))]


def test_pages_have_links():
    assert len(links()) >= 40


@pytest.mark.parametrize("path,target", links(), ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in links()])
def test_link_points_into_the_repository(path, target):
    assert not re.match(r"^[a-z][a-z0-9+.-]*:|^//", target, re.I), (
        f"{path.relative_to(ROOT)}: {target} points outside the repository")
    file_part, _, fragment = target.partition("#")
    dest = (path.parent / file_part).resolve() if file_part else path
    assert dest.is_relative_to(ROOT), f"{path.relative_to(ROOT)}: {target} leaves the repository"
    assert dest.exists(), f"{path.relative_to(ROOT)}: {target} does not exist"
    if fragment and dest.suffix == ".md":
        assert fragment in anchors(dest), f"{path.relative_to(ROOT)}: {target}: no such heading in {dest.name}"


def test_no_pointer_outside_the_repository():
    """The docs name no path of the surrounding workspace (shared/...): they describe, not point."""
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?<![\w.-])(\.\./)*shared/", text), f"{path.relative_to(ROOT)} points at shared/"


def test_the_package_layout_page_names_every_module():
    """docs/package-layout.md is drawn from the code: every module of the package is named there (by its path
    below collapse/, or its file name in a row of its folder)."""
    page = (ROOT / "docs" / "package-layout.md").read_text()
    missing = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "collapse").rglob("*.py"))
               if p.name != "__init__.py" and p.name not in page and str(p.relative_to(ROOT / "collapse")) not in page]
    assert not missing, missing


def test_the_run_directory_page_describes_every_array_of_the_layout():
    """The run directory's file names have one home (collapse.store.ARRAYS); docs/run-directory.md describes each."""
    from collapse.store import ARRAYS

    page = (ROOT / "docs" / "run-directory.md").read_text()
    missing = [name for names in ARRAYS.values() for name in names if f"{name}.npy" not in page]
    assert not missing, missing
