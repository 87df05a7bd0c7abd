"""mnlib.data: decoded splits, the cache, the validation split, the loaders, augmentation.

Needs the course's offline data: MNLIB_DATA must point at it (CI sets MNLIB_DATA=../shared/data).
The decoded arrays are cached in a temporary folder, so each data set is decoded once per run.
Tests that involve a device run on the CPU and, when there is one, on the GPU.
"""

import os
import re
import shutil
import struct
import warnings
import zipfile
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision.datasets.cifar
import torchvision.datasets.mnist
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import RandomSampler, SequentialSampler
from torchvision import transforms

import mnlib.data.cache
from mnlib.data import (
    AUGMENTATIONS,
    CLASS_NAMES,
    DATASETS,
    MEAN,
    STD,
    Loaders,
    ShiftFlip,
    TensorLoader,
    balanced_subset,
    classic_loaders,
    data_root,
    load_tensors,
    loaders,
    normalize,
    validation_split,
)

SPLIT_SHAPES = {
    ("mnist", "train"): (60_000, 1, 28, 28),
    ("mnist", "test"): (10_000, 1, 28, 28),
    ("cifar10", "train"): (50_000, 3, 32, 32),
    ("cifar10", "test"): (10_000, 3, 32, 32),
}
# (train, val, test) images with the default val_size=5000: val is carved out of train.
DEFAULT_SIZES = {"mnist": (55_000, 5_000, 10_000), "cifar10": (45_000, 5_000, 10_000)}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", DATASETS)
def test_batches_are_normalized_float_images_on_the_device(name, device):
    train, val, test = loaders(name, batch_size=4096, device=device)
    assert (train.dataset_size, val.dataset_size, test.dataset_size) == DEFAULT_SIZES[name]
    images, labels = next(iter(train))
    channels, height, width = SPLIT_SHAPES[name, "train"][1:]
    assert images.shape == (4096, channels, height, width) and images.dtype == torch.float32
    assert labels.shape == (4096,) and labels.dtype == torch.int64
    # "cuda" asked for, "cuda:0" held: the loader reports the tensors' own device.
    assert images.device == train.device == labels.device == val.device == test.device
    assert train.device.type == device
    assert abs(images.mean().item()) < 0.05
    assert abs(images.std().item() - 1) < 0.05


def test_loaders_returns_train_val_and_test_as_a_named_tuple():
    result = loaders("mnist", batch_size=64, subset=1000, val_size=500, test_subset=300)
    assert isinstance(result, Loaders) and result._fields == ("train", "val", "test")
    train, val, test = result
    assert all(isinstance(loader, TensorLoader) for loader in result)
    assert (train.dataset_size, val.dataset_size, test.dataset_size) == (1000, 500, 300)
    assert train.shuffle and not val.shuffle and not test.shuffle


def test_an_epoch_yields_every_image_once_in_len_batches():
    train, _, test = loaders("mnist", batch_size=64, subset=1000, test_subset=500)
    assert (train.dataset_size, len(train), train.batch_size) == (1000, 16, 64)
    assert (test.dataset_size, len(test)) == (500, 8)
    batches = list(train)
    assert len(batches) == 16 and len(batches[-1][1]) == 1000 - 15 * 64
    epoch_labels = torch.cat([labels for _, labels in batches]).cpu()
    assert epoch_labels.sort().values.equal(train.labels.cpu().sort().values)


def first_batch(loader):
    images, labels = next(iter(loader))
    return images.cpu(), labels.cpu()


def assert_normalized_equal(actual, expected):
    """Bit for bit on the CPU; a GPU may round the float arithmetic differently (~1 ulp)."""
    if actual.device.type == "cpu":
        assert actual.equal(expected)
    else:
        torch.testing.assert_close(actual.cpu(), expected)


def test_every_epoch_is_reshuffled_and_depends_only_on_seed_and_epoch():
    rng_state = torch.get_rng_state()
    loader = loaders("mnist", batch_size=100, subset=1000, seed=0).train
    epoch0, epoch1 = first_batch(loader), first_batch(loader)  # iterating advances the epoch
    assert loader.epoch == 2
    assert not epoch0[1].equal(epoch1[1])

    replay = loaders("mnist", batch_size=100, subset=1000, seed=0).train
    replay.set_epoch(1)
    assert all(a.equal(b) for a, b in zip(first_batch(replay), epoch1, strict=True))
    replay.set_epoch(0)
    assert all(a.equal(b) for a, b in zip(first_batch(replay), epoch0, strict=True))

    other_seed = loaders("mnist", batch_size=100, subset=1000, seed=1).train
    other_seed.set_epoch(0)
    assert not first_batch(other_seed)[0].equal(epoch0[0])
    assert torch.get_rng_state().equal(rng_state), "the loader must not touch the global RNG"


