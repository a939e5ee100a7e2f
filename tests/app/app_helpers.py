"""Helpers shared by the app tests (imported as `app_helpers`)."""

import re
import socket

from videoscore_reward import ASPECTS, load_video


def free_port() -> int:
    """A localhost port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def library_scores(reward, path, prompt: str) -> list[float]:
    """The five scores the library gives `path` on its own: load_video + one reward call."""
    return reward([load_video(path, num_frames=reward.num_frames)], [prompt]).scores[0].tolist()


def shown(value: float) -> str:
    """A score as the page shows it."""
    return f"{value:.3f}"


def table_numbers(table_html: str) -> tuple[list[str], str]:
    """The five score cells (ASPECTS order) and the reward cell of the page's score table, as text."""
    cells = dict(re.findall(r'data-aspect="([^"]+)">([^<]*)<', table_html))
    (reward,) = re.findall(r'class="vs-reward">([^<]*)<', table_html)
    return [cells[aspect] for aspect in ASPECTS], reward
