"""Folders of videos: find and score them into a table, organise a scored folder into a Hugging Face
`videofolder` dataset, and upload that to the Hub (the `score`, `organize` and `upload` commands)."""

from .dataset import METADATA_COLUMNS, OrganizeReport, organize
from .find import VIDEO_EXTENSIONS, find_videos, prompt_from_file_name, read_prompts_csv, resolve_prompt
from .score import ScoreSummary, score_folder
from .table import COLUMNS, read_table
from .upload import FILES_PER_COMMIT, files_to_upload, upload

__all__ = [
    "COLUMNS",
    "FILES_PER_COMMIT",
    "METADATA_COLUMNS",
    "VIDEO_EXTENSIONS",
    "OrganizeReport",
    "ScoreSummary",
    "files_to_upload",
    "find_videos",
    "organize",
    "prompt_from_file_name",
    "read_prompts_csv",
    "read_table",
    "resolve_prompt",
    "score_folder",
    "upload",
]
