import pytest
import torch

from aelab.probe import labelled_subset


def test_picks_per_class_examples_of_every_class_grouped_by_class():
    labels = torch.arange(4).repeat(25)  # 25 of each of 4 classes, interleaved
    idx = labelled_subset(labels, per_class=3, seed=1)
    assert idx.dtype == torch.int64 and idx.shape == (12,)
    assert labels[idx].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert len(set(idx.tolist())) == 12, "drawn without replacement"


def test_same_seed_same_examples_other_seed_others():
    labels = torch.arange(10).repeat(100)
    assert torch.equal(labelled_subset(labels, 10, seed=3), labelled_subset(labels, 10, seed=3))
    assert not torch.equal(labelled_subset(labels, 10, seed=3), labelled_subset(labels, 10, seed=4))


def test_does_not_touch_the_global_random_state():
    labels = torch.arange(10).repeat(20)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    labelled_subset(labels, 5, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_follows_the_device_of_the_labels():
    labels = torch.arange(3).repeat(5)
    assert labelled_subset(labels, 2).device == labels.device


def test_num_classes_and_bad_input():
    labels = torch.tensor([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="class 2 has 1"):
        labelled_subset(labels, per_class=2)
    with pytest.raises(ValueError, match="class 3 has 0"):
        labelled_subset(torch.tensor([0, 1, 2, 0, 1, 2]), per_class=1, num_classes=4)
    assert labelled_subset(torch.tensor([0, 1, 2, 0, 1, 2]), per_class=1, num_classes=2).shape == (2,)
    with pytest.raises(ValueError, match="per_class"):
        labelled_subset(labels, per_class=0)
    with pytest.raises(TypeError):
        labelled_subset(labels.float(), per_class=1)
