"""Everything the bed needs on the machine: Debian packages and the two LiveKit binaries.

The binaries come from PATH when present; otherwise they are built with the Go toolchain at
pinned versions into a cache outside the repo and reused across runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("devstack.binaries")

# Debian packages: the bed's services, the cgo libraries livekit-sip links against,
# espeak-ng/sox for real speech, iproute2/util-linux for the namespace, PostgreSQL for the
# store's second backend in the tests, Chromium (and its driver) for the console's browser
# tests: Playwright drives Debian's build, never one it downloads.
DEBIAN_PACKAGES = [
    "redis-server",
    "espeak-ng",
    "sox",
    "pkg-config",
    "libopus-dev",
    "libopusfile-dev",
    "libsoxr-dev",
    "iproute2",
    "util-linux",
    "postgresql",
    "chromium",
    "chromium-driver",
]


@dataclass(frozen=True)
class GoBinary:
    name: str  # the command name on PATH
    module: str  # the Go module that holds it
    package: str  # the main package to build
    version: str
    cgo: bool = False


LIVEKIT_SERVER = GoBinary(
    name="livekit-server",
    module="github.com/livekit/livekit-server",
    package="github.com/livekit/livekit-server/cmd/server",
    version="v1.13.5",
)
# The issue pins v1.11.0, but the Go module proxy answers 403 ("not available") for every
# livekit/sip release after v1.8.0 and for the module's version list; v1.8.0 (2026-07-23) is
# the newest it serves and matches livekit-server v1.13.5 (2026-07-31).
LIVEKIT_SIP = GoBinary(
    name="livekit-sip",
    module="github.com/livekit/sip",
    package="github.com/livekit/sip/cmd/livekit-sip",
    version="v1.8.0",
    cgo=True,
)


class SetupError(RuntimeError):
    """The bed cannot be set up on this machine; the message says what to do."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "callagent"


def missing_debian_packages(packages: list[str] = DEBIAN_PACKAGES) -> list[str]:
    if not shutil.which("dpkg-query"):
        return []  # not Debian: trust the checks on the commands themselves
    missing = []
    for pkg in packages:
        res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in res.stdout:
            missing.append(pkg)
    return missing


def ensure_debian_packages() -> None:
    missing = missing_debian_packages()
    if not missing:
        return
    line = "apt-get install -y " + " ".join(missing)
    if os.geteuid() != 0:
        raise SetupError(f"the bed needs Debian packages that are missing; run as root: {line}")
    log.info("installing Debian packages: %s", " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # The package lists may be absent on a fresh machine, so update first.
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    res = subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SetupError(f"`{line}` failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")


def binary_path(binary: GoBinary) -> Path:
    """Where the binary is: on PATH if there, else in the build cache (built on demand)."""
    on_path = shutil.which(binary.name)
    if on_path:
        return Path(on_path)
    target = cache_dir() / "go" / f"{binary.name}-{binary.version}" / binary.name
    if not target.exists():
        build(binary, target)
    return target


def build(binary: GoBinary, target: Path) -> float:
    """Build `binary` into `target`; returns the seconds it took."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not go:
        raise SetupError(
            f"{binary.name} is not on PATH and there is no Go toolchain to build it "
            f"({binary.package}@{binary.version}); install Go or put {binary.name} on PATH"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("building %s %s (first run only; takes a few minutes)", binary.name, binary.version)
    started = time.monotonic()
    # A throwaway module that requires the pinned version and builds its main package: unlike
    # `go install pkg@version` it does not read the module's version list, which the proxy
    # refuses for livekit/sip.
    with tempfile.TemporaryDirectory(prefix="callagent-build-") as work:
        env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="1" if binary.cgo else "0")
        tmp_target = target.with_suffix(".partial")
        steps = [
            [go, "mod", "init", "callagent.local/build"],
            [go, "mod", "edit", f"-require={binary.module}@{binary.version}"],
            [go, "build", "-trimpath", "-o", str(tmp_target), binary.package],
        ]
        for step in steps:
            res = subprocess.run(step, cwd=work, env=env, capture_output=True, text=True)
            if res.returncode != 0:
                raise SetupError(
                    f"building {binary.name} {binary.version} failed at `{' '.join(step[1:])}`:\n{res.stderr[-3000:]}"
                )
        tmp_target.rename(target)
    took = time.monotonic() - started
    log.info("built %s in %.0f s", binary.name, took)
    return took


PROJECT_DIR = Path(__file__).resolve().parent.parent
TS_TESTS = PROJECT_DIR / "tests" / "ts"


def ensure_npm_test_deps() -> None:
    """The TypeScript MCP client the tests drive the server with (what Claude Desktop uses).

    Installed here, outside the bed: inside its namespace there is no network for npm."""
    lock = TS_TESTS / "package-lock.json"
    manifest = json.loads((TS_TESTS / "package.json").read_text())
    wanted = [*manifest.get("dependencies", {}), *manifest.get("devDependencies", {})]
    if not lock.exists() or all((TS_TESTS / "node_modules" / name).exists() for name in wanted):
        return
    if not shutil.which("npm"):
        if os.geteuid() != 0:
            raise SetupError("the tests need Node.js 20+ and npm; install them (apt-get install -y nodejs npm)")
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "nodejs", "npm"],
            check=True,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
            stdout=subprocess.DEVNULL,
        )
    log.info("installing the TypeScript MCP client for the tests (npm ci in tests/ts)")
    res = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TS_TESTS, capture_output=True, text=True)
    if res.returncode != 0:
        raise SetupError(f"`npm ci` in {TS_TESTS} failed:\n{res.stderr[-2000:]}")


def ensure_all() -> dict[str, Path]:
    """Install what is missing and return the paths of the LiveKit binaries."""
    ensure_debian_packages()
    ensure_npm_test_deps()
    for cmd in ("redis-server", "espeak-ng", "ip", "unshare"):
        if not shutil.which(cmd):
            raise SetupError(f"`{cmd}` is not on PATH; install it (see devstack.binaries.DEBIAN_PACKAGES)")
    return {b.name: binary_path(b) for b in (LIVEKIT_SERVER, LIVEKIT_SIP)}
