"""`redisai-fast smartsim install|uninstall`: makes a SmartSim installation launch redisai-fast where
it launched redis-server + RedisAI (the files `smart build` leaves), and puts back what was there."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from redisai_fast import __version__

# Every file we write carries this line; files without it are never removed or overwritten.
MARKER = "written by `redisai-fast smartsim install`"
STATE_DIR = ".redisai-fast"  # inside the dependency path: manifest.json and backup/
TESTED_SMARTSIM = "0.8.0"

# Asked of SmartSim's own interpreter: where its Config looks for the database, the CLI, RedisAI
# and `smartsim/_core/bin` (listed by `exp.start` whatever the dependency path is).
PROBE = """\
import json, os, sys
import smartsim
from smartsim._core.config import CONFIG
out = {"version": smartsim.__version__, "python": sys.executable,
       "dependency_path": str(CONFIG.dependency_path), "core_path": str(CONFIG.core_path),
       "overrides": {k: os.environ[k] for k in ("REDIS_PATH", "REDIS_CLI_PATH", "RAI_PATH") if k in os.environ}}
if "--resolved" in sys.argv:
    for name in ("database_exe", "database_cli", "redisai"):
        try:
            out[name] = getattr(CONFIG, name)
        except Exception as exc:  # StopIteration from an empty bin/, SSConfigError
            out[name] = "error: " + (str(exc) or type(exc).__name__)
print(json.dumps(out))
"""

# What the launcher runs: this installation's interpreter, without the working directory SmartSim
# starts it in on sys.path (a `-c` program puts '' first), then the command line as redis-server's.
LAUNCH_CODE = "import sys; sys.path[:] = [p for p in sys.path if p]; from redisai_fast.cli import main; sys.exit(main())"

REDISAI_MARKER_TEXT = f"""\
This is not RedisAI. It is a marker {MARKER} (redisai-fast {{version}}):
SmartSim starts its database only when lib/redisai.so exists, and checks nothing but that.
The bin/redis-server beside it starts redisai-fast, which has the RedisAI engine built in and
reads `--loadmodule <this file> NAME VALUE ...` as RedisAI's options.
`redisai-fast smartsim uninstall --python {{python}}` removes it and puts back what was here.
"""


class InstallError(Exception):
    """A reason the set-up cannot be done, told to the user as it is."""


@dataclass
class SmartSimSite:
    """What SmartSim's interpreter reported about its installation."""

    python: str
    version: str
    dependency_path: Path
    core_path: Path
    overrides: dict[str, str]


def probe(python: str, resolved: bool = False) -> dict[str, object]:
    """Runs PROBE with SmartSim's interpreter and returns its answer."""
    cmd = [python, "-c", PROBE] + (["--resolved"] if resolved else [])
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise InstallError(f"cannot run {python}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"{python} did not answer within 120 s when asked where SmartSim is") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise InstallError(f"{python} cannot import smartsim:\n{tail}")
    try:
        answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise InstallError(f"unexpected answer from {python}: {done.stdout[-300:]!r}") from exc
    return answer


def find_site(python: str | None) -> SmartSimSite:
    """SmartSim's installation as its interpreter sees it (`--python`, else this interpreter)."""
    if python is None:
        python = sys.executable
        try:
            answer = probe(python)
        except InstallError as exc:
            raise InstallError(
                f"smartsim is not installed in this environment ({python}).\n"
                "Give the interpreter of the environment where it is: "
                "redisai-fast smartsim install --python /path/to/smartsim-venv/bin/python"
            ) from exc
    else:
        found = shutil.which(python)
        if found is None:
            raise InstallError(f"--python {python}: no such interpreter")
        # absolute, but not resolved: a virtualenv's python is a link that must stay one
        python = os.path.abspath(found)
        answer = probe(python)
    return SmartSimSite(
        python=python,
        version=str(answer["version"]),
        dependency_path=Path(str(answer["dependency_path"])),
        core_path=Path(str(answer["core_path"])),
        overrides=dict(answer["overrides"]),  # type: ignore[call-overload]
    )


def is_ours(path: Path) -> bool:
    """True when `path` is a regular file we wrote (its first 4 KiB name the installer)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            return MARKER.encode() in f.read(4096)
    except OSError:
        return False


def launcher_text() -> str:
    """bin/redis-server: a real file (SmartSim resolves symlinks first) that runs this
    installation's redisai-fast by absolute path, whatever PATH or virtualenv SmartSim runs in."""
    return (
        "#!/bin/sh\n"
        f"# redisai-fast {__version__} launcher, {MARKER}.\n"
        "# SmartSim starts this file as its redis-server; it runs redisai-fast with the same arguments\n"
        "# in redisai-fast's own Python environment (PYTHONHOME would point at SmartSim's).\n"
        "unset PYTHONHOME\n"
        f"exec {shlex.quote(sys.executable)} -c {shlex.quote(LAUNCH_CODE)} \"$@\"\n"
    )


def cli_wrapper_text(redis_cli: str) -> str:
    """bin/redis-cli: execs the system's redis-cli (SmartSim stops a database with `shutdown`)."""
    return f"#!/bin/sh\n# redis-cli wrapper, {MARKER}.\nexec {shlex.quote(redis_cli)} \"$@\"\n"


def system_redis_cli(exclude: Path) -> str:
    """The redis-cli on PATH that is not in `exclude` (the bin/ we are filling)."""
    for d in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(d or ".") / "redis-cli"
        if candidate.parent.resolve() == exclude.resolve() or is_ours(candidate):
            continue
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate.resolve())
    raise InstallError(
        "redis-cli is not installed: SmartSim needs one beside its database (it stops the database with "
        "`redis-cli shutdown`).\nInstall it (Debian/Ubuntu: apt-get install redis-tools) and run this again."
    )


