"""The query text VideoScore was trained with."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

IMAGE_TOKEN = "<image>"


@lru_cache(maxsize=1)
def query_template() -> str:
    # Read as bytes: the model only works with the exact training text, newlines included.
    return files(__package__).joinpath("prompt_template.txt").read_bytes().decode("utf-8")


def build_query(text_prompt: str, num_frames: int) -> str:
    """The query for one video: the template with the prompt in place, then one `<image> ` per frame.

    Mirrors the original: frames still missing after the `<image>` tokens already in the text
    are appended as `"<image> "` each.
    """
    query = query_template().format(text_prompt=text_prompt)
    missing = num_frames - query.count(IMAGE_TOKEN)
    return query + (IMAGE_TOKEN + " ") * max(missing, 0)
