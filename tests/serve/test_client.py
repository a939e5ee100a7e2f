"""`RemoteReward`'s HTTP behaviour (retries, timeouts, errors) against a stub server, without Ray."""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from videoscore_reward import ASPECTS, RemoteReward, RemoteRewardError

INFO = {"model": "stub", "aspects": list(ASPECTS), "score_range": [1.0, 4.0], "num_frames": 16,
        "weights": dict.fromkeys(ASPECTS, 1.0), "normalize": "raw", "max_batch_size": 8}


@pytest.fixture
def stub():
    """A server that answers /info with the statuses queued in `stub.statuses` (then 200), or after `stub.delay`."""
    calls, statuses = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            calls.append((self.path, time.monotonic()))
            time.sleep(server.delay)
            status = statuses.pop(0) if statuses else 200
            body = json.dumps(INFO if status == 200 else {"error": f"stub says {status}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.calls, server.statuses, server.delay = calls, statuses, 0.0
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_retries_with_backoff_on_503(stub):
    stub.statuses.extend([503, 503])
    reward = RemoteReward(stub.url, max_retries=3, backoff=0.1)
    assert reward.num_frames == 16 and len(stub.calls) == 3
    waits = [b[1] - a[1] for a, b in zip(stub.calls, stub.calls[1:])]
    assert waits[0] >= 0.1 and waits[1] >= 0.2  # 0.1 * 2**k


def test_errors_name_the_server_and_the_cause(stub):
    stub.statuses.append(400)
    with pytest.raises(RemoteRewardError, match=rf"{stub.url}/info answered HTTP 400: stub says 400") as error:
        RemoteReward(stub.url, max_retries=3, backoff=0)
    assert error.value.status == 400 and len(stub.calls) == 1  # a client error is not retried
    stub.statuses.extend([503] * 3)
    with pytest.raises(RemoteRewardError, match="answered HTTP 503: stub says 503"):
        RemoteReward(stub.url, max_retries=2, backoff=0)
    stub.delay = 0.5
    with pytest.raises(RemoteRewardError, match=rf"cannot reach .* {stub.url}/info after 1 attempt\(s\): .*timed out"):
        RemoteReward(stub.url, timeout=0.1, max_retries=0)


def test_unreachable_server_and_bad_arguments(stub):
    url = stub.url
    stub.shutdown()
    stub.server_close()
    with pytest.raises(RemoteRewardError, match=rf"cannot reach the videoscore-reward server at {url}/info after 2 "
                                               r"attempt\(s\): ConnectionRefusedError"):
        RemoteReward(url, max_retries=1, backoff=0)
    with pytest.raises(ValueError, match="url must start with http:// or https://, got 'localhost:8000'"):
        RemoteReward("localhost:8000")
    with pytest.raises(ValueError, match="timeout > 0"):
        RemoteReward(url, timeout=0)


def test_importing_the_client_does_not_import_ray():
    code = "import sys, videoscore_reward; videoscore_reward.RemoteReward; assert 'ray' not in sys.modules, 'ray'"
    subprocess.run([sys.executable, "-c", code], check=True)
