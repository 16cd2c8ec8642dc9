"""The reliability modules' fixtures: each module measures into its own `PARTS`
(figures.parts()), written to the figures file when the module ends."""

from __future__ import annotations

from typing import Iterable

import pytest

from integration_tests.reliability.figures import Figures, write


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return request.module.PARTS["soak" if request.node.get_closest_marker("soak") else "fast"]


@pytest.fixture(scope="module", autouse=True)
def _write_figures(request: pytest.FixtureRequest) -> Iterable[None]:
    yield
    write(request.module.__name__.rsplit(".", 1)[-1], request.module.PARTS)
