"""A reward served over HTTP, for heavy reward models that need their own environment or GPU.

Protocol (docs/rewards.md): POST JSON {"images": [base64 PNG, ...], "prompts": [...]} to the URL;
the server answers 200 with {"scores": [one number per image]}. Timeouts, connection errors,
429 and 5xx are retried with exponential backoff; other 4xx answers fail at once, quoting the
server's message. A total deadline bounds all attempts of one batch together, and an answer larger
than `max_bytes` is cut off unread: a hung or babbling server fails the run with a message
instead of stalling it or filling memory.
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
MAX_BYTES = 16 * 1024 * 1024  # a score list for a batch is a few KB; this leaves room for extras


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
        deadline: float = 600.0,
        max_bytes: int = MAX_BYTES,
    ):
        import requests

        # Images are encoded on the CPU; the server does the heavy work wherever it runs.
        super().__init__("cpu", batch_size)
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self.deadline, self.max_bytes = deadline, max_bytes
        self.version = version
        self._session = requests.Session()

    @property
    def label(self) -> str:
        return f"remote reward {self.url}"

    def _post(self, payload: dict) -> dict:
        import requests

        give_up = time.monotonic() + self.deadline
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            left = give_up - time.monotonic()
            if left <= 0:
                raise RewardError(
                    f"{self.label}: no usable answer within the {self.deadline:g} s deadline "
                    f"({attempt} attempt(s)); raise option deadline or check the server"
                )
            try:
                with self._session.post(self.url, json=payload, timeout=min(self.timeout, left), stream=True) as answer:
                    status, body = answer.status_code, self._read(answer, give_up)
            except (requests.ConnectionError, requests.Timeout) as error:
                if last:
                    raise RewardError(
                        f"{self.label}: no answer after {self.retries + 1} attempt(s) ({type(error).__name__}); "
                        "is the server running? (options url, timeout, retries, deadline)"
                    ) from None
            else:
                if status == 200:
                    return self._json(body)
                if status not in _RETRY_STATUS or last:
                    text = body[:300].decode("utf-8", "replace")
                    raise RewardError(f"{self.label} answered HTTP {status} after {attempt + 1} attempt(s): {text}")
            time.sleep(max(0.0, min(self.backoff * 2**attempt, give_up - time.monotonic())))
        raise AssertionError("unreachable")

    def _read(self, answer, give_up: float) -> bytes:
        """The body, at most `max_bytes`, read before the deadline."""
        import requests

        chunks, size = [], 0
        for chunk in answer.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > self.max_bytes:
                raise RewardError(
                    f"{self.label} answered more than {self.max_bytes} bytes; a score list is far smaller — "
                    "is the url the scoring endpoint? (option max_bytes raises the limit)"
                )
            if time.monotonic() > give_up:
                raise requests.Timeout("the answer arrived too slowly")
            chunks.append(chunk)
        return b"".join(chunks)

    def _json(self, body: bytes) -> dict:
        import json

        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise RewardError(
                f"{self.label} answered with something that is not JSON: {body[:200]!r}; "
                'it must answer {"scores": [one number per image]}'
            ) from None

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
        timeout=options.number("timeout", 60.0, low=0.1, high=3600.0),
        retries=options.integer("retries", 3, minimum=0),
        backoff=options.number("backoff", 1.0, low=0.0, high=600.0),
        version=options.text("version", "1"),
        batch_size=options.integer("batch_size", None),
        deadline=options.number("deadline", 600.0, low=0.1, high=86400.0),
        max_bytes=options.integer("max_bytes", MAX_BYTES, minimum=1024),
    )


register_reward(
    RewardEntry(
        "remote",
        "1",
        "a reward server over HTTP (JSON, base64 PNG); options url, timeout, retries, backoff, deadline, max_bytes, version",
        build=_build,
        options=("url", "timeout", "retries", "backoff", "version", "deadline", "max_bytes"),
    )
)
