"""Serving the reward: a batching HTTP server on Ray Serve (`videoscore-reward serve`, the `serve` extra) and
`RemoteReward`, its client with the interface of the local reward.

Only the client is imported here; `serve.deployment` (which imports Ray) is imported by the CLI on demand.
"""

from .client import RemoteReward, RemoteRewardError

__all__ = ["RemoteReward", "RemoteRewardError"]
