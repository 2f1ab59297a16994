"""What .ci/run needs to know about Pythons and versions (standard library only).

    python3 .ci/environments.py oldest        # the path of the oldest Python setup.cfg allows
    python3 .ci/environments.py newest        # the path of the newest Python on this machine
    python3 .ci/environments.py check-floors  # every floor in setup.cfg is pinned in floors.txt
    PYTHON .ci/environments.py versions       # PYTHON's version and its dependencies' versions

``oldest`` and ``newest`` print nothing and exit 1 (saying why on stderr) when no such Python
is found; they look in pyenv's versions and for ``python3.X`` on the PATH, and keep only
interpreters that run and can make a virtual environment.
"""
import configparser
import glob
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOORS = os.path.join(ROOT, ".ci", "floors.txt")
SHOWN = ["numpy", "matplotlib", "pillow", "threadpoolctl", "tqdm", "mnist",
         "pytest", "selenium", "nbformat", "nbclient", "ipykernel", "ipywidgets"]


def options():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))
    return parser["options"], parser["options.extras_require"]


def oldest_allowed():
    """``(3, 10)`` from ``python_requires = >=3.10``."""
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", options()[0]["python_requires"].strip())
    if not match:
        sys.exit(f"setup.cfg: python_requires should read '>=3.N', not {options()[0]['python_requires']!r}")
    return int(match[1]), int(match[2])


def interpreters():
    """``{(major, minor): (micro, path)}``: the newest patch release of each Python found."""
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = sorted(glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python3")))
    candidates += [shutil.which(f"python3.{minor}") for minor in range(8, 30)]
    found = {}
    for path in filter(None, candidates):
        probe = "import sys, venv, ensurepip; print(*sys.version_info[:3])"
        try:
            done = subprocess.run([path, "-c", probe], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode != 0:  # no venv or ensurepip, Python 2, or a pyenv shim not selected
            continue
        major, minor, micro = map(int, done.stdout.split())
        if major == 3 and micro >= found.get((major, minor), (-1, ""))[0]:
            found[(major, minor)] = (micro, path)
    return found


def choose(which):
    found, oldest = interpreters(), oldest_allowed()
    if which == "oldest":
        key = oldest if oldest in found else None
    else:
        key = max((k for k in found if k >= oldest), default=None)
    if key is None:
        have = ", ".join(f"{a}.{b}.{found[(a, b)][0]}" for a, b in sorted(found)) or "none"
        want = "%d.%d" % oldest if which == "oldest" else "%d.%d or newer" % oldest
        sys.exit(f"no Python {want} on this machine (found: {have})")
    print(found[key][1])


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version):
    """``"1.24"`` and ``"1.24.0"`` compare equal."""
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def check_floors():
    """Every ``name>=X`` of install_requires and the test extra is pinned ``name==X`` in floors.txt."""
    install, extras = options()
    declared = [line for text in (install["install_requires"], extras["test"])
                for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    with open(FLOORS) as f:
        pins = dict(re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.split("#")[0].strip()).groups()
                    for line in f if line.split("#")[0].strip())
    pins = {normalized(name): version for name, version in pins.items()}
    problems = []
    for requirement in declared:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([\d.]+)\s*", requirement)
        if not match:
            problems.append(f"{requirement.strip()!r}: write it as name>=floor")
        elif release(pins.get(normalized(match[1]), "0")) != release(match[2]):
            problems.append(f"{match[1]}: setup.cfg's floor is {match[2]}, .ci/floors.txt pins "
                            f"{pins.get(normalized(match[1]), 'nothing')}")
    if problems:
        sys.exit("setup.cfg and .ci/floors.txt disagree (pin every floor exactly):\n  " + "\n  ".join(problems))


def versions():
    from importlib.metadata import PackageNotFoundError, version

    def shown(name):
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} (not installed)"

    print(f"Python {sys.version.split()[0]}: " + ", ".join(shown(name) for name in SHOWN))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) == 2 else ""
    if command in ("oldest", "newest"):
        choose(command)
    elif command == "check-floors":
        check_floors()
    elif command == "versions":
        versions()
    else:
        sys.exit(__doc__)
