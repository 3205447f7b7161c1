"""cnnlab-optviz: the paths of the six textbook update rules on 2-D test functions, as PNGs."""

import argparse
from pathlib import Path

from cnnlab.cli.plain_app import run_or_exit
from cnnlab.errors import UserError

PROG = "cnnlab-optviz"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from cnnlab.optim.testfunctions import OBJECTIVES

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Draw the paths of SGD, Momentum, AdaGrad, RMSProp, Adam and Adadelta over the "
        "contour lines of 2-D test functions: one PNG per function (optviz_<function>.png).",
    )
    parser.add_argument(
        "--function",
        choices=[*OBJECTIVES, "all"],
        default="all",
        help="which function to draw (default: all)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="update steps per rule (default: each function's own, 80 and 1000)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("."), help="folder for the pictures (default: .)"
    )
    parser.add_argument("--gif", action="store_true", help="also write an animated GIF each")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be at least 1, not {args.steps}")
    return args


def visualize(
    names: list[str], out: Path, steps: int | None = None, gif: bool = False
) -> list[Path]:
    """Run every rule on every named function, draw the pictures; return the files written."""
    from cnnlab.optim.testfunctions import OBJECTIVES
    from cnnlab.optim.trajectory import descend, textbook_rules
    from cnnlab.viz.paths import animate_paths, draw_paths

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"Cannot write pictures into {out}: {e.strerror}. Give --out DIR.") from e
    rules = textbook_rules()
    written = []
    for name in names:
        objective = OBJECTIVES[name]
        n = steps or objective.steps
        paths = {
            rule: descend(objective, cls, objective.lrs[rule], n).numpy()
            for rule, cls in rules.items()
        }
        for rule, path in paths.items():
            x, y = path[-1]
            print(
                f"{name:>10} {rule:<8} lr={objective.lrs[rule]:<7g} "
                f"{len(path) - 1:>5} steps -> ({x:+.4f}, {y:+.4f}) f={objective.f(x, y):.3g}"
            )
        written.append(draw_paths(objective, paths, n, out / f"optviz_{name}.png"))
        if gif:
            target = out / f"optviz_{name}.gif"
            written.append(animate_paths(objective, paths, n, target))
    return written


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from cnnlab.optim.testfunctions import OBJECTIVES

    names = list(OBJECTIVES) if args.function == "all" else [args.function]

    def body() -> None:
        for path in visualize(names, args.out, args.steps, args.gif):
            print(f"wrote {path}")

    run_or_exit(PROG, body)


if __name__ == "__main__":
    main()
