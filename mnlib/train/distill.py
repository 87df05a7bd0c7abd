"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): a student learns from a teacher.

The student is trained on a mix of two targets: the true labels (cross-entropy) and the
teacher's *soft* predictions, both softened by a temperature T. The soft targets say more
than a label: that a given 3 looks a little like an 8, and not at all like a 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mnlib.train.loop import Batches, EpochStats


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """``alpha · T² · KL(teacher_T || student_T) + (1 - alpha) · CE(student, labels)``, 0-d.

    ``student_logits`` and ``teacher_logits`` [B, classes], ``labels`` [B]. ``_T`` means
    softmax(logits / T). The soft term's gradients shrink as 1/T², so it is multiplied by T²
    to keep its weight independent of T (Hinton et al., §2). ``alpha = 0`` is plain training.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} must have the same shape [B, classes]"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    soft_student = F.log_softmax(student_logits / temperature, dim=1)
    soft_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    soft = F.kl_div(soft_student, soft_teacher, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * temperature**2 * soft + (1 - alpha) * hard


def distill_one_epoch(
    student: nn.Module,
    teacher: nn.Module,
    loader: Batches,
    optimizer: torch.optim.Optimizer,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> EpochStats:
    """Train ``student`` for one epoch on ``loader`` against ``teacher``'s soft predictions.

    :func:`mnlib.train.train_one_epoch` with :func:`distillation_loss`: the teacher (eval
    mode, no gradients) sees the same augmented batch [B, C, H, W] as the student. Both models
    must be on the same device; batches are moved there. Returns the student's mean loss and
    training accuracy over the epoch, as ``train_one_epoch`` does.
    """
    device = next(student.parameters()).device
    student.train()
    teacher.eval()  # its BatchNorm uses its running statistics; it is not trained
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    images_seen = 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        with torch.no_grad():
            teacher_logits = teacher(images)  # [B, classes]
        logits = student(images)  # [B, classes]
        loss = distillation_loss(
            logits, teacher_logits, labels, temperature=temperature, alpha=alpha
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.detach() * len(labels)
        correct += (logits.argmax(dim=1) == labels).sum()
        images_seen += len(labels)
    if images_seen == 0:
        raise ValueError("the loader yielded no batches")
    return EpochStats(loss_sum / images_seen, correct / images_seen, images_seen)
