"""A reward served over HTTP, for heavy reward models that need their own environment or GPU.

Protocol (docs/rewards.md): POST JSON {"images": [base64 PNG, ...], "prompts": [...]} to the URL;
the server answers 200 with {"scores": [one number per image]}. Timeouts, connection errors,
429 and 5xx are retried with exponential backoff; other 4xx answers fail at once, quoting the
server's message.
"""

from __future__ import annotations

import base64
import io
import time

import torch

from .base import Reward, RewardError
from .options import Options
from .registry import RewardEntry, register_reward

_RETRY_STATUS = {429, 500, 502, 503, 504}


def encode_png(image: torch.Tensor) -> str:
    """One image [3, H, W] in 0..1 as base64 8-bit PNG."""
    from PIL import Image

    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_png(text: str) -> torch.Tensor:
    """The inverse of `encode_png`, for servers written in Python."""
    import numpy as np
    from PIL import Image

    picture = Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB")
    return torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float() / 255.0


class RemoteReward(Reward):
    name = "remote"
    default_batch_size = 16

    def __init__(
        self,
        url: str,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        version: str = "1",
        batch_size: int | None = None,
    ):
        import requests

        # Images are encoded on the CPU; the server does the heavy work wherever it runs.
        super().__init__("cpu", batch_size)
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self.version = version
        self._session = requests.Session()

    @property
    def label(self) -> str:
        return f"remote reward {self.url}"

    def _post(self, payload: dict) -> dict:
        import requests

        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._session.post(self.url, json=payload, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as error:
                if last:
                    raise RewardError(
                        f"{self.label}: no answer after {self.retries + 1} attempt(s) ({type(error).__name__}); "
                        "is the server running? (options url, timeout, retries)"
                    ) from None
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        raise RewardError(f"{self.label} answered with non-JSON: {response.text[:200]!r}") from None
                if response.status_code not in _RETRY_STATUS or last:
                    raise RewardError(
                        f"{self.label} answered HTTP {response.status_code} "
                        f"after {attempt + 1} attempt(s): {response.text[:300]}"
                    )
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        answer = self._post({"images": [encode_png(image) for image in images], "prompts": prompts})
        if not isinstance(answer, dict) or "scores" not in answer:
            raise RewardError(f'{self.label} answered without "scores": {str(answer)[:200]}')
        return answer["scores"]  # the base class checks count and finiteness


def _build(options: Options, device: torch.device) -> Reward:
    url = options.require("url", "http://127.0.0.1:8000/score")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"reward 'remote': option url must start with http:// or https://, got {url!r}")
    return RemoteReward(
        url,
        timeout=options.number("timeout", 60.0),
        retries=options.integer("retries", 3, minimum=0),
        backoff=options.number("backoff", 1.0),
        version=options.text("version", "1"),
        batch_size=options.integer("batch_size", None),
    )


register_reward(
    RewardEntry(
        "remote",
        "1",
        "a reward server over HTTP (JSON, base64 PNG); options url, timeout, retries, backoff, version",
        build=_build,
        options=("url", "timeout", "retries", "backoff", "version"),
    )
)
