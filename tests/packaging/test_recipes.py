"""The CI and pre-commit recipes of examples/ci, run as written in clean virtualenvs (issue 12 item 8).

The recipes install reconciler from its repository; here "the repository" is a copy of this
checkout (a file:// URL), so nothing but the package index is reached. Each `run:` step of the
GitHub workflow is executed by bash in a fresh virtualenv, from a policy repository holding a copy
of policies/; the pre-commit recipe is run by pre-commit itself (`pre-commit run --all-files`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "examples" / "ci"
SKIP = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "build",
                              ".reconciler", "bench", "tests")  # fmt: skip


def checkout_copy(tmp: Path) -> Path:
    """The reconciler repository as a pip-installable directory (a copy: the build writes into it)."""
    copy = tmp / "reconciler-src"
    shutil.copytree(ROOT, copy, ignore=SKIP)
    return copy


def fresh_venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    return where / "bin"


def policy_repo(tmp: Path) -> Path:
    repo = tmp / "policy-repo"
    shutil.copytree(ROOT / "policies", repo / "policies")
    return repo


def environment(bin_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def test_the_recipes_install_ocpp_reconciler_not_the_unrelated_reconciler():
    for recipe in RECIPES.iterdir():
        text = recipe.read_text()
        assert "pip install reconciler" not in text and "ocpp-reconciler" in text, recipe.name
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    recipe = yaml.safe_load((RECIPES / "pre-commit-config.yaml").read_text())
    assert hooks[0]["id"] == recipe["repos"][0]["hooks"][0]["id"]


def test_the_github_workflow_steps_validate_the_policies_in_a_clean_virtualenv(tmp_path: Path):
    workflow = yaml.safe_load((RECIPES / "github-workflow.yml").read_text())
    steps = [s["run"] for s in workflow["jobs"]["validate"]["steps"] if "run" in s]
    assert any("pip install" in s for s in steps) and any("reconciler validate" in s for s in steps)
    source = f"ocpp-reconciler @ {checkout_copy(tmp_path).as_uri()}"
    bin_dir = fresh_venv(tmp_path / "venv")
    repo = policy_repo(tmp_path)
    env = environment(bin_dir, **{**workflow["env"], "RECONCILER_SOURCE": source})
    outputs = []
    for step in steps:
        done = subprocess.run(["bash", "-e", "-c", step], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{step}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    assert outputs[-2].startswith("reconciler ") and "(ocpp-reconciler)" in outputs[-2]
    assert "files checked: 0 errors, 0 warnings, 6 stations" in outputs[-1]


def test_the_pre_commit_recipe_runs_the_hook(tmp_path: Path):
    config = yaml.safe_load((RECIPES / "pre-commit-config.yaml").read_text())
    hook = config["repos"][0]["hooks"][0]
    assert config["repos"][0]["repo"] == "local" and "rev" not in config["repos"][0]  # no tag needed
    hook["additional_dependencies"] = [f"ocpp-reconciler @ {checkout_copy(tmp_path).as_uri()}"]
    bin_dir = fresh_venv(tmp_path / "venv")
    env = environment(bin_dir, PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), GIT_AUTHOR_NAME="t",
                      GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
                      GIT_COMMITTER_EMAIL="t@example.invalid")  # fmt: skip
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "pre-commit"], env=env, check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    repo = policy_repo(tmp_path)
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=repo, env=env, check=True, timeout=60)
    done = subprocess.run([str(bin_dir / "pre-commit"), "run", "--all-files"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reconciler validate" in done.stdout and "Passed" in done.stdout
    # and it catches a broken policy
    (repo / "policies" / "broken.yaml").write_text("apiVersion: reconciler/v1\nkind: Station\nmetadata: {name: X}\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True, timeout=60)
    done = subprocess.run([str(bin_dir / "pre-commit"), "run", "--all-files"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 1 and "Failed" in done.stdout and "broken.yaml" in done.stdout
