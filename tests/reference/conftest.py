from pathlib import Path

import pytest
from reference_env import SHARED_STACK, reference_python


@pytest.fixture(scope="session")
def original_python() -> Path:
    """A Python that runs the original VideoScore stack: mantis-vl's model on transformers 4.44."""
    return reference_python(
        "original",
        [*SHARED_STACK, "transformers==4.44.2", "tokenizers==0.19.1", "huggingface_hub==0.24.6"],
        # Without its dependencies: mantis-vl pins datasets 2.18 and torchvision, which its model does not use.
        no_deps=["mantis-vl==0.0.5"],
        imports=["import av, numpy, PIL, torch", "import transformers",
                 "assert transformers.__version__ == '4.44.2', transformers.__version__",
                 "from mantis.models.idefics2 import Idefics2ForSequenceClassification"],
    )


@pytest.fixture(scope="session")
def videoscore2_python() -> Path:
    """A Python that runs VideoScore2's official inference stack: transformers 4.53.2 and qwen-vl-utils."""
    return reference_python(
        "videoscore2",
        [*SHARED_STACK, "transformers==4.53.2", "tokenizers==0.21.4", "huggingface_hub==0.33.4"],
        # Without its dependencies: qwen-vl-utils wants a torchvision, which cannot live next to this torch
        # (videoscore2_pipeline.py stands in for the two functions it calls).
        no_deps=["qwen-vl-utils==0.0.14"],
        imports=["import av, numpy, torch", "import transformers",
                 "assert transformers.__version__ == '4.53.2', transformers.__version__",
                 "import importlib.util; assert importlib.util.find_spec('qwen_vl_utils')"],
    )
