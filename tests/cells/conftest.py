"""The cells' tests run on an emulator of their own: cell and account names are fixed by design
(`cell-2.ddb.us-east-1.api.aws`), so they must not share hosted zones with other modules' tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Emulator, start_emulator


@pytest.fixture(scope="module")
def cell_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = start_emulator(tmp_path_factory)
    yield emu
    emu.process.stop()
