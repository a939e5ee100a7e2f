"""The scoring web app (`videoscore-reward app`, needs the `[app]` extra).

Three tabs on one loaded `VideoScoreReward`:

- "Score a video": one upload (or an example) and its prompt -> the five aspect scores on the 1-4
  scale as a table and a bar chart, the weighted reward, and the sampled frames as thumbnails.
- "Compare": several videos for one prompt, ranked by reward (the best-of-N view), with the table as
  a CSV download.
- "Compare runs": two scored tables -> the `compare` report (shifts per aspect, reward hacking flags,
  plots), shown on the page and as one HTML file to download (needs the `[eval]` extra; no model).

Both events go through Gradio's queue with batching and share one worker, so requests that arrive
together are scored in one reward call (per `reward.batch_size` videos) and the model is never run
from two threads at once. Frames and scores come from `videoscore_reward.files`, as in the CLI; the
app does no preprocessing of its own. `requests` handles requests without Gradio, `ui` is the page.
"""

from .ui import build_app, launch

__all__ = ["build_app", "launch"]
