"""The trainer registry: the architecture a training recipe names -> the function that trains it.

The application's ``train`` command reads the recipe's ``architecture`` and calls the trainer
registered for it, so it names no method; a method that can be trained registers its architectures here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from infvsr_bench.registry import Registry

# (recipe folder, recipe name, Hydra overrides of the recipe) -> the folder the training wrote.
Trainer = Callable[[Path, str, list[str]], Path]

TRAINERS: Registry[Trainer] = Registry("architecture")
TRAINERS.register("infvsr", "methods.infvsr.training.trainer:train_recipe")
TRAINERS.register("infvsr-tiny", "methods.infvsr.training.trainer:train_recipe")
