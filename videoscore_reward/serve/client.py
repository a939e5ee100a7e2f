"""`RemoteReward`: the reward of a `videoscore-reward serve` server, with the interface of the local one.

Only the standard library's HTTP client is used, so importing this module never imports Ray.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

from ..reward.aspects import Normalize, Weights
from ..reward.base import BaseReward
from ..reward.output import RewardOutput
from ..reward.preprocess import Layout, VideoBatch, check_videos
from ..reward.sampling import sample_indices
from .protocol import CONTENT_TYPE, ProtocolError, decode_response, encode_request

TOKEN_ENV = "VIDEOSCORE_REWARD_TOKEN"
_RETRY_STATUS = (429, 502, 503, 504)  # overloaded, or replicas (re)starting behind Ray Serve's proxy


class RemoteRewardError(RuntimeError):
    """The server could not be reached, or answered with an error; the message names both.

    `status` is the HTTP status of the answer, or None when no answer came.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RemoteReward(BaseReward):
    """VideoScore scored by a reward server (`videoscore-reward serve`): a drop-in for `VideoScoreReward`.

        reward = RemoteReward("http://reward-host:8000", token=...)   # instead of VideoScoreReward.from_pretrained(...)
        out = reward(videos, prompts)          # videos float [B, T, C, H, W] in [0, 1]; a RewardOutput on `device`
        reward_fn = reward.as_reward_fn()      # the DDPO-style reward function, as for the local reward

    Frames are sampled here, as the local reward samples them (`num_frames`, told by the server), and
    only those are sent, in the caller's dtype (uint8 stays uint8, float stays float: no rounding on the
    way), so the scores equal local scores on the same weights. Batches larger than the server's
    `max_batch_size` go as several concurrent requests, which the server may spread over its replicas.

    weights, normalize: as for `VideoScoreReward`; None takes the server's. The reward is computed here from
    the returned scores with the same formula. token: the server's bearer token (default: the
    `VIDEOSCORE_REWARD_TOKEN` environment variable). timeout: seconds per HTTP request. max_retries:
    further attempts after a connection error, a timeout or a 429/502/503/504 answer, waiting
    `backoff * 2**k` seconds before attempt k + 1. device: where outputs are put (default CPU).
    max_concurrency: requests in flight at once from this client (chunks of a call, and `submit`ted calls).
    Errors are `RemoteRewardError`s naming the server and the cause. Picklable (the connection state is not
    pickled), so it can be handed to worker processes.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        weights: Weights = None,
        normalize: Normalize | None = None,
        timeout: float = 600.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        device: str | torch.device = "cpu",
        max_concurrency: int = 8,
    ):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}.")
        if timeout <= 0 or max_retries < 0 or backoff < 0 or max_concurrency < 1:
            raise ValueError(f"Expected timeout > 0, max_retries >= 0, backoff >= 0 and max_concurrency >= 1, got "
                             f"{timeout}, {max_retries}, {backoff} and {max_concurrency}.")
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.device = torch.device(device)
        self.max_concurrency = int(max_concurrency)
        self.info: dict = self._request("GET", "/info")
        # The model's facts come from the server; BaseReward checks the weights against them.
        self.aspects = tuple(self.info["aspects"])
        self.score_range = tuple(self.info["score_range"])
        self.num_frames: int | None = self.info["num_frames"]
        self.max_batch_size: int = int(self.info["max_batch_size"])
        super().__init__(weights=self.info["weights"] if weights is None else weights,
                         normalize=self.info["normalize"] if normalize is None else normalize,
                         batch_size=self.max_batch_size)
        self._http_executor: ThreadPoolExecutor | None = None

    @property
    def is_tiny_random(self) -> bool:
        return bool(self.info.get("tiny_random", False))

    def __call__(
        self,
        videos: VideoBatch,
        prompts: str | Sequence[str],
        *,
        value_range: tuple[float, float] = (0.0, 1.0),
        layout: Layout = "BTCHW",
    ) -> RewardOutput:
        """Score a batch on the server; arguments and output as for `VideoScoreReward.__call__`.

        Returns scores float32 [B, K] (the server's aspects) and rewards float32 [B] on `device`.
        """
        items = check_videos(videos, layout=layout, value_range=value_range)
        prompts = self.check_prompts(prompts, len(items))
        sampled = [video[sample_indices(video.shape[0], self.num_frames)] for video in items]
        step = self.max_batch_size
        bodies = [encode_request(sampled[i : i + step], prompts[i : i + step], value_range)
                  for i in range(0, len(sampled), step)]
        if len(bodies) == 1:
            answers = [self._request("POST", "/score", bodies[0])]
        else:
            pending = [self._http().submit(self._request, "POST", "/score", body) for body in bodies]
            answers = [future.result() for future in pending]
        num_aspects = len(self.aspects)
        try:
            parts = [decode_response(answer, min(step, len(sampled) - start), num_aspects)
                     for answer, start in zip(answers, range(0, len(sampled), step))]
        except (KeyError, TypeError, ValueError, ProtocolError) as error:
            raise RemoteRewardError(f"{self.url}/score gave an answer that is not a score response: {error}") from None
        return self.output(torch.cat([scores for scores, _ in parts]).to(self.device))

    @property
    def _submit_workers(self) -> int:
        # Up to `max_concurrency` submitted calls in flight together; the server batches them.
        return self.max_concurrency

    # -- HTTP -----------------------------------------------------------------------------------

    def _http(self) -> ThreadPoolExecutor:
        # Not the pool of `submit`: a submitted call waits on its chunks, which must not wait for its worker.
        with self._executor_lock:
            if self._http_executor is None:
                self._http_executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="remote-reward-http")
            return self._http_executor

    def _request(self, method: str, path: str, body: bytes | None = None) -> dict:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = CONTENT_TYPE
        where = f"{self.url}{path}"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(where, data=body, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
                try:
                    return json.loads(payload)
                except ValueError:
                    raise RemoteRewardError(f"{where} answered with something that is not JSON: {payload[:80]!r}",
                                            status=response.status) from None
            except urllib.error.HTTPError as error:
                status, message = error.code, _error_message(error)
                if status not in _RETRY_STATUS or attempt == self.max_retries:
                    hint = " (set token= or VIDEOSCORE_REWARD_TOKEN)" if status == 401 else ""
                    raise RemoteRewardError(f"{where} answered HTTP {status}: {message}{hint}", status=status) from None
                cause = f"HTTP {status}: {message}"
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                reason = getattr(error, "reason", error)  # URLError wraps the socket's error
                reason = reason if isinstance(reason, BaseException) else error
                cause = f"{type(reason).__name__}: {reason}"
                if attempt == self.max_retries:
                    raise RemoteRewardError(f"cannot reach the videoscore-reward server at {where} after "
                                            f"{attempt + 1} attempt(s): {cause}") from None
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_http_executor": None}

    def __repr__(self) -> str:
        weights = self.weights_by_aspect()
        return (f"{type(self).__name__}({self.url!r}, model={self.info.get('model')!r}, num_frames={self.num_frames}, "
                f"normalize={self.normalize!r}, weights={weights})")


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        body = error.read()
    except OSError:
        return error.reason or "no message"
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace").strip() or str(error.reason)