def works(path: Path) -> bool:
    """An executable SmartSim can run (it resolves links first)."""
    target = path.resolve()
    return target.is_file() and os.access(target, os.X_OK)


class Manifest:
    """<dep>/.redisai-fast/manifest.json: what install created and what it moved aside, so that
    uninstall puts the dependency path back as it was (paths relative to the dependency path;
    `core_bin` is absolute because it may lie outside it)."""

    def __init__(self, dep: Path) -> None:
        self.dep = dep
        self.state = dep / STATE_DIR
        self.path = self.state / "manifest.json"
        self.created_files: list[str] = []
        self.created_dirs: list[str] = []
        self.moved: dict[str, str] = {}  # original -> backup
        self.core_bin = ""  # smartsim/_core/bin when install created it outside the dependency path
        self.exists = self.path.is_file()
        if self.exists:
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                raise InstallError(f"{self.path} is unreadable ({exc}); move it away and run again") from exc
            self.created_files = list(data.get("created_files", []))
            self.created_dirs = list(data.get("created_dirs", []))
            self.moved = dict(data.get("moved", {}))
            self.core_bin = str(data.get("core_bin", ""))

    def save(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        data = {
            "redisai_fast": __version__,
            "python": sys.executable,
            "created_files": self.created_files,
            "created_dirs": self.created_dirs,
            "moved": self.moved,
            "core_bin": self.core_bin,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(self.path)

    def mkdir(self, rel: str) -> None:
        """Creates <dep>/rel (and its missing parents), remembering what it created."""
        missing = []
        p = self.dep / rel
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            d.mkdir()
            r = str(d.relative_to(self.dep))
            if r not in self.created_dirs:
                self.created_dirs.append(r)

    def move_aside(self, rel: str, say: list[str]) -> None:
        """Moves a file that is not ours to backup/<rel>; a newer one replaces an older backup."""
        src = self.dep / rel
        dst_rel = f"{STATE_DIR}/backup/{rel}"
        dst = self.dep / dst_rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() or dst.is_symlink():
            say.append(f"  {rel} changed since the last install: the newer one is kept as the backup")
            dst.unlink()
        os.rename(src, dst)
        self.moved[rel] = dst_rel
        say.append(f"  moved aside: {rel} (uninstall puts it back)")

    def write(self, rel: str, text: str, mode: int) -> None:
        p = self.dep / rel
        tmp = p.with_name(p.name + ".redisai-fast-tmp")
        tmp.write_text(text)
        tmp.chmod(mode)
        tmp.replace(p)
        if rel not in self.created_files:
            self.created_files.append(rel)


def install(site: SmartSimSite) -> list[str]:
    """Writes bin/redis-server, bin/redis-cli (unless a working one is there), lib/redisai.so."""
    dep = site.dependency_path
    say = [f"SmartSim {site.version} ({site.python}), dependency path {dep}"]
    if site.version != TESTED_SMARTSIM:
        say.append(f"  note: tested with SmartSim {TESTED_SMARTSIM}; this is {site.version}")
    bin_dir = dep / "bin"
    cli = None
    if not any(works(p) and not is_ours(p) for p in bin_dir.glob("*-cli")):
        cli = system_redis_cli(exclude=bin_dir)  # before anything is changed
    m = Manifest(dep)
    existing = next(p for p in (dep, *dep.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise InstallError(f"cannot write to {existing}: run this as the user who installed SmartSim")
    if not dep.exists():
        dep.mkdir(parents=True)  # SMARTSIM_DEP_INSTALL_PATH may name a folder `smart build` never made
        m.created_dirs.append(".")
    # Saved before the first change to SmartSim's files, so an interrupted install can be undone.
    m.save()
    m.mkdir("bin")
    m.mkdir("lib")
    core_bin = site.core_path / "bin"
    if not core_bin.exists():
        core_bin.mkdir(parents=True)
        m.core_bin = str(core_bin)
        say.append(f"  created {core_bin} (SmartSim lists it at exp.start)")
    # SmartSim starts the first `*-server` it finds in bin/: ours must be the only one
    for p in sorted(bin_dir.glob("*-server")):
        if p.name != "redis-server" and not is_ours(p):
            m.move_aside(f"bin/{p.name}", say)
    for rel in ("bin/redis-server", "lib/redisai.so") + (("bin/redis-cli",) if cli else ()):
        p = dep / rel
        if (p.exists() or p.is_symlink()) and not is_ours(p):
            m.move_aside(rel, say)
    m.save()
    m.write("bin/redis-server", launcher_text(), 0o755)
    say.append(f"  bin/redis-server: starts redisai-fast {__version__} with {sys.executable}")
    if cli:
        m.write("bin/redis-cli", cli_wrapper_text(cli), 0o755)
        say.append(f"  bin/redis-cli: runs {cli}")
    else:
        say.append("  bin/redis-cli: kept the one that is there")
    m.write("lib/redisai.so", REDISAI_MARKER_TEXT.format(version=__version__, python=site.python), 0o644)
    say.append("  lib/redisai.so: a marker file (redisai-fast has the RedisAI engine built in)")
    m.save()
    return say


def check(site: SmartSimSite) -> list[str]:
    """Asks SmartSim which files it will now use; raises when it would not start ours."""
    answer = probe(site.python, resolved=True)
    dep = site.dependency_path
    want = {"database_exe": dep / "bin/redis-server", "redisai": dep / "lib/redisai.so"}
    say = []
    for name, path in want.items():
        got = str(answer.get(name, ""))
        if got != str(path.resolve()):
            overrides = answer.get("overrides") or {}
            why = f" (set in this environment: {overrides})" if overrides else ""
            raise InstallError(f"installed, but SmartSim's CONFIG.{name} is {got}, not {path}{why}")
    cli = str(answer.get("database_cli", ""))
    if cli.startswith("error:"):
        raise InstallError(f"SmartSim cannot use the redis-cli in {dep / 'bin'}: {cli}")
    say.append(f"SmartSim will start {want['database_exe']} and stop it with {cli}")
    return say


def uninstall(site: SmartSimSite) -> list[str]:
    """Removes what install created and puts back what it moved aside; nothing to do is fine."""
    dep = site.dependency_path
    m = Manifest(dep)
    if not m.exists:
        return [f"nothing to uninstall in {dep} (no {STATE_DIR}/manifest.json)"]
    say = [f"SmartSim {site.version} ({site.python}), dependency path {dep}"]
    for rel in m.created_files:
        p = dep / rel
        if is_ours(p):
            p.unlink()
            say.append(f"  removed {rel}")
        elif p.exists():
            say.append(f"  kept {rel}: it was replaced since install")
    for rel, backup in m.moved.items():
        src, dst = dep / backup, dep / rel
        if not (src.exists() or src.is_symlink()):
            continue
        if dst.exists() or dst.is_symlink():
            say.append(f"  kept {rel} as it is now; the one from before install stays at {backup}")
            continue
        os.rename(src, dst)
        say.append(f"  put back {rel}")
    kept = {rel: b for rel, b in m.moved.items() if (dep / b).exists() or (dep / b).is_symlink()}
    if kept:
        # a backup whose place is taken stays, listed in a manifest that now holds only it
        m.moved, m.created_files = kept, []
        m.save()
    else:
        shutil.rmtree(m.state)
    for rel in sorted(m.created_dirs, key=lambda r: (r == ".", -len(r))):
        _rmdir_if_empty(dep / rel)
    if m.core_bin:
        _rmdir_if_empty(Path(m.core_bin))
    return say


def _rmdir_if_empty(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass  # not empty (someone else's files) or already gone: leave it


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="redisai-fast smartsim",
        description="Make SmartSim launch this redisai-fast where it launched redis-server + RedisAI.",
    )
    p.add_argument("action", choices=["install", "uninstall"])
    p.add_argument(
        "--python",
        help="the interpreter of the environment where smartsim is installed (default: this one)",
    )
    args = p.parse_args(argv)
    try:
        site = find_site(args.python)
        if args.action == "install":
            lines = install(site)
            lines += check(site)
        else:
            lines = uninstall(site)
    except InstallError as exc:
        print(f"redisai-fast smartsim {args.action}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"redisai-fast smartsim {args.action}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
