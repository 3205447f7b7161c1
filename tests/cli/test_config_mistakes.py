"""Rows 1-4 of the catalogue of bad inputs (docs/errors.md), in-process: a config group name
that does not exist, a value of the wrong type or out of range. Each goes through the function
that ``cnnlab-train`` calls for it (``check_group_choices`` before Hydra writes anything,
``validate`` before the task runs), and the message must name the key as typed and the fix.
test_bad_inputs.py runs one of each kind through the real command, for its exit status."""

import pytest

from cnnlab.cli.app import check_group_choices
from cnnlab.cli.validate import validate
from cnnlab.errors import UserError

UNKNOWN_NAMES = {
    "unknown model": (["model=lenet6"], ["model=lenet6", "Did you mean model=lenet?", "vgg16"]),
    "unknown optimizer": (["optimizer=adamm"], ["optimizer=adamm", "optimizer=adam?", "sgd"]),
    "unknown dataset": (["data=digitz"], ["data=digitz", "data=digits?", "imagefolder"]),
    "unknown experiment": (["experiment=nope"], ["experiment=nope", "digits_resnet18"]),
}

BAD_VALUES = {
    "max_epochs text": (
        ["trainer.max_epochs=abc"],
        ["trainer.max_epochs=abc is not valid", "a whole number", "e.g. trainer.max_epochs="],
    ),
    "batch_size text": (
        ["data.batch_size=abc"],
        ["data.batch_size=abc is not valid", "a whole number", "e.g. data.batch_size="],
    ),
    "lr text": (["optimizer.lr=abc"], ["optimizer.lr=abc is not valid", "e.g. optimizer.lr="]),
    "lr zero": (["optimizer.lr=0"], ["optimizer.lr=0 is not valid", "above 0", "optimizer.lr="]),
    "lr negative": (["optimizer.lr=-0.1"], ["optimizer.lr=-0.1 is not valid", "above 0"]),
    "batch_size zero": (["data.batch_size=0"], ["data.batch_size=0 is not valid", "1 or more"]),
}


@pytest.mark.parametrize("row", UNKNOWN_NAMES)
def test_unknown_name_is_refused_with_the_names_there_are(row):
    args, expected = UNKNOWN_NAMES[row]
    with pytest.raises(UserError) as refused:
        check_group_choices("train", args)
    for text in expected:
        assert text in str(refused.value)


def test_known_names_pass():
    check_group_choices("train", ["model=lenet", "optimizer=adam", "data=digits"])


@pytest.mark.parametrize("row", BAD_VALUES)
def test_bad_value_is_refused_naming_the_key_and_an_example(make_cfg, row):
    args, expected = BAD_VALUES[row]
    with pytest.raises(UserError) as refused:
        validate(make_cfg(args))
    for text in expected:
        assert text in str(refused.value)


def test_good_values_pass(make_cfg):
    cfg = make_cfg(["optimizer.lr=0.01", "data.batch_size=8", "trainer.max_epochs=-1"])
    assert validate(cfg) is None  # no UserError: -1 is the documented "no limit"
