"""Settings fail fast on missing or placeholder secrets, pick the backend from NEO4J_URI,
resolve DATA_DIR the same from any working directory; the store factory refuses the
development Neo4j password outside loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.settings import ConfigurationError, Settings
from serving.stores import build_store


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("RISKGRAPH_PSEUDONYM_SECRET", "RISKGRAPH_PSEUDONYM_SECRET_FILE",
                 "RISKGRAPH_NEO4J_URI", "RISKGRAPH_NEO4J_PASSWORD", "RISKGRAPH_DATA_DIR",
                 "RISKGRAPH_SPOOL_DIR", "RISKGRAPH_LADYBUG_PATH", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_missing_secret_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="RISKGRAPH_PSEUDONYM_SECRET"):
        Settings().pseudonymiser()


@pytest.mark.parametrize("value", ["changeme", "CHANGE-ME", "tooshort"])
def test_placeholder_secret_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RISKGRAPH_PSEUDONYM_SECRET", value)
    with pytest.raises(ConfigurationError, match="placeholder"):
        Settings().pseudonymiser()


def test_secret_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key").write_text("a-real-secret-of-32-bytes-length\n")
    monkeypatch.setenv("RISKGRAPH_PSEUDONYM_SECRET_FILE", str(tmp_path / "key"))
    env_hash = Settings().pseudonymiser().hash("phone", "13800000000")
    monkeypatch.delenv("RISKGRAPH_PSEUDONYM_SECRET_FILE")
    monkeypatch.setenv("RISKGRAPH_PSEUDONYM_SECRET", "a-real-secret-of-32-bytes-length")
    assert Settings().pseudonymiser().hash("phone", "13800000000") == env_hash


def test_backend_follows_neo4j_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().backend == "ladybug"
    assert Settings().ladybug_path == Settings().DATA_DIR / "graph.lbug"
    monkeypatch.setenv("RISKGRAPH_NEO4J_URI", "neo4j://db.example:7687")
    assert Settings().backend == "neo4j"


def test_data_dir_is_the_same_from_any_working_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 18: the default was ``./data``, so `riskgraph serve` started elsewhere than
    `riskgraph train` found no model and a new, empty store."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "elsewhere").mkdir()
    here = Settings()
    monkeypatch.chdir(tmp_path / "elsewhere")
    there = Settings()
    assert here.DATA_DIR == there.DATA_DIR == tmp_path / "home" / ".local/share/riskgraph"
    assert here.spool_dir == there.spool_dir and here.ladybug_path == there.ladybug_path
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().DATA_DIR == tmp_path / "xdg" / "riskgraph"
    # a relative path given explicitly is the working directory's, made absolute at once
    monkeypatch.setenv("RISKGRAPH_DATA_DIR", "state")
    assert Settings().DATA_DIR == tmp_path / "elsewhere" / "state"


@pytest.mark.parametrize("uri", ["bolt://10.0.0.5:7687", "neo4j://db.example.com",
                                 "neo4j+s://cluster.example.com:7687"])
def test_default_neo4j_password_is_refused_outside_loopback(
        monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    monkeypatch.setenv("RISKGRAPH_NEO4J_URI", uri)
    with pytest.raises(ConfigurationError, match="RISKGRAPH_NEO4J_PASSWORD"):
        build_store(Settings())
    monkeypatch.setenv("RISKGRAPH_NEO4J_PASSWORD", "the-real-password-of-this-server")
    build_store(Settings()).close()  # the driver connects lazily


@pytest.mark.parametrize("uri", ["bolt://127.0.0.1:7687", "neo4j://localhost:7687",
                                 "bolt://[::1]:7687"])
def test_default_neo4j_password_is_allowed_on_loopback(
        monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    monkeypatch.setenv("RISKGRAPH_NEO4J_URI", uri)
    build_store(Settings()).close()


def test_torch_device_is_resolved_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("RISKGRAPH_DEVICE", "cpu")
    assert Settings().torch_device() == "cpu"
    assert Settings().torch_device("cpu") == "cpu"
    monkeypatch.setenv("RISKGRAPH_DEVICE", "auto")
    usable = torch.cuda.is_available()
    assert Settings().torch_device() == ("cuda" if usable else "cpu")
    if not usable:
        with pytest.raises(ConfigurationError, match="cuda"):
            Settings().torch_device("cuda")


def test_configuration_doc_is_written_from_the_settings() -> None:
    from serving.settings import configuration_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "CONFIGURATION.md"
    assert doc.read_text() == configuration_markdown(), \
        "regenerate: python -m serving.settings > docs/CONFIGURATION.md"
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []
