"""mnlib.data: decoded splits, the cache, the fast loaders, augmentation and the classic path.

Needs the course's offline data: MNLIB_DATA must point at it (CI sets MNLIB_DATA=../shared/data).
The decoded arrays are cached in a temporary folder, so each data set is decoded once per run.
"""

import os
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision.datasets.cifar
import torchvision.datasets.mnist
import torchvision.transforms.functional as TF
from torchvision import transforms

import mnlib.data.cache
from mnlib.data import (
    AUGMENTATIONS,
    CLASS_NAMES,
    DATASETS,
    MEAN,
    STD,
    ShiftFlip,
    balanced_subset,
    classic_loaders,
    data_root,
    load_tensors,
    loaders,
    normalize,
)

SPLIT_SHAPES = {
    ("mnist", "train"): (60_000, 1, 28, 28),
    ("mnist", "test"): (10_000, 1, 28, 28),
    ("cifar10", "train"): (50_000, 3, 32, 32),
    ("cifar10", "test"): (10_000, 3, 32, 32),
}


@pytest.fixture(scope="module", autouse=True)
def decoded_data_cache(tmp_path_factory):
    """Check MNLIB_DATA and cache the decoded arrays in one temporary folder for this module."""
    if not os.environ.get("MNLIB_DATA"):
        pytest.fail(
            "MNLIB_DATA is not set: point it at the course's offline data folder, "
            "e.g. MNLIB_DATA=../shared/data (CI sets it)",
            pytrace=False,
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNLIB_CACHE", str(tmp_path_factory.mktemp("mnlib-cache")))
        yield


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder for one test; returns where ``mnist-test`` is cached."""
    monkeypatch.setenv("MNLIB_CACHE", str(tmp_path))
    return mnlib.data.cache.cache_dir(data_root()) / "mnist-test.pt"


@pytest.fixture
def no_downloads(monkeypatch):
    """Make every torchvision download fail at once, as it does offline (without waiting)."""

    def offline(*args, **kwargs):
        raise URLError("downloads are disabled in this test")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)


# --- the decoded splits -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "split"), list(SPLIT_SHAPES))
def test_splits_have_the_expected_shapes_dtypes_and_labels(name, split):
    images, labels = load_tensors(name, split)
    assert tuple(images.shape) == SPLIT_SHAPES[name, split]
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert labels.shape == (len(images),)
    assert sorted(labels.unique().tolist()) == list(range(len(CLASS_NAMES[name])))


def test_first_mnist_training_labels_are_the_originals():
    _, labels = load_tensors("mnist", "train")
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_class_names_are_in_the_standard_label_order():
    assert CLASS_NAMES["mnist"] == tuple("0123456789")
    assert CLASS_NAMES["cifar10"][0] == "airplane" and CLASS_NAMES["cifar10"][9] == "truck"
    assert list(CLASS_NAMES["cifar10"]) == sorted(CLASS_NAMES["cifar10"])


@pytest.mark.parametrize(
    ("name", "std_tolerance"),
    # MEAN/STD are the statistics of the original CIFAR-10 release. The offline copy is JPEG
    # (quality ~75), which smooths the images a little: its std is up to 0.002 lower.
    [("mnist", 1e-3), ("cifar10", 2.5e-3)],
)
def test_mean_and_std_match_the_training_data(name, std_tolerance):
    images, _ = load_tensors(name, "train")
    values = torch.arange(256, dtype=torch.float64) / 255
    for channel, (mean, std) in enumerate(zip(MEAN[name], STD[name], strict=True)):
        # Exact statistics from a histogram of the 256 pixel values (no 50M-float copy).
        counts = torch.bincount(images[:, channel].flatten(), minlength=256).double()
        measured_mean = (counts * values).sum() / counts.sum()
        measured_std = ((counts * (values - measured_mean) ** 2).sum() / counts.sum()).sqrt()
        assert abs(measured_mean.item() - mean) < 1e-3, (channel, measured_mean.item())
        assert abs(measured_std.item() - std) < std_tolerance, (channel, measured_std.item())


# --- the fast loaders -------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_batches_are_normalized_float_images_on_the_device(name):
    train_loader, _ = loaders(name, batch_size=4096)
    images, labels = next(iter(train_loader))
    channels, height, width = SPLIT_SHAPES[name, "train"][1:]
    assert images.shape == (4096, channels, height, width) and images.dtype == torch.float32
    assert labels.shape == (4096,) and labels.dtype == torch.int64
    assert images.device == train_loader.device == labels.device
    assert abs(images.mean().item()) < 0.05
    assert abs(images.std().item() - 1) < 0.05


def test_an_epoch_yields_every_image_once_in_len_batches():
    train_loader, test_loader = loaders("mnist", batch_size=64, subset=1000, test_subset=500)
    assert (train_loader.dataset_size, len(train_loader), train_loader.batch_size) == (1000, 16, 64)
    assert (test_loader.dataset_size, len(test_loader)) == (500, 8)
    batches = list(train_loader)
    assert len(batches) == 16 and len(batches[-1][1]) == 1000 - 15 * 64
    epoch_labels = torch.cat([labels for _, labels in batches]).cpu()
    assert epoch_labels.sort().values.equal(train_loader.labels.cpu().sort().values)


def test_subset_is_class_balanced_seeded_and_deterministic():
    _, labels = load_tensors("mnist", "train")
    chosen = balanced_subset(labels, 1005, num_classes=10, seed=0)
    assert torch.bincount(labels[chosen], minlength=10).tolist() == [100] * 10
    assert chosen.equal(balanced_subset(labels, 1005, num_classes=10, seed=0))
    assert not chosen.equal(balanced_subset(labels, 1005, num_classes=10, seed=1))

    train_loader, test_loader = loaders("mnist", subset=1005, test_subset=200, seed=0)
    assert train_loader.labels.cpu().equal(labels[chosen])
    assert torch.bincount(test_loader.labels.cpu(), minlength=10).tolist() == [20] * 10


@pytest.mark.parametrize(("size", "message"), [(5, "subset >= 10"), (60_000, "smallest class")])
def test_subset_sizes_that_cannot_be_balanced_are_errors(size, message):
    with pytest.raises(ValueError, match=message):
        loaders("mnist", subset=size)


def first_batch(loader):
    images, labels = next(iter(loader))
    return images.cpu(), labels.cpu()


def test_every_epoch_is_reshuffled_and_depends_only_on_seed_and_epoch():
    rng_state = torch.get_rng_state()
    loader, _ = loaders("mnist", batch_size=100, subset=1000, seed=0)
    epoch0, epoch1 = first_batch(loader), first_batch(loader)  # iterating advances the epoch
    assert loader.epoch == 2
    assert not epoch0[1].equal(epoch1[1])

    replay, _ = loaders("mnist", batch_size=100, subset=1000, seed=0)
    replay.set_epoch(1)
    assert all(a.equal(b) for a, b in zip(first_batch(replay), epoch1, strict=True))
    replay.set_epoch(0)
    assert all(a.equal(b) for a, b in zip(first_batch(replay), epoch0, strict=True))

    other_seed, _ = loaders("mnist", batch_size=100, subset=1000, seed=1)
    other_seed.set_epoch(0)
    assert not first_batch(other_seed)[0].equal(epoch0[0])
    assert torch.get_rng_state().equal(rng_state), "the loader must not touch the global RNG"


# --- augmentation -----------------------------------------------------------------------------


def test_shift_flip_matches_torchvision_random_crop_and_flip_image_by_image():
    images, _ = load_tensors("cifar10", "test")
    images = images[:32]
    augmentation = AUGMENTATIONS["cifar10"]
    assert augmentation == ShiftFlip(max_shift=4, flip=True)
    offsets, flips = augmentation.sample(len(images), torch.Generator().manual_seed(0))
    augmented = augmentation(images, offsets, flips)
    assert augmented.shape == images.shape and augmented.dtype == torch.uint8
    for image, out, (top, left), flip in zip(images, augmented, offsets, flips, strict=True):
        expected = TF.crop(TF.pad(image, [4]), int(top), int(left), 32, 32)
        if flip:
            expected = TF.hflip(expected)
        assert out.equal(expected)


def test_shift_flip_draws_every_offset_and_flips_half_the_images():
    generator = torch.Generator().manual_seed(0)
    offsets, flips = AUGMENTATIONS["cifar10"].sample(20_000, generator)
    assert offsets.unique().tolist() == list(range(9))
    assert 0.47 < flips.float().mean().item() < 0.53
    offsets, flips = AUGMENTATIONS["mnist"].sample(20_000, generator)  # shift by ≤ 2, no flip
    assert offsets.unique().tolist() == list(range(5)) and not flips.any()


@pytest.mark.parametrize("name", DATASETS)
def test_augmentation_changes_train_images_but_keeps_order_and_shapes(name):
    plain, _ = loaders(name, batch_size=100, subset=500, seed=3)
    augmented, _ = loaders(name, batch_size=100, subset=500, seed=3, augment=True)
    plain_images, plain_labels = first_batch(plain)
    augmented_images, augmented_labels = first_batch(augmented)
    assert augmented_labels.equal(plain_labels)  # same images, same order
    assert augmented_images.shape == plain_images.shape
    changed = (augmented_images != plain_images).flatten(1).any(dim=1)
    assert changed.float().mean() > 0.7  # only the unshifted, unflipped ones stay the same


def test_test_loader_keeps_the_data_set_order_and_never_augments():
    _, test_loader = loaders("cifar10", batch_size=50, augment=True)
    assert test_loader.augmentation is None
    images, _ = load_tensors("cifar10", "test")
    first, second = first_batch(test_loader), first_batch(test_loader)
    assert first[0].equal(normalize(images[:50], "cifar10"))
    assert all(a.equal(b) for a, b in zip(first, second, strict=True))


# --- the classic path -------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_classic_loader_gives_the_same_values_as_the_fast_path(name):
    _, classic_test = classic_loaders(name, batch_size=8)
    _, fast_test = loaders(name, batch_size=8)
    classic_images, classic_labels = next(iter(classic_test))
    fast_images, fast_labels = first_batch(fast_test)
    assert classic_labels.equal(fast_labels)
    torch.testing.assert_close(classic_images, fast_images, rtol=0, atol=1e-6)


def test_classic_augmentation_is_the_per_image_form_of_the_fast_one():
    cifar_train, cifar_test = classic_loaders("cifar10", batch_size=4, augment=True)
    steps = cifar_train.dataset.transform.transforms
    assert isinstance(steps[0], transforms.RandomCrop) and steps[0].padding == 4
    assert isinstance(steps[1], transforms.RandomHorizontalFlip)
    test_steps = cifar_test.dataset.transform.transforms
    assert not any(isinstance(step, transforms.RandomCrop) for step in test_steps)
    mnist_train, _ = classic_loaders("mnist", batch_size=4, augment=True)
    steps = mnist_train.dataset.transform.transforms
    assert isinstance(steps[0], transforms.RandomCrop) and steps[0].padding == 2
    assert not any(isinstance(step, transforms.RandomHorizontalFlip) for step in steps)
    images, labels = next(iter(mnist_train))
    assert images.shape == (4, 1, 28, 28) and labels.dtype == torch.int64


# --- where the data and the cache live ----------------------------------------------------------


def test_data_root_is_the_argument_then_mnlib_data_then_the_user_cache(monkeypatch, tmp_path):
    assert data_root(tmp_path) == tmp_path
    monkeypatch.setenv("MNLIB_DATA", "/some/data")
    assert data_root() == Path("/some/data")
    monkeypatch.delenv("MNLIB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_root() == tmp_path / "mnlib" / "data"


def test_each_data_root_gets_its_own_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("MNLIB_CACHE", str(tmp_path))
    first = mnlib.data.cache.cache_dir(Path("/data/a"))
    second = mnlib.data.cache.cache_dir(Path("/data/b"))
    assert first.parent == second.parent == tmp_path and first != second


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST/raw"), ("cifar10", "cifar10/train")])
def test_missing_data_offline_is_a_clear_error(name, folder, tmp_path, no_downloads, monkeypatch):
    monkeypatch.setenv("MNLIB_CACHE", str(tmp_path / "cache"))
    empty_root = tmp_path / "empty"
    empty_root.mkdir()
    with pytest.raises(FileNotFoundError) as error:
        load_tensors(name, "train", root=empty_root)
    message = str(error.value)
    assert str(empty_root / folder) in message
    assert "MNLIB_DATA" in message and "download=True" in message
    assert "offline data folder" in message


def test_cache_file_is_written_to_a_temporary_file_then_renamed(fresh_cache, monkeypatch):
    renames = []
    real_replace = os.replace

    def recording_replace(source, destination):
        renames.append((Path(source), Path(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", recording_replace)
    load_tensors("mnist", "test")
    [(source, destination)] = renames
    assert destination == fresh_cache and source.parent == fresh_cache.parent
    assert source != destination and not source.exists() and destination.exists()


def test_a_crash_while_writing_the_cache_leaves_no_cache_file(fresh_cache, monkeypatch):
    class SimulatedCrash(Exception):
        pass

    def crash_half_way(obj, file):
        file.write(b"PK\x03\x04 only the first bytes of a torch.save archive")
        raise SimulatedCrash

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", crash_half_way)
        with pytest.raises(SimulatedCrash):
            load_tensors("mnist", "test")
    assert list(fresh_cache.parent.iterdir()) == []  # neither the cache file nor a temp file

    images, _ = load_tensors("mnist", "test")  # the next run simply builds it
    assert fresh_cache.exists() and images.shape == (10_000, 1, 28, 28)


def test_a_corrupt_cache_file_is_detected_and_rebuilt(fresh_cache):
    expected_images, expected_labels = load_tensors("mnist", "test")
    fresh_cache.write_bytes(fresh_cache.read_bytes()[:100_000])  # truncated, as by a full disk
    with pytest.warns(UserWarning, match="corrupt"):
        images, labels = load_tensors("mnist", "test")
    assert images.equal(expected_images) and labels.equal(expected_labels)
    torch.load(fresh_cache, weights_only=True)  # the file was rewritten in full


# --- bad input --------------------------------------------------------------------------------


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="mnist, cifar10"):
        loaders("imagenet")
    with pytest.raises(ValueError, match="train, test"):
        load_tensors("mnist", "validation")
    with pytest.raises(ValueError, match="batch_size"):
        loaders("mnist", batch_size=0, subset=100)
    with pytest.raises(TypeError, match="uint8"):
        normalize(torch.zeros(1, 1, 28, 28), "mnist")
