"""Config parsing: defaults, the example file, and errors that name the offending key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scribe_exporter.config import ConfigError, load_config
from scribe_exporter.keys import KeyEnv, KeyFile

from .conftest import ROOT, run_cli


def write(tmp_path: Path, text: str) -> str:
    (tmp_path / "key").write_text("sk_test_filekey\n")
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


MINIMAL = """\
workspaces:
  - name: acme
    api_key_file: key
"""


def test_minimal_config_takes_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.api.base_url == "https://api.scribe-mail.com"
    assert config.api.timeout_seconds == 10
    assert config.polling.interval_seconds == 60
    assert config.polling.granularities == ("hour",)
    assert config.polling.max_concurrency == 8
    assert config.polling.settle_seconds == 300
    assert config.polling.stale_after_seconds == 900
    # A relative key file resolves against the config file's directory, not the cwd.
    assert config.workspaces[0].key_source == KeyFile(str(tmp_path / "key"))


def test_shipped_example_config_is_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = (ROOT / "config.yaml").read_text()
    key = tmp_path / "acme"
    key.write_text("sk_test_example\n")
    text = text.replace("/etc/scribe-exporter/keys/acme", str(key))
    monkeypatch.setenv("SCRIBE_API_KEY_GLOBEX", "sk_test_env")
    config = load_config(write(tmp_path, text))
    assert [w.name for w in config.workspaces] == ["acme", "globex"]
    assert config.workspaces[1].key_source == KeyEnv("SCRIBE_API_KEY_GLOBEX")
    assert config.polling.finest_granularity == "hour"


def test_finest_granularity_whatever_the_order(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "polling:\n  granularities: [month, day, week]\n" + MINIMAL)
    )
    assert config.polling.finest_granularity == "day"


# (config text, the key path the error must start with, a phrase it must contain)
BAD_CONFIGS = [
    ("workspaces: []\n", "workspaces:", "non-empty list"),
    ("api:\n  base_url: https://x\n", "workspaces:", "is required"),
    ("apis: {}\n" + MINIMAL, "apis:", "unknown key"),
    ("api:\n  timeout: 3\n" + MINIMAL, "api.timeout:", "unknown key"),
    ("api:\n  base_url: ftp://x\n" + MINIMAL, "api.base_url:", "http(s) URL"),
    ("api:\n  timeout_seconds: fast\n" + MINIMAL, "api.timeout_seconds:", "must be a number"),
    ("api:\n  timeout_seconds: 0\n" + MINIMAL, "api.timeout_seconds:", "at least"),
    ("polling:\n  interval_seconds: 0.5\n" + MINIMAL, "polling.interval_seconds:", "at least 1"),
    ("polling:\n  interval_seconds: true\n" + MINIMAL, "polling.interval_seconds:", "a boolean"),
    ("polling:\n  interval_seconds: .nan\n" + MINIMAL, "polling.interval_seconds:", "finite"),
    ("polling:\n  max_concurrency: 2.5\n" + MINIMAL, "polling.max_concurrency:", "integer"),
    ("polling:\n  max_concurrency: 0\n" + MINIMAL, "polling.max_concurrency:", "at least 1"),
    (
        "polling:\n  granularities: [hour, minute]\n" + MINIMAL,
        "polling.granularities[1]:",
        "one of",
    ),
    ("polling:\n  granularities: [day, day]\n" + MINIMAL, "polling.granularities[1]:", "twice"),
    ("polling:\n  granularities: []\n" + MINIMAL, "polling.granularities:", "non-empty"),
    ("polling:\n  settle_seconds: -1\n" + MINIMAL, "polling.settle_seconds:", "at least 0"),
    (
        "polling:\n  interval_seconds: 120\n  stale_after_seconds: 60\n" + MINIMAL,
        "polling.stale_after_seconds:",
        "at least polling.interval_seconds",
    ),
    ("workspaces:\n  - acme\n", "workspaces[0]:", "must be a mapping"),
    ("workspaces:\n  - api_key_file: key\n", "workspaces[0].name:", "is required"),
    (
        "workspaces:\n  - name: 'a b'\n    api_key_file: key\n",
        "workspaces[0].name:",
        "must match",
    ),
    (
        "workspaces:\n  - name: " + "x" * 65 + "\n    api_key_file: key\n",
        "workspaces[0].name:",
        "must match",
    ),
    (
        MINIMAL + "  - name: acme\n    api_key_file: key\n",
        "workspaces[1].name:",
        "duplicate name 'acme' (also workspaces[0])",
    ),
    ("workspaces:\n  - name: acme\n", "workspaces[0]:", "exactly one of"),
    (
        "workspaces:\n  - name: acme\n    api_key_file: key\n    api_key_env: K\n",
        "workspaces[0]:",
        "exactly one of",
    ),
    (
        "workspaces:\n  - name: acme\n    api_key_file: key\n    api_key: sk\n",
        "workspaces[0].api_key:",
        "unknown key",
    ),
    (
        MINIMAL + "  - name: globex\n    api_key_env: SCRIBE_TEST_UNSET_VARIABLE\n",
        "workspaces[1].api_key_env:",
        "environment variable SCRIBE_TEST_UNSET_VARIABLE is not set",
    ),
    (
        "workspaces:\n  - name: acme\n    api_key_file: missing\n",
        "workspaces[0].api_key_file:",
        "cannot be read: No such file or directory",
    ),
    (
        "workspaces:\n  - name: acme\n    api_key_file: ''\n",
        "workspaces[0].api_key_file:",
        "non-empty",
    ),
]


@pytest.mark.parametrize(("text", "path", "phrase"), BAD_CONFIGS)
def test_bad_config_names_the_key(tmp_path: Path, text: str, path: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert str(caught.value).startswith(path), str(caught.value)
    assert phrase in str(caught.value)


def test_empty_key_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    (tmp_path / "key").write_text("  \n")
    with pytest.raises(ConfigError, match=r"^workspaces\[0\]\.api_key_file: key file .* is empty"):
        load_config(path)


def test_key_with_a_newline_inside_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    (tmp_path / "key").write_text("sk_test_a\nInjected: header\n")
    with pytest.raises(ConfigError, match="cannot be sent in a header") as caught:
        load_config(path)
    assert "Injected" not in str(caught.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "polling:\n  interval_seconds: 60\n   bad: [\n" + MINIMAL)
    with pytest.raises(ConfigError, match=r"invalid YAML: line 3, column \d+"):
        load_config(path)


def test_key_written_twice_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "polling:\n  interval_seconds: 60\n  interval_seconds: 5\n" + MINIMAL)
    with pytest.raises(
        ConfigError, match=r"line 3, column 3: key 'interval_seconds' appears twice"
    ):
        load_config(path)


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "absent.yaml"))


def test_config_check_flag_exit_codes(tmp_path: Path) -> None:
    good = run_cli("--config.check", "--config.file", write(tmp_path, MINIMAL))
    assert good.returncode == 0, good.stderr
    assert "valid: 1 workspaces, granularities hour, every key readable" in good.stdout
    (tmp_path / "key").unlink()
    bad = run_cli("--config.check", "--config.file", str(tmp_path / "config.yaml"))
    assert bad.returncode == 1
    assert "workspaces[0].api_key_file: key file" in bad.stderr
    assert "No such file or directory" in bad.stderr


def test_daemon_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    result = run_cli("--config.file", write(tmp_path, "apis: {}\n" + MINIMAL))
    assert result.returncode == 1
    assert "apis: unknown key" in result.stderr
