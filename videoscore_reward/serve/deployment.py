"""The reward server: a Ray Serve deployment that batches concurrent score requests into one reward call.

    POST /score   safetensors body (see `protocol`) -> {"scores": [[...]], "rewards": [...]}
    GET  /info    model, aspects, score range, frames per video, weights, limits
    GET  /health  {"status": "ok", "batch_sizes": {videos per model call: times}} of the replica that answers

Ray Serve runs the same deployment on one machine or as replicas across a cluster's GPUs, routes
each HTTP request to a replica, and `@serve.batch` merges the requests that wait together in a
replica (up to `max_batch_size` videos, at most `batch_wait_s` of waiting) into one call.
"""


import asyncio
import hmac
import logging
import os
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..extras import require

require("serve", "videoscore_reward.serve.deployment")

from fastapi import FastAPI, Request  # noqa: E402  (after the check, for its error message)
from fastapi.responses import JSONResponse  # noqa: E402
from ray import serve  # noqa: E402

from .._version import __version__  # noqa: E402
from ..reward import RewardOutput, VideoScoreReward  # noqa: E402
from ..reward.preprocess import check_videos  # noqa: E402
from .protocol import ProtocolError, ScoreRequest, decode_request, encode_response  # noqa: E402

logger = logging.getLogger("videoscore_reward.serve")

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServerSettings:
    """What `videoscore-reward serve` passes to each replica (picklable, sent through Ray)."""

    model: str
    dtype: str | None = None
    num_frames: int | None = None
    weights: dict[str, float] | None = None
    normalize: str = "raw"
    batch_size: int = 8
    device: str | None = None
    max_batch_size: int = 16
    batch_wait_s: float = 0.01
    max_request_bytes: int = 512 * 2**20
    token: str | None = field(default=None, repr=False)


def _count_videos(requests: list[ScoreRequest]) -> int:
    return sum(len(request) for request in requests)


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


app = FastAPI(title="videoscore-reward", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)