# --- the validation split and subsets -----------------------------------------------------------


def test_validation_split_is_class_balanced_disjoint_and_leaves_the_rest_for_training():
    _, labels = load_tensors("mnist", "train")
    train_indices, val_indices = validation_split(labels, 5003, num_classes=10, split_seed=0)
    assert torch.bincount(labels[val_indices], minlength=10).tolist() == [501] * 3 + [500] * 7
    assert not set(train_indices.tolist()) & set(val_indices.tolist())  # no image in both
    every_index = torch.cat([train_indices, val_indices]).sort().values
    assert every_index.equal(torch.arange(60_000))
    assert train_indices.equal(train_indices.sort().values)
    assert val_indices.equal(val_indices.sort().values)


def test_validation_split_depends_only_on_labels_val_size_and_split_seed():
    _, labels = load_tensors("mnist", "train")
    train_indices, val_indices = validation_split(labels, 5000, num_classes=10, split_seed=0)
    again = validation_split(labels, 5000, num_classes=10, split_seed=0)
    assert again[0].equal(train_indices) and again[1].equal(val_indices)
    assert not validation_split(labels, 5000, num_classes=10, split_seed=1)[1].equal(val_indices)
    smaller = validation_split(labels, 1000, num_classes=10, split_seed=0)[1]
    assert set(smaller.tolist()) <= set(val_indices.tolist())  # a smaller split is nested


def test_loaders_carve_validation_and_training_images_from_the_training_split():
    images, labels = load_tensors("mnist", "train")
    train_indices, val_indices = validation_split(labels, 5000, num_classes=10, split_seed=0)
    train, val, _ = loaders("mnist", subset=1000, device="cpu")
    assert val.images.equal(images[val_indices]) and val.labels.equal(labels[val_indices])
    # subset draws from the training images that are left, never from the validation ones.
    chosen = train_indices[balanced_subset(labels[train_indices], 1000, num_classes=10, seed=0)]
    assert not set(chosen.tolist()) & set(val_indices.tolist())
    assert train.images.equal(images[chosen]) and train.labels.equal(labels[chosen])
    assert torch.bincount(train.labels, minlength=10).tolist() == [100] * 10


def test_the_validation_split_does_not_depend_on_seed_but_on_split_seed():
    seed0 = loaders("mnist", subset=1000, seed=0, device="cpu")
    seed1 = loaders("mnist", subset=1000, seed=1, device="cpu")
    assert seed1.val.images.equal(seed0.val.images) and seed1.val.labels.equal(seed0.val.labels)
    assert seed1.test.images.equal(seed0.test.images)
    assert not seed1.train.images.equal(seed0.train.images)  # seed picks the training subset
    other_split = loaders("mnist", subset=1000, seed=0, split_seed=1, device="cpu")
    assert not other_split.val.images.equal(seed0.val.images)


@pytest.mark.parametrize("name", DATASETS)
def test_subset_may_take_every_training_image_left_after_the_validation_split(name):
    train_size = DEFAULT_SIZES[name][0]
    everything = loaders(name, device="cpu").train
    subset = loaders(name, subset=train_size, device="cpu").train
    assert subset.dataset_size == train_size
    assert subset.labels.equal(everything.labels) and subset.images.equal(everything.images)


def test_balanced_subset_is_exact_seeded_and_deterministic():
    _, labels = load_tensors("mnist", "train")
    chosen = balanced_subset(labels, 1005, num_classes=10, seed=0)
    assert torch.bincount(labels[chosen], minlength=10).tolist() == [101] * 5 + [100] * 5
    assert chosen.equal(balanced_subset(labels, 1005, num_classes=10, seed=0))
    assert not chosen.equal(balanced_subset(labels, 1005, num_classes=10, seed=1))
    test = loaders("mnist", test_subset=200).test
    assert torch.bincount(test.labels.cpu(), minlength=10).tolist() == [20] * 10


