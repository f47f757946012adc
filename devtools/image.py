"""The container image (``Containerfile``), built with podman and no network: ``scripts/build-image``.

Three steps, each skipped when its result is already there or not asked for:

1. The base image, from Debian's packages (:func:`make_base_image`): ``mmdebstrap`` lays out a minimal
   bookworm with python3, python3-venv and ca-certificates, and ``podman import`` names it
   ``localhost/debian-base:bookworm``. No registry is needed (none is reachable from the machines this
   project is tested on); elsewhere ``docker.io/library/debian:bookworm-slim`` serves as well.
2. The build context (:func:`make_context`): the gateway's wheel, built from this tree, and every wheel
   ``requirements/runtime.txt`` locks, downloaded on the host for the base image's Python (its version,
   platform and environment markers are asked of the image itself), with the lock's hashes checked.
3. ``podman build`` of the ``Containerfile`` with that context (:func:`build_image`), which installs from
   the wheels only (``--no-index --require-hashes``).

Every podman call carries :data:`PODMAN`'s options: what podman needs in a sandbox without
``CAP_SYS_RESOURCE`` and with hybrid cgroups (crun refuses those; limits above the sandbox's are refused),
and what works on an ordinary root machine as well. ``tests/test_container.py`` builds the image and runs
it behind nginx (:class:`ContainerLauncher` starts the stack's gateway as a container).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONTAINERFILE = PROJECT_ROOT / "Containerfile"
RUNTIME_LOCK = PROJECT_ROOT / "requirements" / "runtime.txt"
DEFAULT_CONTEXT = PROJECT_ROOT / "build" / "image"
DEFAULT_TAG = "localhost/openid-gateway:latest"
LOCAL_BASE = "localhost/debian-base:bookworm"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# What Debian's -slim images leave out: manual pages, documentation (the copyright files kept) and
# translations, about 50 MB of the base's 225.
SLIM = ("path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
        "path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/info/*")
# /usr merged by mmdebstrap's hook, with the usr-is-merged marker package, as Debian's own images do: else
# bookworm's init-system-helpers pulls in usrmerge, and with it Perl (about 50 MB).
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"
# The image's state volume and port (Containerfile: GATEWAY_STATE_DIR, EXPOSE).
STATE_DIR = "/var/lib/openid-gateway"
PORT = 9000
# The label on both stages of the Containerfile: which untagged images are old builds of ours.
TITLE_LABEL = "org.opencontainers.image.title=openid-gateway"
# The uid the Containerfile's USER names.
GATEWAY_UID = 1000

PODMAN: tuple[str, ...] = ("podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs")
LIMITS: tuple[str, ...] = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")

# Asked of the base image's python3: the PEP 508 marker environment and the glibc version (manylinux tags).
_PROBE = """
import json, os, platform, sys
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
    "glibc": platform.libc_ver()[1],
}))
"""


class ImageError(RuntimeError):
    """A step of the build failed; the message says which and how to fix it."""


def podman(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``podman`` with :data:`PODMAN`'s options; a failure raises :class:`ImageError` with its output."""
    if shutil.which(PODMAN[0]) is None:
        raise ImageError("podman is missing: apt-get install podman runc mmdebstrap (scripts/install-system-deps)")
    result = subprocess.run([*PODMAN, *args], capture_output=capture, text=True, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise ImageError(f"podman {' '.join(args[:2])} failed (status {result.returncode}):\n"
                         f"{(result.stdout or '')[-3000:]}{(result.stderr or '')[-3000:]}")
    return result


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def make_base_image(name: str = LOCAL_BASE, *, rebuild: bool = False) -> str:
    """``name``, made from Debian's packages with mmdebstrap unless it exists (about 25 s)."""
    if image_exists(name) and not rebuild:
        return name
    if shutil.which("mmdebstrap") is None:
        raise ImageError("mmdebstrap is missing: apt-get install mmdebstrap (scripts/install-system-deps)")
    with tempfile.TemporaryDirectory(prefix="openid-gateway-base-") as work:
        tarball = Path(work) / "base.tar"
        # The mirror named explicitly: with no mirror and a stdin that is not a terminal, mmdebstrap
        # would read its sources from stdin.
        result = subprocess.run(
            ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             *(f"--dpkgopt={option}" for option in SLIM), f"--hook-dir={MERGED_USR_HOOKS}", SUITE, str(tarball),
             _debian_mirror()],
            capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise ImageError(f"mmdebstrap failed (status {result.returncode}):\n{result.stderr[-3000:]}")
        podman("import", str(tarball), name)
    return name


def _debian_mirror() -> str:
    """This machine's Debian mirror (its apt sources), else deb.debian.org."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if path.is_file():
            found = re.search(r"(?m)^(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s", path.read_text())
            if found:
                return found.group(1)
    return "http://deb.debian.org/debian"


def target_environment(base: str) -> dict[str, str]:
    """The base image's marker environment and glibc version, asked of its python3."""
    result = podman("run", "--rm", "--network=none", *LIMITS, base, "python3", "-c", _PROBE)
    environment: dict[str, str] = json.loads(result.stdout)
    return environment


def locked_requirements(lock_text: str, environment: Mapping[str, str]) -> list[str]:
    """The lock's requirements that apply in ``environment``, each ``name==version --hash=...``, markers dropped.

    pip judges markers by the interpreter that runs it, not by ``--python-version``: the host's
    Python 3.11.7 would leave out ``async-timeout ; python_full_version < '3.11.3'``, which Debian's
    3.11.2 needs. The markers are judged here, against the image's environment, instead.
    """
    joined = re.sub(r"\s*\\\n\s*", " ", lock_text)
    kept = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, _, hashes = line.partition(" --hash=")
        parsed = Requirement(requirement)
        if parsed.marker is None or parsed.marker.evaluate(dict(environment)):
            kept.append(f"{parsed.name}{parsed.specifier} --hash={hashes}")
    return kept


def wheel_platforms(environment: Mapping[str, str]) -> list[str]:
    """The manylinux platform tags the image's glibc runs (pip takes each ``--platform`` literally)."""
    machine = environment["platform_machine"]
    major, minor = (int(part) for part in environment["glibc"].split(".")[:2])
    if major != 2:
        raise ImageError(f"the base image's glibc {environment['glibc']} is not 2.x")
    platforms = [f"manylinux_2_{version}_{machine}" for version in range(minor, 4, -1)]
    legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
    platforms += [f"{name}_{machine}" for name, version in legacy.items() if version <= minor]
    return platforms


def download_wheels(wheels: Path, environment: Mapping[str, str], lock: Path = RUNTIME_LOCK) -> int:
    """Download the lock's wheels for the image into ``wheels``; returns how many it holds."""
    wheels.mkdir(parents=True, exist_ok=True)
    requirements = locked_requirements(lock.read_text(), environment)
    version = environment["python_version"]
    tag = "cp" + version.replace(".", "")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="image-requirements-") as listed:
        listed.write("\n".join(requirements) + "\n")
        listed.flush()
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--no-deps", "--require-hashes", "--only-binary=:all:", "--python-version", version,
                   "--implementation", "cp", "--abi", tag, "--abi", "abi3", "--abi", "none",
                   *(f"--platform={name}" for name in wheel_platforms(environment)),
                   "--dest", str(wheels), "-r", listed.name]
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ImageError(f"pip download failed (status {result.returncode}):\n{result.stderr[-3000:]}")
    return len(requirements)


