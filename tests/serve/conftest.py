import socket

import pytest

TOKEN = "test-token-0123"


@pytest.fixture(scope="session")
def token() -> str:
    """The bearer token of the `server` fixture."""
    return TOKEN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server(tiny_checkpoint_dir):
    """One local Ray cluster (2 CPUs) and one reward server on a free port for the whole session,
    started through `run_server` (what `videoscore-reward serve` calls), with a bearer token."""
    import ray
    from ray import serve

    from videoscore_reward.serve.deployment import ServerSettings, run_server

    port = free_port()
    settings = ServerSettings(model=str(tiny_checkpoint_dir), device="cpu", max_batch_size=8, batch_wait_s=0.25,
                              max_request_bytes=4 * 2**20, token=TOKEN)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        run_server(settings, host="127.0.0.1", port=port, blocking=False)
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()