def test_balanced_subset_takes_all_of_a_small_class_and_shares_the_rest_equally():
    _, labels = load_tensors("mnist", "train")  # MNIST's classes hold 5421 to 6742 images
    counts = torch.bincount(labels, minlength=10)
    chosen = balanced_subset(labels, 58_000, num_classes=10, seed=0)
    picked = torch.bincount(labels[chosen], minlength=10)
    assert len(chosen.unique()) == 58_000
    exhausted = picked == counts
    assert exhausted[counts.argmin()]  # the smallest class gives all it has
    shared = picked[~exhausted]
    assert shared.max() - shared.min() <= 1 and shared.min() >= counts[exhausted].max()
    assert balanced_subset(labels, 60_000, num_classes=10, seed=0).equal(torch.arange(60_000))


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"val_size": 5}, ValueError, "val_size >= 10"),
        ({"val_size": 59_000}, ValueError, "val_size=59000 takes 5900 images of class 5"),
        ({"val_size": 5000.0}, TypeError, "val_size must be an int"),
        ({"val_size": None}, TypeError, "val_size must be an int"),
        ({"split_seed": -1}, ValueError, "split_seed must be at least 0"),
        ({"subset": 5}, ValueError, "subset >= 10"),
        ({"subset": 60_000}, ValueError, r"55000 training images left .*\(val_size=5000\)"),
        ({"subset": 1000.0}, TypeError, "subset must be an int"),
        ({"test_subset": 5}, ValueError, "test_subset >= 10"),
        ({"test_subset": 20_000}, ValueError, "test_subset=20000 is more than the 10000"),
        ({"batch_size": 32.0}, TypeError, r"batch_size must be an int; got 32.0 \(float\)"),
        ({"batch_size": True}, TypeError, r"batch_size must be an int; got True \(bool\)"),
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
        ({"augment": "yes"}, TypeError, "augment must be True or False"),
    ],
)
@pytest.mark.parametrize("make_loaders", [loaders, classic_loaders])
def test_bad_loader_arguments_are_errors_when_the_loaders_are_made(
    make_loaders, arguments, error, message
):
    with pytest.raises(error, match=message):
        make_loaders("mnist", **arguments)


def test_tensor_loader_checks_its_arguments_when_it_is_made():
    images, labels = torch.zeros(10, 1, 28, 28, dtype=torch.uint8), torch.zeros(10).long()
    for bad, message in [
        ({"batch_size": 32.0}, "batch_size must be an int"),
        ({"batch_size": True}, "batch_size must be an int"),
        ({"seed": "0"}, "seed must be an int"),
        ({"shuffle": 1}, "shuffle must be True or False"),
    ]:
        arguments = {"name": "mnist", "batch_size": 4, "shuffle": False, **bad}
        with pytest.raises(TypeError, match=message):
            TensorLoader(images, labels, **arguments)
    loader = TensorLoader(images, labels, name="mnist", batch_size=4, shuffle=False)
    with pytest.raises(TypeError, match="epoch must be an int"):
        loader.set_epoch(1.0)


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
    plain = loaders(name, batch_size=100, subset=500, seed=3).train
    augmented = loaders(name, batch_size=100, subset=500, seed=3, augment=True).train
    plain_images, plain_labels = first_batch(plain)
    augmented_images, augmented_labels = first_batch(augmented)
    assert augmented_labels.equal(plain_labels)  # same images, same order
    assert augmented_images.shape == plain_images.shape
    changed = (augmented_images != plain_images).flatten(1).any(dim=1)
    assert changed.float().mean() > 0.7  # only the unshifted, unflipped ones stay the same


@pytest.mark.parametrize("device", DEVICES)
def test_val_and_test_loaders_keep_the_data_set_order_and_never_augment(device):
    train, val, test = loaders("cifar10", batch_size=50, augment=True, device=device)
    assert train.augmentation is not None
    assert val.augmentation is None and test.augmentation is None
    images, labels = load_tensors("cifar10", "train")
    _, val_indices = validation_split(labels, 5000, num_classes=10, split_seed=0)
    test_images, _ = load_tensors("cifar10", "test")
    for loader, expected in [(val, images[val_indices[:50]]), (test, test_images[:50])]:
        first_images, first_labels = next(iter(loader))
        second_images, second_labels = next(iter(loader))  # the next epoch: the same batch
        assert_normalized_equal(first_images, normalize(expected, "cifar10"))
        assert first_images.equal(second_images) and first_labels.equal(second_labels)