def build_gateway_wheel(wheels: Path) -> Path:
    """The gateway's wheel, built from this tree with the locked build backend (no isolation, no network)."""
    for old in wheels.glob("openid_gateway-*.whl"):
        old.unlink()
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(wheels),
                             str(PROJECT_ROOT)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ImageError(f"building the wheel failed (status {result.returncode}):\n{result.stderr[-3000:]}")
    built = list(wheels.glob("openid_gateway-*.whl"))
    if len(built) != 1:
        raise ImageError(f"expected one openid_gateway wheel in {wheels}, found {len(built)}")
    return built[0]


def make_context(context: Path, base: str) -> Path:
    """Lay out the build context: ``wheels/`` (the locked wheels and the gateway's) and the lock."""
    (context / "requirements").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RUNTIME_LOCK, context / "requirements" / "runtime.txt")
    download_wheels(context / "wheels", target_environment(base))
    build_gateway_wheel(context / "wheels")
    return context


def build_image(context: Path, tag: str = DEFAULT_TAG, base: str = LOCAL_BASE) -> str:
    """``podman build`` the Containerfile with ``context``; returns the image's id.

    ``--network=none``: the build installs from the context alone, and this proves it (a base image without
    python3, which the Containerfile would install with apt-get, cannot be built here: use the local base).
    ``--format docker``: podman drops ``HEALTHCHECK`` from OCI images (the format has no field for it).
    Then the images of earlier builds that no tag names any more (the Containerfile labels both its
    stages with :data:`TITLE_LABEL`) are removed: each build would otherwise leave about 250 MB behind.
    """
    podman("build", "--quiet", "--network=none", "--format", "docker", *LIMITS, "--file", str(CONTAINERFILE),
           "--build-arg", f"BASE={base}", "--tag", tag, str(context))
    podman("image", "prune", "--force", "--filter", f"label={TITLE_LABEL}", check=False)
    return podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()