@serve.deployment(name="VideoScoreRewardServer")
@serve.ingress(app)
class RewardServer:
    """One replica: loads the reward once, answers score requests in micro-batches."""

    def __init__(self, settings: ServerSettings):
        import torch

        dtype = getattr(torch, settings.dtype) if settings.dtype else None
        self.settings = settings
        self.reward = VideoScoreReward.from_pretrained(
            settings.model, device=settings.device, dtype=dtype, num_frames=settings.num_frames,
            weights=settings.weights, normalize=settings.normalize, batch_size=settings.batch_size,
        )
        self.batch_sizes = Counter()
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="videoscore-model")
        self._score_batch.set_max_batch_size(settings.max_batch_size)
        self._score_batch.set_batch_wait_timeout_s(settings.batch_wait_s)
        logger.info("videoscore-reward replica ready (pid %d): %r", os.getpid(), self.reward)

    def _authorized(self, request: Request) -> bool:
        if not self.settings.token:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.settings.token.encode())

    @app.get("/health")
    async def health(self) -> dict:
        return {"status": "ok", "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())}}

    @app.get("/info")
    async def info(self, request: Request):
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        reward = self.reward
        return {
            "model": self.settings.model,
            "aspects": list(reward.aspects),
            "score_range": list(reward.score_range),
            "num_frames": reward.num_frames,
            "weights": reward.weights_by_aspect(),
            "normalize": reward.normalize,
            "dtype": str(reward.dtype).removeprefix("torch."),
            "device": str(reward.device),
            "tiny_random": reward.is_tiny_random,
            "max_batch_size": self.settings.max_batch_size,
            "max_request_bytes": self.settings.max_request_bytes,
            "version": __version__,
        }

    @app.post("/score")
    async def score(self, request: Request):
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        limit = self.settings.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _error(413, f"request body of {int(declared)} bytes exceeds the server's limit of {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _error(413, f"request body exceeds the server's limit of {limit} bytes")
        try:
            decoded = decode_request(bytes(body))
            # The reward's own checks (shape, channels, value range), before the request joins a batch,
            # so that one bad request cannot fail the others' batch.
            check_videos(decoded.videos, value_range=decoded.value_range)
            self.reward.check_prompts(decoded.prompts, len(decoded.videos))
        except (ProtocolError, ValueError, TypeError) as error:
            return _error(400, f"bad score request: {error}")
        if len(decoded) > self.settings.max_batch_size:
            return _error(413, f"{len(decoded)} videos in one request; this server takes at most "
                               f"{self.settings.max_batch_size} (RemoteReward splits larger batches)")
        result = await self._score_batch(decoded)
        if isinstance(result, Exception):
            return _error(500, f"scoring failed: {type(result).__name__}: {result}")
        return encode_response(result.scores, result.rewards)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01, batch_size_fn=_count_videos)
    async def _score_batch(self, requests: list[ScoreRequest]) -> list:
        # The model runs off the event loop, so that the replica keeps accepting (and queueing) requests, and
        # always on the same thread: torch's CPU thread pool is per calling thread, and rotating callers
        # would start one pool each and oversubscribe the cores.
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, self._score_requests, requests)

    def _score_requests(self, requests: list[ScoreRequest]) -> list:
        """One reward call per value range for the whole batch; the outputs split back per request.

        If a merged call fails, each request is scored alone, so only the failing one gets the error.
        """
        results: list = [None] * len(requests)
        groups: dict[tuple[float, float], list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(request.value_range, []).append(i)
        for value_range, members in groups.items():
            videos = [video for i in members for video in requests[i].videos]
            prompts = [prompt for i in members for prompt in requests[i].prompts]
            try:
                output = self.reward(videos, prompts, value_range=value_range)
            except Exception:
                for i in members:
                    results[i] = self._score_alone(requests[i])
                continue
            self.batch_sizes[len(videos)] += 1
            start = 0
            for i in members:
                stop = start + len(requests[i])
                results[i] = RewardOutput(output.scores[start:stop], output.rewards[start:stop], output.aspects)
                start = stop
        logger.info("scored %d requests (%d videos) in one batch", len(requests), _count_videos(requests))
        return results

    def _score_alone(self, request: ScoreRequest):
        try:
            output = self.reward(request.videos, request.prompts, value_range=request.value_range)
        except Exception as error:  # handed to this request only; the replica goes on serving
            logger.exception("scoring a request of %d videos failed", len(request))
            return error
        self.batch_sizes[len(request)] += 1
        return output


def build_app(settings: ServerSettings, *, num_replicas: int = 1, gpus_per_replica: float = 0,
              cpus_per_replica: float = 1):
    """The Ray Serve application for `serve.run`: `num_replicas` replicas, each with its resources."""
    return RewardServer.options(
        num_replicas=num_replicas,
        ray_actor_options={"num_gpus": gpus_per_replica, "num_cpus": cpus_per_replica},
        max_ongoing_requests=max(2 * settings.max_batch_size, 32),
        # A model that does not load (wrong path, no network) fails the start instead of being retried for minutes.
        max_constructor_retry_count=1,
    ).bind(settings)


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a bearer token."""
    if host not in LOCAL_HOSTS and not token:
        raise ValueError(f"--host {host} makes the server reachable from other machines: set a bearer token "
                         "(VIDEOSCORE_REWARD_TOKEN or --token) so that only your trainers can use it.")


def run_server(settings: ServerSettings, *, host: str = "127.0.0.1", port: int = 8000, num_replicas: int = 1,
               gpus_per_replica: float | None = None, cpus_per_replica: float = 1, address: str | None = None,
               blocking: bool = True):
    """Start Ray (or join the cluster at `address`), deploy the server on host:port and, with `blocking`,
    serve until interrupted (then the server is shut down). Without `blocking`, returns once the replicas
    are ready. gpus_per_replica: default 1 when the Ray cluster has a GPU, else 0 (CPU replicas)."""
    import ray

    check_binding(host, settings.token)
    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING)
    if gpus_per_replica is None:
        gpus_per_replica = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    serve.start(http_options={"host": host, "port": port})
    application = build_app(settings, num_replicas=num_replicas, gpus_per_replica=gpus_per_replica,
                            cpus_per_replica=cpus_per_replica)
    if not blocking:
        serve.run(application, name="videoscore-reward", route_prefix="/")
        return
    # SIGTERM (a process manager, `kill`) stops the server as Ctrl-C does, so that Ray's processes stop too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve.run(application, name="videoscore-reward", route_prefix="/", blocking=True)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


__all__ = ["RewardServer", "ServerSettings", "build_app", "check_binding", "run_server"]
