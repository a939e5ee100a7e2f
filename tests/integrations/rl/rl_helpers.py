"""What the RL tests share: a known reward and a tracker that keeps what it is given."""

import torch
from accelerate.tracking import GeneralTracker


def brightness(videos, prompts, metadata):
    """Mean pixel value of each video: float [B] in [0, 1]."""
    return videos.mean(dim=(1, 2, 3, 4)), {"brightness": videos.mean(dim=(1, 2, 3, 4))}


class MemoryTracker(GeneralTracker):
    name = "memory"
    requires_logging_directory = False

    def __init__(self):
        super().__init__()
        self.logs, self.config = [], None

    @property
    def tracker(self):
        return self

    def store_init_configuration(self, values):
        self.config = values

    def log(self, values, step=None, **kwargs):
        self.logs.append((step, dict(values)))


def linear_decoder(pipe):
    """Give a tiny Wan pipeline a decoder whose pixels are a known function of the latents.

    The tiny random AutoencoderKLWan maps every latent to nearly the same gray video (shifting one latent
    channel by 1000 moves the mean pixel by 0.007), so no pixel reward can tell its samples apart. The
    replacement decodes the un-normalised latents' first three channels through tanh, resized to the video
    (5 frames of 16x16): brightness becomes 0.5 + mean(tanh(z[:, :3])) / 2. Only the decoder changes; the
    sampling, log-probabilities and updates under test are the trainer's.
    """
    import torch.nn.functional as F

    config = pipe.vae.config
    mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(config.latents_std).view(1, -1, 1, 1, 1)

    def decode(z, return_dict=False):
        z = (z - mean.to(z)) / std.to(z)
        return (torch.tanh(F.interpolate(z[:, :3], size=(5, 16, 16), mode="nearest")),)

    pipe.vae.decode = decode
    return pipe
