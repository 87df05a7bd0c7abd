"""Tests of mnlib.train.distill: the distillation loss and one distillation epoch."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnlib.train.distill import distill_one_epoch, distillation_loss


def test_alpha_zero_is_cross_entropy():
    student, teacher = torch.randn(8, 10), torch.randn(8, 10)
    labels = torch.randint(0, 10, (8,))
    loss = distillation_loss(student, teacher, labels, alpha=0.0)
    torch.testing.assert_close(loss, F.cross_entropy(student, labels))


def test_soft_term_is_zero_when_student_equals_teacher_and_scales_with_t_squared():
    logits, labels = torch.randn(8, 10), torch.randint(0, 10, (8,))
    same = distillation_loss(logits, logits.clone(), labels, alpha=1.0)
    assert float(same) == pytest.approx(0.0, abs=1e-6)
    student, teacher = torch.randn(8, 10), torch.randn(8, 10)
    for temperature in (1.0, 4.0):
        soft = F.kl_div(
            F.log_softmax(student / temperature, 1),
            F.softmax(teacher / temperature, 1),
            reduction="batchmean",
        )
        loss = distillation_loss(student, teacher, labels, temperature=temperature, alpha=1.0)
        torch.testing.assert_close(loss, temperature**2 * soft)


def test_bad_arguments_are_named():
    a, labels = torch.randn(4, 10), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(a, torch.randn(4, 5), labels)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(a, a, labels, temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(a, a, labels, alpha=1.5)


def test_distill_one_epoch_moves_the_student_towards_the_teacher():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    student = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    images = torch.randn(64, 3, 2, 2)
    labels = teacher(images).argmax(1).detach()
    batches = [(images[i : i + 16], labels[i : i + 16]) for i in range(0, 64, 16)]
    teacher_before = [p.clone() for p in teacher.parameters()]
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)

    def gap() -> float:
        with torch.no_grad():
            return float(distillation_loss(student(images), teacher(images), labels, alpha=1.0))

    before = gap()
    for _ in range(5):
        stats = distill_one_epoch(student, teacher, batches, optimizer)
    assert stats.images == 64 and 0 <= float(stats.accuracy) <= 1
    assert gap() < 0.5 * before
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, teacher.parameters(), strict=True))
    assert not teacher.training and student.training
    with pytest.raises(ValueError, match="no batches"):
        distill_one_epoch(student, teacher, [], optimizer)