def image_size(tag: str) -> int:
    """The image's size in bytes (its layers, the base's included), as ``podman images`` shows it."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


@dataclass(frozen=True, slots=True)
class ContainerLauncher:
    """Starts a stack's gateway instance as a container of ``image`` (``devtools.stack.Stack(gateway_launcher=)``).

    The container shares the host's network (``--network=host``): the gateway reaches the local providers
    on loopback at the addresses browsers use, and nginx reaches it on the stack's port. Its settings go
    in as ``GATEWAY_*`` variables, passed by name (``--env NAME``), so that no secret is on a command
    line; ``state`` (a host directory) is its state volume, handed to the image's user (podman's ``:U``),
    and the only place it may write: the rest of its file system is read-only.
    """

    image: str
    state: Path
    prefix: str = "openid-gateway-test"

    def container(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def __call__(self, name: str, environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
        settings = {key: value for key, value in environ.items()
                    if key.startswith("GATEWAY_") and key != "GATEWAY_STATE_DIR"}  # the image's own
        argv = [*PODMAN, "run", "--rm", "--replace", "--name", self.container(name), "--network=host", *LIMITS,
                "--read-only", "--read-only-tmpfs=false",  # as `docker run --read-only`: no writable /tmp either
                "--volume", f"{self.state}:{STATE_DIR}:U", *(f"--env={key}" for key in sorted(settings)),
                self.image, "serve"]
        return argv, settings

    def remove(self, name: str) -> None:
        """Remove the container if it is still there (after a failed start, or a stop that timed out)."""
        podman("rm", "--force", "--ignore", "--time", "5", self.container(name), check=False)


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/build-image", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", default=DEFAULT_TAG, help=f"the image's name (default: {DEFAULT_TAG})")
    parser.add_argument("--base", default=LOCAL_BASE,
                        help=f"the base image (default: {LOCAL_BASE}, made from Debian's packages when missing)")
    parser.add_argument("--context", type=Path, default=DEFAULT_CONTEXT,
                        help="where to lay out the build context (default: build/image)")
    parser.add_argument("--rebuild-base", action="store_true", help=f"make {LOCAL_BASE} again")
    parser.add_argument("--context-only", action="store_true",
                        help="lay out the context and stop (then: docker build -f Containerfile CONTEXT)")
    args = parser.parse_args(argv)
    try:
        if args.base == LOCAL_BASE:
            print(f"==> base image {LOCAL_BASE}", flush=True)
            make_base_image(rebuild=args.rebuild_base)
        print(f"==> build context {args.context}: the locked wheels and the gateway's wheel", flush=True)
        if args.context.exists():
            shutil.rmtree(args.context)
        make_context(args.context, args.base)
        if args.context_only:
            return 0
        print(f"==> podman build {args.tag}", flush=True)
        build_image(args.context, args.tag, args.base)
    except ImageError as exc:
        print(f"build-image: {exc}", file=sys.stderr)
        return 1
    print(f"==> {args.tag}: {image_size(args.tag) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())


__all__ = [
    "CONTAINERFILE", "GATEWAY_UID", "LIMITS", "LOCAL_BASE", "PODMAN", "PORT", "STATE_DIR", "ContainerLauncher",
    "ImageError", "build_image", "image_size", "locked_requirements", "make_base_image", "make_context", "podman",
]
