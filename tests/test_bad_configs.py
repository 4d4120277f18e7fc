"""One file per bad-config kind under tests/data/bad-configs: each exits 1 naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import KEY_PREFIX, run_cli

CASES = sorted((Path(__file__).parent / "data" / "bad-configs").glob("*.yaml"))
ENV = {"SCRIBE_TEST_KEY": f"{KEY_PREFIX}bad", "SCRIBE_TEST_EMPTY_KEY": "   "}


def test_every_kind_has_its_file() -> None:
    assert {case.stem for case in CASES} == {
        "yaml-syntax-error",
        "unknown-key",
        "wrong-type",
        "duplicate-workspace",
        "invalid-name",
        "missing-env-var",
        "unreadable-key-file",
        "empty-key",
        "interval-below-one-second",
    }


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", [["--config.check"], []], ids=["check", "start"])
def test_bad_config_exits_1_and_names_the_key(case: Path, mode: list[str]) -> None:
    expected = (
        case.read_text()
        .splitlines()[0]
        .removeprefix("# expect: ")
        .replace("{dir}", str(case.parent))
    )
    result = run_cli(
        *mode, "--config.file", str(case), "--web.listen-address", "127.0.0.1:0", env=ENV
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{case}: invalid config: " in result.stderr
    assert expected in result.stderr, result.stderr
    assert KEY_PREFIX not in result.stderr
