"""The lock file pins what pyproject.toml asks for: every requirement, at a version in range."""

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from src.engine.config import PROJECT_ROOT


def requirements() -> list[Requirement]:
    """What pyproject.toml asks for: the dependencies, the optional ones and the dev group."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    asked = project["project"]["dependencies"]
    asked += [r for extra in project["project"]["optional-dependencies"].values() for r in extra]
    asked += project["dependency-groups"]["dev"]
    return [Requirement(text) for text in asked]


def pins() -> dict[str, str]:
    """Each package of requirements.lock and its pinned version."""
    lines = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    pinned = [Requirement(line) for line in lines if line and not line.startswith("#")]
    assert all(str(r.specifier).startswith("==") for r in pinned), "the lock pins exact versions"
    return {canonicalize_name(r.name): str(r.specifier).removeprefix("==") for r in pinned}


def test_the_lock_pins_every_requirement_in_its_range() -> None:
    locked = pins()
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {requirement.name}=={locked[name]}, outside "
            f"{requirement.specifier}: run make lock"
        )