# --- the classic path -------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", DATASETS)
def test_classic_loader_gives_the_same_values_as_the_fast_path(name, device):
    classic_test = classic_loaders(name, batch_size=8).test
    fast_test = loaders(name, batch_size=8, device=device).test
    classic_images, classic_labels = next(iter(classic_test))
    fast_images, fast_labels = first_batch(fast_test)
    assert classic_labels.equal(fast_labels)
    torch.testing.assert_close(classic_images, fast_images, rtol=0, atol=1e-6)


def test_classic_loaders_use_the_same_split_as_the_fast_ones():
    arguments = {"subset": 1000, "val_size": 500, "test_subset": 200, "seed": 2, "split_seed": 3}
    fast = loaders("mnist", device="cpu", **arguments)
    classic = classic_loaders("mnist", **arguments)
    for fast_loader, classic_loader in zip(fast, classic, strict=True):
        dataset = classic_loader.dataset
        assert dataset.targets == fast_loader.labels.tolist()
        assert torch.from_numpy(dataset.data).equal(fast_loader.images[:, 0])  # [N, 28, 28]
    assert isinstance(classic.train.sampler, RandomSampler)
    assert isinstance(classic.val.sampler, SequentialSampler)
    assert isinstance(classic.test.sampler, SequentialSampler)


def test_classic_augmentation_is_the_per_image_form_of_the_fast_one():
    cifar = classic_loaders("cifar10", batch_size=4, augment=True)
    steps = cifar.train.dataset.transform.transforms
    assert isinstance(steps[0], transforms.RandomCrop) and steps[0].padding == 4
    assert isinstance(steps[1], transforms.RandomHorizontalFlip)
    for loader in (cifar.val, cifar.test):
        assert not any(
            isinstance(step, transforms.RandomCrop) for step in loader.dataset.transform.transforms
        )
    mnist_train = classic_loaders("mnist", batch_size=4, augment=True).train
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
    assert_loads_quietly("mnist", "test")  # the file was rewritten in full


def assert_loads_quietly(name, split, root=None):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_tensors(name, split, root=root)


def record_offset(path, size):
    """Where the bytes of the one ``size``-byte record of a ``torch.save`` zip archive start."""
    with zipfile.ZipFile(path) as archive:
        [record] = [info for info in archive.infolist() if info.file_size == size]
    with open(path, "rb") as file:
        file.seek(record.header_offset)
        local_header = file.read(30)
    name_length, extra_length = struct.unpack("<HH", local_header[26:30])
    return record.header_offset + 30 + name_length + extra_length


def test_cached_pixels_altered_on_disk_are_detected_and_rebuilt(fresh_cache):
    expected_images, expected_labels = load_tensors("mnist", "test")
    pixels = record_offset(fresh_cache, 10_000 * 28 * 28)
    with open(fresh_cache, "r+b") as file:  # 4 KB of pixels inverted, the archive still valid
        file.seek(pixels + 200_000)
        block = file.read(4096)
        file.seek(pixels + 200_000)
        file.write(bytes(255 - value for value in block))
    with pytest.warns(UserWarning, match=rf"{re.escape(str(fresh_cache))} is corrupt: its content"):
        images, labels = load_tensors("mnist", "test")
    assert images.equal(expected_images) and labels.equal(expected_labels)
    assert_loads_quietly("mnist", "test")


def test_cached_labels_altered_on_disk_are_detected_and_rebuilt(fresh_cache):
    _, expected_labels = load_tensors("mnist", "test")
    labels_start = record_offset(fresh_cache, 10_000 * 8)  # int64, little-endian
    with open(fresh_cache, "r+b") as file:  # 100 labels changed into other valid labels
        for index in range(100):
            file.seek(labels_start + 8 * index)
            file.write(bytes([(int(expected_labels[index]) + 1) % 10]))
    with pytest.warns(UserWarning, match=rf"{re.escape(str(fresh_cache))} is corrupt"):
        _, labels = load_tensors("mnist", "test")
    assert labels.equal(expected_labels)


def test_a_cache_file_from_an_older_mnlib_is_rebuilt(fresh_cache):
    images, labels = load_tensors("mnist", "test")
    torch.save({"images": images, "labels": labels}, fresh_cache)  # the format before checks
    with pytest.warns(UserWarning, match="another format"):
        load_tensors("mnist", "test")
    assert torch.load(fresh_cache, weights_only=True)["format"] == mnlib.data.cache.CACHE_FORMAT


