"""Shared fixtures. Tests never touch the network: hub lookups are switched off for the session."""

from __future__ import annotations

import os
import uuid

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest
import torch
from torch import nn

from neighbor_grpo.backend.models.base import Conditioning, FlowModel, SamplingDefaults


class ToyTransformer(nn.Module):
    """A per-pixel linear velocity field with a conditioning shift: cheap and differentiable."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.to_q = nn.Conv2d(channels, channels, 1)
        self.to_k = nn.Linear(8, channels)
        self.calls: list[tuple[int, bool]] = []

    def forward(self, x, pooled, sigma):
        self.calls.append((x.shape[0], torch.is_grad_enabled()))
        shift = self.to_k(pooled)[:, :, None, None]
        return self.to_q(x) * (1 + sigma.view(-1, 1, 1, 1)) + shift


class ToyFlowModel(FlowModel):
    family = "toy"
    defaults = SamplingDefaults(solver="euler", steps=4, shift=1.0, resolution=8)
    lora_targets = ("to_q", "to_k")

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.transformer = ToyTransformer()

    def encode_prompts(self, prompts):
        pooled = torch.stack([torch.full((8,), float(len(p) % 7) / 7.0) for p in prompts])
        return Conditioning(pooled[:, None, :], pooled)

    def velocity(self, x, sigma, cond):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(x.shape[0])
        return self.transformer(x, cond.pooled, sigma)

    def noise_shape(self, batch, resolution=None):
        return (batch, 4, resolution or 8, resolution or 8)

    def decode(self, latents):
        return ((latents[:, :3] + 1) / 2).clamp(0, 1)


@pytest.fixture
def toy_model() -> ToyFlowModel:
    return ToyFlowModel()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A small random-weight tiny model saved to disk: load it as `tiny:<model_dir>`."""
    from neighbor_grpo.backend.models.tiny import TinyConfig, TinyFlowModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny")
    TinyFlowModel(TinyConfig(num_layers=1)).save(folder)
    return folder


# Registry tests run on SQLite always and on PostgreSQL too when CI (.ci/postgres.sh) or a
# developer provides a server: NGRPO_TEST_DATABASE_URL=postgresql://user@127.0.0.1:port/db.
TEST_DATABASE_URL_ENV = "NGRPO_TEST_DATABASE_URL"
REGISTRY_BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(TEST_DATABASE_URL_ENV) else [])


@pytest.fixture(params=REGISTRY_BACKENDS)
def registry_backend(request, monkeypatch):
    """ "sqlite" or "postgresql"; with PostgreSQL, $NGRPO_DATABASE_URL points at a fresh schema of
    the test server (dropped afterwards), so tests stay independent and child processes that
    inherit the environment (workers, claimers) open the same registry."""
    from neighbor_grpo.storage.registry import forget_registries

    monkeypatch.delenv("NGRPO_DATABASE_URL", raising=False)
    monkeypatch.delenv("NGRPO_RUNS_DIR", raising=False)
    if request.param == "sqlite":
        yield "sqlite"
        return
    from sqlalchemy import create_engine, text

    from neighbor_grpo.storage.registry import database_url

    server = database_url(None, os.environ[TEST_DATABASE_URL_ENV])
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in server else "?"
    monkeypatch.setenv("NGRPO_DATABASE_URL", f"{server}{separator}options=-csearch_path%3D{schema}")
    try:
        yield "postgresql"
    finally:
        forget_registries()
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
