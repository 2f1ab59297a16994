"""The train command's options: parsing, checking, and the run settings they give."""
import argparse

from .. import cli
from ..data import TEST_SET_SIZE, TRAIN_SET_SIZE
from ..engine import ENGINES
from ..exercises import learner
from ..models import MODEL_NAMES, TRAINING_DEFAULTS
from ..optim import OPTIMIZERS

# Options that define a run; a resumed run takes them from its checkpoint.
RUN_OPTIONS = ("model", "batch_size", "lr", "optimizer", "lr_decay", "shift", "rotate", "scale",
               "seed", "dtype", "train_size", "val_size", "loop")


def build_parser():
    defaults = "; ".join(f"{name}: {d['epochs']} epochs, batch {d['batch_size']}, {d['optimizer']} "
                         f"lr {d['lr']:g}" + (f" x{d['lr_decay']:g}/epoch" if d["lr_decay"] != 1 else "")
                         + "".join(f", {part}" for part in augmentation_parts(d))
                         for name, d in TRAINING_DEFAULTS.items())
    parser = argparse.ArgumentParser(
        prog="python -m scratchcnn.train",
        description="Train a from-scratch NumPy network on MNIST, then test it on the test set.",
        epilog=f"Defaults per model ({defaults}). A user should not need to tune them. "
               "Ctrl-C stops cleanly after the current step (and saves with --save).")
    add_model_options(parser.add_argument_group("what to train"))
    add_training_options(parser.add_argument_group("how to train (defaults depend on --model)"))
    add_data_options(parser.add_argument_group("data"))
    files = parser.add_argument_group("files")
    files.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) after every epoch")
    files.add_argument("--resume", metavar="PATH",
                       help="continue the run saved in this checkpoint (and keep saving to it "
                            "unless --save says otherwise); --lr, --lr-decay, --shift, --rotate, "
                            "--scale (and --batch-size between epochs) may change, to fine-tune")
    files.add_argument("--metrics", metavar="PATH", help="write the per-epoch and test metrics as JSON")
    files.add_argument("--plot", metavar="PATH", help="write the loss and accuracy curves as a PNG")
    out = parser.add_argument_group("output")
    out.add_argument("--log-every", metavar="N", type=cli.number(int, 0, what="a step count >= 0"), default=0,
                     help="print the tutorial's 'Past N steps' line every N steps (default: "
                          "a round number giving at most 5 lines per epoch)")
    out.add_argument("--quiet", action="store_true", help="print only the epoch summaries and the test result")
    return parser


def augmentation_parts(settings):
    """The augmentation a run uses, in words: e.g. ``["shifts up to 2 px", "turns up to 10
    degrees", "sizes 90% to 110%"]`` (empty without augmentation)."""
    shift, rotate, scale = settings["shift"], settings.get("rotate", 0), settings.get("scale", 0)
    return ([f"shifts up to {shift} px"] if shift else []) + \
           ([f"turns up to {rotate:g} degrees"] if rotate else []) + \
           ([f"sizes {1 - scale:.0%} to {1 + scale:.0%}"] if scale else [])


def add_model_options(group):
    group.add_argument("--model", choices=MODEL_NAMES, default=None,
                       help="seed: the tutorial's Conv3x3(8) -> MaxPool2 -> Softmax (default); "
                            "classic: conv-relu-conv-relu-pool-conv-relu-pool-dense; "
                            "modern: two blocks of (conv-batchnorm-relu) x2-pool, dense-batchnorm-"
                            "relu-dropout, trained on rotated, scaled and shifted images; "
                            "mlp: 784-512-512-10 with dropout")
    group.add_argument("--dtype", choices=("float32", "float64"), default=None,
                       help="parameter and input precision (default float32, faster)")
    group.add_argument("--loop", action="store_true", default=None,
                       help="seed model only: use the tutorial's per-image loop layers "
                            "(scratchcnn.loops) to compare; slow (hours for all 60,000 images: "
                            "the run's time is measured and printed before it starts)")
    group.add_argument("--engine", choices=sorted(ENGINES), default="fast",
                       help="fast (default): batches in parts, on several threads where that pays "
                            "(scratchcnn.engine); plain: the network's own train_step, the whole "
                            "batch on the main thread, to step through in a debugger. Same numbers "
                            "up to float rounding")
    learner.add_option(group, "trained as --model seed is, on the plain engine, saved (--save) as an "
                              "ordinary checkpoint")


