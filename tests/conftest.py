"""Test-suite settings.

The unit tests run many tiny forward and backward passes. With one intra-op thread each pass
has no thread start-up and synchronisation cost, and the suite stays fast even when other
processes load the CPU (measured here: some model tests ran 5-50× slower with 2 threads on a
busy 2-core machine). Notebooks run in their own kernels and keep PyTorch's default.
"""

import torch

torch.set_num_threads(1)