@pytest.fixture
def mnist_test_copy(tmp_path, monkeypatch):
    """A data root holding a copy of MNIST's two test files, with an empty cache."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copyfile(data_root() / "MNIST" / "raw" / file, raw / file)
    monkeypatch.setenv("MNLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


def test_a_changed_source_file_rebuilds_the_cache(mnist_test_copy):
    _, labels = load_tensors("mnist", "test", root=mnist_test_copy)
    labels_file = mnist_test_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    content = bytearray(labels_file.read_bytes())
    content[8] = (content[8] + 1) % 10  # the first label (after the 8-byte header)
    labels_file.write_bytes(content)
    modified = labels_file.stat().st_mtime_ns + 1_000_000_000  # even where clocks are coarse
    os.utime(labels_file, ns=(modified, modified))
    with pytest.warns(UserWarning, match="source files that have changed"):
        _, new_labels = load_tensors("mnist", "test", root=mnist_test_copy)
    assert new_labels[0] == (labels[0] + 1) % 10 and new_labels[1:].equal(labels[1:])
    assert_loads_quietly("mnist", "test", root=mnist_test_copy)


def test_the_same_data_through_a_symbolic_link_reuses_the_cache(mnist_test_copy, tmp_path):
    # CI reaches the data through ../shared, a link: that is no reason to rebuild the cache.
    load_tensors("mnist", "test", root=mnist_test_copy)
    link = tmp_path / "linked-data"
    link.symlink_to(mnist_test_copy, target_is_directory=True)
    assert_loads_quietly("mnist", "test", root=link)


def test_a_truncated_idx_file_is_named_in_the_error(mnist_test_copy, no_downloads):
    images_file = mnist_test_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    images_file.write_bytes(images_file.read_bytes()[:-4096])
    with pytest.raises(ValueError, match=rf"{re.escape(str(images_file))} is truncated") as error:
        load_tensors("mnist", "test", root=mnist_test_copy)
    assert "internet" not in str(error.value)


def test_a_file_that_is_not_an_idx_file_is_named_in_the_error(mnist_test_copy, no_downloads):
    labels_file = mnist_test_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels_file.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ValueError, match=rf"{re.escape(str(labels_file))} is corrupt or not an"):
        load_tensors("mnist", "test", root=mnist_test_copy)


@pytest.fixture
def tiny_cifar_root(tmp_path, monkeypatch):
    """A CIFAR-10 JPEG tree with one grey 32x32 image per class in ``test``."""
    for class_name in CLASS_NAMES["cifar10"]:
        folder = tmp_path / "data" / "cifar10" / "test" / class_name
        folder.mkdir(parents=True)
        Image.new("RGB", (32, 32), "grey").save(folder / "0000.jpg")
    monkeypatch.setenv("MNLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


def test_a_truncated_jpeg_is_named_in_the_error(tiny_cifar_root):
    broken = tiny_cifar_root / "cifar10" / "test" / "cat" / "0000.jpg"
    broken.write_bytes(broken.read_bytes()[:300])
    with pytest.raises(ValueError, match=rf"cannot decode {re.escape(str(broken))}.*truncated"):
        load_tensors("cifar10", "test", root=tiny_cifar_root)


def test_a_jpeg_of_the_wrong_size_is_named_in_the_error(tiny_cifar_root):
    wrong = tiny_cifar_root / "cifar10" / "test" / "dog" / "0000.jpg"
    Image.new("RGB", (28, 28), "grey").save(wrong)
    with pytest.raises(ValueError, match=rf"{re.escape(str(wrong))} is 28x28 pixels"):
        load_tensors("cifar10", "test", root=tiny_cifar_root)


def test_an_unwritable_cache_folder_warns_once_and_loads_without_the_cache(tmp_path, monkeypatch):
    in_the_way = tmp_path / "a-file"  # a file where the cache folder should be
    in_the_way.write_text("not a folder")
    monkeypatch.setenv("MNLIB_CACHE", str(in_the_way / "cache"))
    with pytest.warns(UserWarning, match="cannot write the data cache .*loading without the cache"):
        images, labels = load_tensors("mnist", "test")
    assert images.shape == (10_000, 1, 28, 28) and labels[:3].tolist() == [7, 2, 1]
    again, _ = assert_loads_quietly("mnist", "test")  # one warning per folder, not per load
    assert again.equal(images)


# --- bad input --------------------------------------------------------------------------------


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="mnist, cifar10"):
        loaders("imagenet")
    with pytest.raises(ValueError, match="train, test"):
        load_tensors("mnist", "validation")
    with pytest.raises(TypeError, match="uint8"):
        normalize(torch.zeros(1, 1, 28, 28), "mnist")
