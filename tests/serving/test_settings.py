"""Settings fail fast on missing or placeholder secrets and pick the backend from NEO4J_URI."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.settings import ConfigurationError, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("RISKGRAPH_PSEUDONYM_SECRET", "RISKGRAPH_PSEUDONYM_SECRET_FILE",
                 "RISKGRAPH_NEO4J_URI"):
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
    assert Settings().ladybug_path == Path("data/graph.lbug")
    monkeypatch.setenv("RISKGRAPH_NEO4J_URI", "neo4j://db.example:7687")
    assert Settings().backend == "neo4j"
