"""The one `Settings` object: environment variables (prefix ``RISKGRAPH_``) or a ``.env`` file.

Every setting and default is listed in docs/CONFIGURATION.md, which is written from this class
(``python -m serving.settings > docs/CONFIGURATION.md``; a test keeps the two equal). Libraries below ``serving/`` never read
configuration; the entry points build what they need from a :class:`Settings`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph import Pseudonymiser

_PLACEHOLDERS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "xxx"})


class ConfigurationError(RuntimeError):
    """A setting is missing or unusable; the message names it."""


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/riskgraph`` (``~/.local/share/riskgraph``): one place for local state,
    whatever the working directory."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "riskgraph"


class Settings(BaseSettings):
    """RiskGraph configuration. Field names are the environment variables without the prefix."""

    model_config = SettingsConfigDict(
        env_prefix="RISKGRAPH_", env_file=".env", extra="ignore", case_sensitive=True
    )

    DATA_DIR: Path = Field(default_factory=default_data_dir, description="Root of local "
                           "state: embedded graph, model registry, spool; default "
                           "$XDG_DATA_HOME/riskgraph (~/.local/share/riskgraph). A relative "
                           "path is taken from the working directory at start.")
    NEO4J_URI: str | None = Field(None, description="bolt:// or neo4j:// URI; unset means the "
                                  "embedded LadybugDB store.")
    NEO4J_USER: str = Field("neo4j", description="Neo4j user.")
    NEO4J_PASSWORD: SecretStr = Field(SecretStr("riskgraph-dev-pw"), description="Neo4j "
                                      "password; the development value is refused for a "
                                      "server outside loopback.")
    NEO4J_DATABASE: str = Field("neo4j", description="Neo4j database name.")
    NEO4J_MAX_POOL_SIZE: int = Field(50, ge=1, description="Driver connection pool size.")
    NEO4J_CONNECTION_TIMEOUT_S: float = Field(5.0, gt=0, description="Driver connection "
                                              "timeout.")
    NEO4J_QUERY_TIMEOUT_S: float = Field(30.0, gt=0, description="Server-side timeout of "
                                         "one transaction.")
    NEO4J_MAX_RETRY_TIME_S: float = Field(15.0, ge=0, description="How long the driver "
                                          "retries a transaction that failed transiently.")
    LADYBUG_PATH: Path | None = Field(None, description="Embedded database file; default "
                                      "DATA_DIR/graph.lbug.")
    LADYBUG_BUFFER_POOL_MB: int = Field(4096, ge=0, description="Page cache of the embedded "
                                        "store in MiB (4096 loads a 100k-user world chunk "
                                        "by chunk, 2048 does not; the bulk load into an empty "
                                        "store passes in 1024; a 1M-user world needs 10240 for "
                                        "its bulk load and 8192 for `riskgraph rescore`'s "
                                        "export); 0 lets LadybugDB take 80 % of "
                                        "RAM (which "
                                        "the model's graph state then competes with).")
    LADYBUG_CHECKPOINT_MB: int = Field(0, ge=0, le=65_536, description="Write-ahead log "
                                       "size at which the embedded store checkpoints, in MiB; "
                                       "0 keeps LadybugDB's own (16 MiB).")
    WRITE_BATCH_SIZE: int = Field(5000, ge=1, le=100_000, description="Rows per "
                                  "transaction when `riskgraph load` writes a world.")
    PSEUDONYM_SECRET: SecretStr | None = Field(None, description="HMAC key for identifiers "
                                               "(>= 16 bytes); after `riskgraph rotate-key`, "
                                               "the new key (the store keeps the retired "
                                               "ones).")
    PSEUDONYM_SECRET_FILE: Path | None = Field(None, description="File holding the HMAC key.")
    DEVICE: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where kernels and "
                                                   "models run; auto uses a GPU when usable.")
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of the commands and the API.")
    PROMOTION_MARGIN: float = Field(0.01, ge=0, le=1, description="Validation fraud AUPRC "
                                    "a new model must gain over the rules and over the "
                                    "promoted model before `riskgraph train --promote` (and "
                                    "the demo) promote it.")
    GNN_PROCESS: bool = Field(True, description="Hold the model and the live graph state in "
                              "a child process (CPU only), so that writes, features and the "
                              "forward pass do not hold the API process's interpreter lock; "
                              "false: a thread of the API process.")

    # -- the scoring API (serving.api) ----------------------------------------------------------
    API_HOST: str = Field("127.0.0.1", description="Interface `riskgraph serve` binds.")
    API_PORT: int = Field(8000, ge=0, le=65535, description="Port `riskgraph serve` binds.")
    API_WORKERS: int = Field(1, ge=1, le=64, description="uvicorn worker processes (Neo4j "
                             "only: the embedded store allows one process).")
    API_SCHED_BATCH: bool = Field(True, description="Run `riskgraph serve` (its threads, its "
                                  "model process, its workers) under Linux's SCHED_BATCH "
                                  "policy: a thread it wakes (a request handed to the batcher, "
                                  "a verdict handed back) does not preempt the thread that "
                                  "woke it while that one still holds the interpreter lock. "
                                  "Needs no privilege; ignored where the platform has no such "
                                  "policy. false: the default policy.")
    API_BODY_TIMEOUT_S: float = Field(30.0, gt=0, le=600, description="A request whose body "
                                      "stops arriving for this long gets 408 and its "
                                      "connection closed. Nothing bounds how slowly a client "
                                      "may send its headers: expose the service behind a proxy "
                                      "that does (docs/API.md, Operations).")
    POLICY_FILE: Path | None = Field(None, description="Decision policy (TOML); default the "
                                     "packaged serving/policy.toml.")
    STORE_TIMEOUT_S: float = Field(0.25, gt=0, le=60, description="A store read slower than "
                                   "this makes the verdict degraded.")
    STORE_WRITE_TIMEOUT_S: float = Field(2.0, gt=0, le=600, description="A store write slower "
                                         "than this goes to the spool instead.")
    STORE_PROBE_INTERVAL_S: float = Field(1.0, gt=0, le=60, description="How often a down "
                                          "store is pinged to see whether it is back.")
    STORE_THREADS: int = Field(32, ge=1, le=512, description="Threads that run store calls "
                               "under a timeout.")
    INVESTIGATOR_TIMEOUT_S: float = Field(10.0, gt=0, le=600, description="Budget of an "
                                          "investigator's read (neighbourhood, shared "
                                          "accounts, audit record); slower is 503.")
    INVESTIGATOR_THREADS: int = Field(4, ge=1, le=64, description="Threads of their own for "
                                      "investigators' reads, so that large ones never hold "
                                      "the threads verdicts read with.")
    DEGRADED_MAX_APPROVE_AMOUNT: float | None = Field(
        None, ge=0, description="Ceiling on approvals in degraded mode, on top of the policy's "
        "per-product cap (the lower wins); unset: the policy alone.")
    LIVE_GRAPH_REFRESH_S: float = Field(300.0, ge=0, description="How often the live graph "
                                        "takes a new snapshot of the store: other replicas' "
                                        "writes (Neo4j: the model's arrays are rebuilt too, so "
                                        "they arrive within this plus the export time); 0: "
                                        "never.")
    MODEL_WATCH_S: float = Field(5.0, ge=0, description="How often a running service reads "
                                 "the model registry's promoted and challenger models; a "
                                 "change (`riskgraph models promote|rollback|challenger`) is "
                                 "taken live, after one rebuild of the model's graph state; "
                                 "0: never (a restart takes it).")
    DRIFT_WINDOW: int = Field(5000, ge=1, description="Verdicts per product in the sliding "
                              "window that drift (PSI of every model input and of both scores "
                              "against the model's training reference) and decision shares "
                              "are measured over, on /metrics and by `riskgraph drift`.")
    DRIFT_MIN_COUNT: int = Field(200, ge=1, description="Verdicts a product's window needs "
                                 "before its drift is judged (fewer make PSI noise).")
    DRIFT_PSI_WARN: float = Field(0.1, gt=0, description="PSI from which an input has moved "
                                  "(reported).")
    DRIFT_PSI_ALERT: float = Field(0.25, gt=0, description="PSI from which an input has "
                                   "shifted (flagged; riskgraph_drift_shifted_inputs counts "
                                   "them).")

    RINGS_HUB_SIZE: int = Field(100, ge=2, le=1_000_000, description="Ring detection leaves "
                                "out a device, phone, address or IP shared by more users than "
                                "this (an office network, a public Wi-Fi).")
    RINGS_MIN_SIZE: int = Field(3, ge=2, le=10_000, description="Fewest member accounts of a "
                                "ring.")
    RINGS_SEED: int = Field(0, ge=0, description="Random seed of ring detection (Leiden).")
    RINGS_REFRESH_S: float = Field(0.0, ge=0, description="How often the service refreshes "
                                   "the rings from the live graph (Leiden over the whole graph: "
                                   "about 30 s of one core on a 100k-user world); 0: never, "
                                   "refresh with `riskgraph rings refresh` or POST "
                                   "/v1/rings/refresh.")
    SPOOL_DIR: Path | None = Field(None, description="Durable spool of writes made while the "
                                   "store is down; default DATA_DIR/spool.")
    ANSWERS_KEEP_S: float = Field(86_400.0, gt=0, description="How long a replica keeps, in "
                                  "its spool file, each verdict it answered, so that a resent "
                                  "application gets it (or 409) while the store is down.")
    RATE_LIMIT_PER_S: float = Field(200.0, gt=0, description="Requests per second per API key "
                                    "(per replica) unless the key sets its own.")
    RATE_LIMIT_BURST: int = Field(400, ge=1, description="Requests a key may send at once "
                                  "before the rate applies.")
    ADMIN_API_KEY: SecretStr | None = Field(None, description="Bootstrap admin key (kept "
                                            "hashed in memory); create the others with "
                                            "`riskgraph keys create`.")
    KEYS_REFRESH_S: float = Field(30.0, gt=0, description="How often API keys are reloaded "
                                  "from the store (revocations take effect within this).")
    MAX_KEYS_PER_CALLER: int = Field(100, ge=1, le=100_000, description="Most active API "
                                     "keys one caller (an admin key) may have created through "
                                     "POST /v1/keys; more is a 409 until one is revoked.")
    MAX_EVENTS_PER_BATCH: int = Field(1000, ge=1, le=100_000, description="Largest batch "
                                      "accepted by POST /v1/events and /v1/labels.")
    DOCS_ENABLED: bool = Field(True, description="Serve /docs and /openapi.json (no data, no "
                               "key needed).")

    @field_validator("DATA_DIR", "LADYBUG_PATH", "SPOOL_DIR", "POLICY_FILE",
                     "PSEUDONYM_SECRET_FILE")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # NOTE: made absolute once, so that every part of the process (and a child that
        # changes directory) names the same place.
        return None if path is None else path.expanduser().absolute()

    @model_validator(mode="after")
    def _check_secret_sources(self) -> Settings:
        if self.PSEUDONYM_SECRET is not None and self.PSEUDONYM_SECRET_FILE is not None:
            raise ValueError("set PSEUDONYM_SECRET or PSEUDONYM_SECRET_FILE, not both")
        if self.ADMIN_API_KEY is not None:
            key = self.ADMIN_API_KEY.get_secret_value()
            if key.casefold() in _PLACEHOLDERS or len(key) < 24:
                raise ValueError("ADMIN_API_KEY is a placeholder or shorter than 24 characters")
        if self.DRIFT_PSI_WARN > self.DRIFT_PSI_ALERT:
            raise ValueError(f"DRIFT_PSI_WARN ({self.DRIFT_PSI_WARN}) must not exceed "
                             f"DRIFT_PSI_ALERT ({self.DRIFT_PSI_ALERT})")
        return self

    @property
    def ladybug_path(self) -> Path:
        return self.LADYBUG_PATH or self.DATA_DIR / "graph.lbug"

    @property
    def models_dir(self) -> Path:
        """The model registry (the one place it is named)."""
        return self.DATA_DIR / "models"

    @property
    def spool_dir(self) -> Path:
        return self.SPOOL_DIR or self.DATA_DIR / "spool"

    @property
    def backend(self) -> Literal["neo4j", "ladybug"]:
        return "neo4j" if self.NEO4J_URI else "ladybug"

    def torch_device(self, choice: str | None = None) -> Literal["cpu", "cuda"]:
        """Where models and kernels run: `choice` (a command's --device) else DEVICE.

        auto means cuda when a CUDA device is usable; an explicit cuda without one is a
        ConfigurationError rather than a later failure inside torch.
        """
        wanted = choice or self.DEVICE
        if wanted == "cpu":
            return "cpu"
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if wanted == "cuda":
            raise ConfigurationError("device cuda was asked for but no CUDA device is usable")
        return "cpu"

    def pseudonym_secret(self) -> bytes:
        """The identifier key; fails fast on a missing or placeholder secret."""
        if self.PSEUDONYM_SECRET is not None:
            secret = self.PSEUDONYM_SECRET.get_secret_value()
        elif self.PSEUDONYM_SECRET_FILE is not None:
            return read_secret_file(self.PSEUDONYM_SECRET_FILE, "RISKGRAPH_PSEUDONYM_SECRET_FILE")
        else:
            raise ConfigurationError(
                "RISKGRAPH_PSEUDONYM_SECRET (or RISKGRAPH_PSEUDONYM_SECRET_FILE) is not set")
        return _checked_secret(secret, "RISKGRAPH_PSEUDONYM_SECRET")

    def pseudonymiser(self) -> Pseudonymiser:
        """The identifier hasher under the configured key alone (a store whose key was rotated
        needs its retired keys too: :func:`serving.key_rotation.pseudonymiser_for`); fails fast
        on a missing or placeholder secret."""
        return Pseudonymiser(self.pseudonym_secret())


def read_secret_file(path: Path, name: str) -> bytes:
    """A key kept in a file (surrounding blanks dropped), checked as the settings' secret is.

    Args:
        path (Path): the file.
        name (str): what the file is, for the message (a setting or an option).

    Raises:
        ConfigurationError: the file cannot be read, or holds a placeholder or a key shorter
            than 16 bytes.
    """
    try:
        secret = path.read_text().strip()
    except OSError as e:
        raise ConfigurationError(f"{name} cannot be read: {e}") from e
    return _checked_secret(secret, name)


def _checked_secret(secret: str, name: str) -> bytes:
    if secret.casefold() in _PLACEHOLDERS or len(secret.encode()) < 16:
        raise ConfigurationError(f"{name} is a placeholder or shorter than 16 bytes")
    return secret.encode()


def _type_name(annotation: object) -> str:
    if get_origin(annotation) is Literal:
        return " or ".join(f"`{a}`" for a in get_args(annotation))
    args = [a for a in get_args(annotation) if a is not type(None)]
    if args:  # X | None
        return _type_name(args[0]) + ", optional"
    return f"`{getattr(annotation, '__name__', annotation)}`"


def configuration_markdown() -> str:
    """docs/CONFIGURATION.md: every setting, its type, default and meaning, from the class."""
    lines = ["# Configuration", "",
             "Environment variables with the prefix `RISKGRAPH_`, or a `.env` file in the working",
             "directory. Written from `serving/settings.py` by `python -m serving.settings`; do not",
             "edit by hand.", "",
             "| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        kind = _type_name(field.annotation)
        if field.default_factory is not None:
            default = "see meaning"
        elif isinstance(field.default, SecretStr):
            default = "(development value)"
        else:
            default = "unset" if field.default is None else f"`{field.default}`"
        meaning = (field.description or "").replace("|", "\\|")
        lines.append(f"| `RISKGRAPH_{name}` | {kind} | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


if __name__ == "__main__":
    print(configuration_markdown(), end="")
