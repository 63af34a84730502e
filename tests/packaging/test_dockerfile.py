"""The Dockerfile's rules, checked without a Docker engine (the image is built for real by
.ci/compose-e2e.sh, not by this suite): a Debian bookworm base with Debian's python3 3.11, the same
distribution deploy/local-base-image.sh builds; runtime install without dev extras, a non-root user,
`dnsctl` as the entry point, nothing secret in the image. The one part that can run here does:
the build context the Dockerfile copies is assembled (honouring .dockerignore) and `pip wheel`
builds the project from it exactly as the image's `pip install .` would.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.processes import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SECRET_WORDS = re.compile(r"token|secret|password|passwd|credential|access_key|private_key", re.IGNORECASE)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def of(kind: str) -> list[str]:
    return [args for word, args in instructions() if word == kind]


def ignore_patterns() -> list[str]:
    return [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def _matches(pattern: str, rel: str) -> bool:
    """Docker's rule: a pattern matches a path or any directory above it ("**/" at any depth)."""
    parts = Path(rel).parts
    if pattern.startswith("**/"):
        return any(fnmatch.fnmatch(p, pattern.removeprefix("**/")) for p in parts)
    return any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1))


def ignored(rel: str) -> bool:
    """Whether .dockerignore keeps `rel` out of the build context: the last matching pattern wins,
    and a "!" pattern brings a path back in."""
    out = False
    for pattern in ignore_patterns():
        negated = pattern.startswith("!")
        if _matches(pattern.removeprefix("!"), rel):
            out = not negated
    return out


def copy_sources() -> list[str]:
    sources = []
    for args in of("COPY"):
        words = [w for w in args.split() if not w.startswith("--")]
        sources += words[:-1]
    return sources


LOCAL_BASE = ROOT / "deploy" / "local-base-image.sh"


def test_base_is_debian_bookworm_with_its_python_311():
    assert of("FROM") == ["${BASE_IMAGE}"]  # one stage, one image, the base chosen by a build arg
    (arg,) = [a for a in of("ARG") if a.startswith("BASE_IMAGE=")]
    default = arg.split("=", 1)[1]
    # Debian bookworm's python3 is 3.11: the slim Debian image, or Python's own bookworm image.
    assert re.fullmatch(r"(debian:bookworm-slim|python:3\.11(\.\d+)?-slim-bookworm)(@sha256:[0-9a-f]{64})?", default), default
    if default.startswith("debian:"):
        assert any("apt-get install" in run and "python3" in run and "python3-venv" in run for run in of("RUN"))


def test_the_local_base_is_the_same_distribution():
    """Where no registry answers, the base is made from Debian's packages: bookworm, python3, venv."""
    script = LOCAL_BASE.read_text()
    assert re.search(r"^SUITE=bookworm$", script, re.MULTILINE)
    assert "debootstrap --variant=minbase" in script
    assert '--include="$PACKAGES"' in script
    assert "docker import" in script
    assert LOCAL_BASE.stat().st_mode & 0o111, "deploy/local-base-image.sh must be executable"
    # The tree's top folder becomes the image's "/": mktemp's 0700 would lock the image's user out.
    assert script.index('chmod 755 "$ROOTFS"') < script.index("debootstrap --variant=minbase")
    # The base holds exactly what the Dockerfile installs on debian:bookworm-slim, so the image is
    # the same whichever base it was built on (the Dockerfile's apt step skips what is there).
    (base,) = re.findall(r"^PACKAGES=(\S+)$", script, re.MULTILINE)
    (run,) = [r for r in of("RUN") if "apt-get install" in r]
    (dockerfile,) = re.findall(r'packages="([^"]+)"', run)
    assert set(base.split(",")) == set(dockerfile.split()) >= {"python3", "python3-venv", "ca-certificates"}
    assert "dpkg -s $packages" in run and "apt-get install -y --no-install-recommends $packages" in run
    assert "rm -rf /var/lib/apt/lists/*" in run  # no package lists left in the image


def test_runs_as_a_non_root_user():
    users = of("USER")
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # The USER switch comes after every RUN, so nothing runs as root at container start.
    words = [w for w, _ in instructions()]
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    assert any("useradd" in run and user in run for run in of("RUN"))


def test_entrypoint_is_dnsctl_in_exec_form():
    assert json.loads(of("ENTRYPOINT")[-1]) == ["dnsctl"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "dnsctl" in scripts


def test_installs_the_project_without_dev_extras():
    installs = [run for run in of("RUN") if "pip install" in run]
    assert installs
    for run in installs:
        assert "[" not in run, f"extras installed in the image: {run}"
        assert " -e " not in f" {run} ", "editable installs point at the build context"
        assert "requirements" not in run


def test_nothing_secret_is_baked_in():
    for kind in ("ENV", "ARG", "LABEL"):
        for args in of(kind):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or args.split()[:1]
            assert not any(SECRET_WORDS.search(n) for n in names), f"{kind} {args}"
    for source in copy_sources():
        assert not SECRET_WORDS.search(source) and not source.startswith(".env"), source
    for must in (".env", ".dnsctl", ".venv", ".git"):
        assert ignored(must), f".dockerignore must exclude {must}"
    assert ignored("services/__pycache__/x.pyc")


def context_files(source: str) -> list[str]:
    """The repository files a COPY of `source` takes from the build context (relative paths)."""
    roots = [p for p in ROOT.iterdir() if not ignored(p.name)] if source == "." else [ROOT / source]
    files = []
    for root in roots:
        for file in [root] if root.is_file() else root.rglob("*"):
            rel = file.relative_to(ROOT).as_posix()
            if file.is_file() and not ignored(rel):
                files.append(rel)
    return sorted(files)


def test_every_copied_path_exists_and_is_in_the_build_context():
    for source in copy_sources():
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
        assert source == "." or not ignored(source), f"COPY {source}: excluded by .dockerignore"


def test_the_build_context_is_the_project_and_nothing_else():
    files = {f for source in copy_sources() for f in context_files(source)}
    assert {"pyproject.toml", "README.md", "cli/main.py", "planner/fleets/demo.toml", "enactor/protocol.py"} <= files
    assert {f.split("/")[0] for f in files} == {"pyproject.toml", "README.md", "services", "cli", "lab", "planner", "enactor"}
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def _build_context(dest: Path) -> None:
    for source in copy_sources():
        for rel in context_files(source):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)


@pytest.mark.slow
def test_the_image_install_step_builds_a_complete_package(tmp_path):
    """`pip install .` from just the copied files yields the CLI and the data files it needs."""
    context, out = tmp_path / "context", tmp_path / "wheels"
    context.mkdir()
    _build_context(context)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("dnsctl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cli/main.py" in names
    assert "planner/fleets/demo.toml" in names
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "dnsctl = cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_compose_volumes_mount_points_belong_to_the_image_user():
    """A new named volume takes its mount point's owner from the image: each must exist, owned by
    the unprivileged user, or the `keys` one-shot and the services could not write to them."""
    from services import compose_file

    env = " ".join(of("ENV"))
    assert f"DNSCTL_STATE_DIR={compose_file.STATE_DIR}" in env
    (run,) = [r for r in of("RUN") if "useradd" in r]
    mkdir = re.search(r"mkdir -p ([^&]+)", run).group(1).split()
    assert {str(p) for p in compose_file.VOLUMES.values()} <= set(mkdir)
    assert f"chown -R dnsctl:dnsctl {compose_file.STATE_DIR}" in run
    assert f"chmod 700 {compose_file.VOLUMES['plan-key']}" in run  # the private key's folder: the user alone
