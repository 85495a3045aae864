"""The README is a front door: short, with both set-up commands and the first tasks near the top; every link in
it and in docs/ resolves; no file in the repository names a development machine's absolute paths."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A development machine's absolute paths: the work tree, a home folder, the root account's files.
MACHINE_PATH = re.compile(r"(?<![\w.])(?:/work/(?:main|shared)|/root/|/home/(?!user\b)[a-z][\w-]*/)")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 320, f"README has {len(lines)} lines: move depth to docs/"
    top = "\n".join(lines[:80])
    assert "pip install -e '.[app]' && .venv/bin/cifar10 app" in top
    assert "pip install -e '.[dev]' && .venv/bin/python -m pytest" in top
    assert "cifar10 classify " in top and "cifar10 train --data " in top
    assert "sudo apt install " in top  # the Linux packages come before the commands that need them


def test_every_markdown_link_resolves():
    broken = []
    for page in markdown_files():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_no_development_machine_paths_in_tracked_files():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        path = ROOT / name
        if (path.suffix in {".png", ".jpg", ".onnx", ".zip", ".wasm", ".mjs"} or not path.is_file()
                or name == "tests/test_docs.py"):  # binaries, and this file's own pattern
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name}: {match.group(0)}" for match in MACHINE_PATH.finditer(text)]
    assert not found, "absolute paths of a development machine:\n" + "\n".join(found[:20])
