"""The query text VideoScore was trained with."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files

from .checkpoints import FAMILIES

IMAGE_TOKEN = "<image>"


@lru_cache(maxsize=1)
def query_template() -> str:
    """VideoScore's query text with its `{text_prompt}` placeholder, byte for byte as it was trained."""
    # Read as bytes: the model only works with the exact training text, newlines included.
    return files(__package__).joinpath(FAMILIES["videoscore"].query_file).read_bytes().decode("utf-8")


def build_query(text_prompt: str, num_frames: int) -> str:
    """The query for one video: the template with the prompt in place, then one `<image> ` per frame.

    Mirrors the original: frames still missing after the `<image>` tokens already in the text
    are appended as `"<image> "` each.
    """
    query = query_template().format(text_prompt=text_prompt)
    missing = num_frames - query.count(IMAGE_TOKEN)
    return query + (IMAGE_TOKEN + " ") * max(missing, 0)


def neutralize_special_tokens(prompt: str, special_tokens: Iterable[str]) -> str:
    """`prompt` with every special token of the tokenizer (`<image>`, `<s>`, ...) turned into plain words.

    A user's `<image>` would otherwise take one of the video's frame slots (the query counts them) and a
    `</s>` would end the text early. Their angle brackets are dropped (`<image>` -> `image`), so the words
    still reach the model but as text. Longer tokens go first, so one that contains another stays whole.
    """
    for token in sorted(special_tokens, key=len, reverse=True):
        if token in prompt:
            prompt = prompt.replace(token, token.strip("<>"))
    return prompt
