"""An emulator with Route 53's throttling, propagation delay and PriorRequestNotComplete switched on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.aws_grade.aws_like import EMULATOR_FLAGS
from tests.conftest import Emulator, start_emulator


@pytest.fixture(scope="module")
def aws_like_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = start_emulator(tmp_path_factory, *EMULATOR_FLAGS)
    yield emu
    emu.process.stop()