def add_training_options(group):
    group.add_argument("--epochs", metavar="N", type=cli.number(int, 0, what="an epoch count >= 0"),
                       help="total epochs (with --resume, including those already done)")
    group.add_argument("--batch-size", metavar="N", type=cli.number(int, 1, what="a batch size >= 1"))
    group.add_argument("--lr", metavar="RATE",
                       help="learning rate (with --resume, a different rate is the resumed "
                            "epoch's, decaying from there)",
                       type=cli.number(float, 0, low_open=True, what="a learning rate > 0"))
    group.add_argument("--optimizer", choices=sorted(OPTIMIZERS))
    group.add_argument("--lr-decay", metavar="FACTOR",
                       type=cli.number(float, 0, 1, low_open=True, what="a factor in (0, 1]"),
                       help="multiply the learning rate by this after every epoch")
    group.add_argument("--shift", metavar="N", type=cli.number(int, 0, 4, what="a pixel count from 0 to 4"),
                       help="augment: move training images by up to this many pixels")
    group.add_argument("--rotate", metavar="DEGREES",
                       type=cli.number(float, 0, 180, what="an angle in degrees from 0 to 180"),
                       help="augment: turn training images by up to this many degrees either way")
    group.add_argument("--scale", metavar="FRACTION",
                       type=cli.number(float, 0, 0.5, what="a fraction from 0 to 0.5"),
                       help="augment: resize training images by up to this fraction (0.1: 90%% to 110%%)")
    group.add_argument("--seed", metavar="N", type=cli.number(int, 0, what="a seed >= 0"),
                       help="seed for the initial weights, shuffling and dropout (default 0)")


def add_data_options(group):
    group.add_argument("--train-size", metavar="N", type=cli.image_count(TRAIN_SET_SIZE),
                       help=f"train on the first N training images (default all {TRAIN_SET_SIZE:,})")
    group.add_argument("--test-size", metavar="N", type=cli.image_count(TEST_SET_SIZE),
                       help=f"test on the first N test images (default all {TEST_SET_SIZE:,})")
    group.add_argument("--val-size", metavar="N", type=cli.image_count(TRAIN_SET_SIZE - 1, low=0),
                       help="hold out N random training images to validate on after each epoch "
                            "(default 0: train on all of them and report the test set each epoch)")
    group.add_argument("--data-dir", metavar="DIR", help=cli.DATA_DIR_HELP)


def parse_args(argv=None):
    """Parsed options; raises ``cli.Usage`` (argparse has printed why, exit code 2) for a bad
    option or a combination that can't work."""
    parser = build_parser()
    args = cli.parse_args(parser, argv)
    if args.loop and args.model not in (None, "seed"):
        cli.refuse(parser, "--loop: loop layers exist only for the seed model")
    learner.refuse_train_conflicts(parser, args)
    if args.train_size and args.val_size and args.train_size + args.val_size > TRAIN_SET_SIZE:
        cli.refuse(parser, f"--train-size {args.train_size:,} plus --val-size {args.val_size:,} is more "
                           f"than the {TRAIN_SET_SIZE:,} training images")
    return args


def run_settings(args):
    """The run's settings: the model's defaults, overridden by the options given."""
    model = args.model or "seed"
    settings = dict(model=model, seed=0, dtype="float32", train_size=None, val_size=0, loop=False,
                    test_size=None, lr_from_epoch=0, **TRAINING_DEFAULTS[model])
    settings.update({key: value for key, value in vars(args).items()
                     if key in settings and value is not None})
    return settings
