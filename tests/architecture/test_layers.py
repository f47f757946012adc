"""The package tree stacks one way: no import circle, no import up or across the layers (devtools/layers.py).

Every import counts, lazy and ``TYPE_CHECKING`` ones too: a circle held together by a workaround is
still a circle. The planted cases show the check would catch a new one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devtools.layers import LAYERS, imports, problems

GATEWAY = Path(__file__).parents[2] / "gateway"


def test_the_gateway_has_no_circle_and_no_upward_import() -> None:
    assert problems(GATEWAY) == []


def test_every_layer_names_a_real_package_or_module() -> None:
    names = {edge.source for edge in imports(GATEWAY)} | {edge.target for edge in imports(GATEWAY)}
    for members in LAYERS:
        for member in members:
            assert any(name == member or name.startswith(member + ".") for name in names), member


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A copy of the gateway's source to plant bad imports in."""
    copy = tmp_path / "gateway"
    shutil.copytree(GATEWAY, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _plant(package: Path, module: str, code: str) -> None:
    path = package / module
    path.write_text(path.read_text() + "\n" + code + "\n")


def test_a_planted_type_checking_circle_is_found(planted: Path) -> None:
    # gate/access.py -> runtime (type-only) closes runtime -> ... -> gate/access.py
    _plant(planted, "gate/access.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from gateway.runtime import Runtime")
    found = problems(planted)
    assert any(p.startswith("import circle:") and "gateway.gate.access" in p and "gateway.runtime" in p
               for p in found), found
    assert any("gateway.gate.access" in p and "gateway.runtime is above gateway.gate" in p for p in found), found


def test_a_planted_lazy_circle_is_found(planted: Path) -> None:
    _plant(planted, "state/sessions.py", "def _late():\n    from gateway.pages.login import LoginEndpoints\n"
                                         "    return LoginEndpoints")
    found = problems(planted)
    assert any(p.startswith("import circle:") and "gateway.state.sessions" in p for p in found), found


def test_an_import_across_a_layer_is_found(planted: Path) -> None:
    _plant(planted, "gate/answers.py", "from gateway.signin.capacity import RETRY_AFTER")
    found = problems(planted)
    assert any("share a layer and stay independent" in p for p in found), found


def test_a_module_outside_every_layer_is_found(planted: Path) -> None:
    (planted / "stray.py").write_text("from gateway.errors import GatewayError\n")
    assert any("gateway.stray is in no layer" in p for p in problems(planted))
