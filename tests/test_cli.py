"""``scratchcnn.cli``: what the command lines share, so they refuse and fail alike."""
import argparse

import numpy as np
import pytest

from scratchcnn import cli
from scratchcnn.data import TEST_SET_SIZE, TRAIN_SET_SIZE
from scratchcnn.models import build_model


def parser_with(**types):
    parser = argparse.ArgumentParser(prog="prog")
    for name, kind in types.items():
        parser.add_argument(f"--{name}", type=kind)
    return parser


def test_set_sizes_are_mnists():
    assert (TRAIN_SET_SIZE, TEST_SET_SIZE) == (60_000, 10_000)


@pytest.mark.parametrize("argv, code, message", [
    (["--n", "5"], None, None),
    (["--n", "0"], 2, "argument --n: 0 is not from 1 to 10"),
    (["--n", "11"], 2, "argument --n: 11 is not from 1 to 10"),
    (["--n", "2.5"], 2, "argument --n: expected an integer, got '2.5'"),
    (["--rate", "0"], 2, "argument --rate: 0.0 is not a rate > 0"),
    (["--rate", "inf"], 2, "argument --rate: inf is not a rate > 0"),
    (["--unknown"], 2, "unrecognized arguments: --unknown"),
    (["--help"], 0, None),
])
def test_parse_args_returns_the_code_instead_of_exiting(argv, code, message, capsys):
    parser = parser_with(n=cli.image_count(10), rate=cli.number(float, 0, low_open=True, what="a rate > 0"))
    if code is None:
        assert cli.parse_args(parser, argv).n == 5
        return
    with pytest.raises(cli.Usage) as usage:
        cli.parse_args(parser, argv)
    assert usage.value.code == code
    if message:
        err = capsys.readouterr().err
        assert err.startswith("usage: prog") and f"prog: error: {message}\n" in err


def test_refuse_reads_like_argparse(capsys):
    parser = parser_with()
    with pytest.raises(SystemExit):
        parser.error("these two clash")
    argparse_says = capsys.readouterr().err
    with pytest.raises(cli.Usage) as usage:
        cli.refuse(parser, "these two clash")
    assert usage.value.code == cli.EXIT_USAGE and capsys.readouterr().err == argparse_says


def test_fail_prints_the_error_and_returns_1(capsys):
    assert cli.fail(ValueError("no such file")) == cli.EXIT_ERROR == 1
    assert capsys.readouterr().err == "error: no such file\n"


def test_network_dtype():
    assert cli.network_dtype(build_model("seed", np.float64)) == np.float64
    assert cli.network_dtype(build_model("mlp")) == np.float32
