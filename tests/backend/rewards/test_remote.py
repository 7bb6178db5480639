import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from neighbor_grpo.backend.rewards import RewardError, build_reward
from neighbor_grpo.backend.rewards.remote import decode_png


class BrightnessServer(BaseHTTPRequestHandler):
    """Scores mean brightness; answers the first `fail_first` requests with `fail_status` and the
    first `slow_first` requests too late for a short timeout."""

    fail_first = 0
    fail_status = 503
    requests: list[dict]

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(payload)
        if len(self.server.requests) <= self.server.fail_first:
            return self._send(self.server.fail_status, {"error": "model is still loading"})
        if len(self.server.requests) <= self.server.slow_first:
            time.sleep(0.6)
            return None  # the client gave up long ago
        scores = [decode_png(image).mean().item() for image in payload["images"]]
        return self._send(200, {"scores": scores})

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BrightnessServer)
    httpd.requests, httpd.fail_first, httpd.fail_status, httpd.slow_first = [], 0, 503, 0
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd):
    return f"http://127.0.0.1:{httpd.server_address[1]}/score"


def test_remote_reward_works_end_to_end_in_batches(server):
    images = torch.linspace(0, 1, 5)[:, None, None, None].expand(5, 3, 8, 8).contiguous()
    prompts = [f"prompt {i}" for i in range(5)]
    scores = build_reward(f"remote url={_url(server)} batch_size=2").score(images, prompts)
    torch.testing.assert_close(scores, torch.linspace(0, 1, 5), atol=1 / 255, rtol=0)
    assert [len(r["images"]) for r in server.requests] == [2, 2, 1]
    assert server.requests[0]["prompts"] == ["prompt 0", "prompt 1"]


def test_remote_reward_retries_a_failing_first_attempt(server):
    server.fail_first = 1
    reward = build_reward(f"remote url={_url(server)} retries=2 backoff=0.01")
    assert reward.score(torch.ones(1, 3, 8, 8), ["x"]).tolist() == [1.0]
    assert len(server.requests) == 2


def test_remote_reward_retries_after_a_timeout(server):
    server.slow_first = 1
    reward = build_reward(f"remote url={_url(server)} timeout=0.2 retries=1 backoff=0.01")
    assert reward.score(torch.zeros(2, 3, 8, 8), ["x", "y"]).tolist() == [0.0, 0.0]
    assert len(server.requests) == 2


def test_remote_reward_gives_up_with_the_server_message(server):
    server.fail_first, server.fail_status = 10, 400
    reward = build_reward(f"remote url={_url(server)} retries=3 backoff=0.01")
    with pytest.raises(RewardError, match=r"HTTP 400 after 1 attempt.*model is still loading"):
        reward.score(torch.ones(1, 3, 8, 8), ["x"])
    assert len(server.requests) == 1  # a client error is not retried


def test_remote_reward_reports_an_unreachable_server(server):
    url = _url(server)
    server.shutdown()
    server.server_close()
    reward = build_reward(f"remote url={url} retries=1 backoff=0.01 timeout=2")
    with pytest.raises(RewardError, match="no answer after 2 attempt"):
        reward.score(torch.ones(1, 3, 8, 8), ["x"])
