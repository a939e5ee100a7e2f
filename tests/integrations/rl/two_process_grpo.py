"""Run by test_grpo.py under `accelerate launch --cpu --num_processes 2`: sample one epoch of GRPO groups that
span the two processes and save what each process sees (its rewards, group ids, prompts and advantages)."""

import os
import sys

import torch
from rl_helpers import brightness

from videoscore_reward.integrations.rl import GRPOConfig, GRPOTrainer
from videoscore_reward.testing.pipelines import tiny_wan_pipeline

config = GRPOConfig(num_frames=5, height=16, width=16, max_sequence_length=16, sample_num_steps=2, sample_guidance_scale=1.0,
                    sample_batch_size=2, sample_num_batches_per_epoch=2, group_size=4, train_batch_size=2, train_gradient_accumulation_steps=1,
                    async_reward=False, save_every=0, lora_rank=2, project_dir=sys.argv[1])
trainer = GRPOTrainer(config, tiny_wan_pipeline(), brightness, ["a cat", "a dog", "a fox"])
trajectories, rewards, info = trainer.sample_epoch()
advantages, _ = trainer.compute_advantages(trajectories, rewards, info)
torch.save({"rewards": rewards, "group_ids": trajectories.group_ids.cpu(), "prompts": trajectories.prompts,
            "advantages": advantages.cpu(), "processes": trainer.accelerator.num_processes},
           f"{sys.argv[1]}/rank{trainer.accelerator.process_index}.pt")
trainer.end()
# Everything is saved and the process group is destroyed; skip the interpreter's teardown, where torch 2.13's
# CPU (gloo) backend aborts now and then in a C++ destructor ("terminate called without an active exception",
# no Python frame on any thread: seen in about 1 run in 4), which would fail the launch after the work is done.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
