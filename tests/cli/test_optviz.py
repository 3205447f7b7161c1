"""cnnlab-optviz: the paths tell the lecture's story, and the pictures are written."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.optviz import main
from cnnlab.optim.testfunctions import OBJECTIVES, QUADRATIC, ROSENBROCK
from cnnlab.optim.trajectory import descend, textbook_rules

RULES = textbook_rules()


def path_of(objective, rule: str, lr: float | None = None, steps: int | None = None) -> np.ndarray:
    lr = objective.lrs[rule] if lr is None else lr
    return descend(objective, RULES[rule], lr, steps or objective.steps).numpy()


def value(objective, point) -> float:
    return float(objective.f(*point))


def test_every_function_has_a_rate_for_every_rule():
    for objective in OBJECTIVES.values():
        assert list(objective.lrs) == list(RULES)
    assert list(RULES) == ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam", "Adadelta"]


@pytest.mark.parametrize("rule", list(RULES))
def test_every_rule_descends_the_quadratic(rule):
    path = path_of(QUADRATIC, rule)
    assert path.shape == (QUADRATIC.steps + 1, 2)
    assert path[0].tolist() == list(QUADRATIC.start)
    assert value(QUADRATIC, path[-1]) < 0.01 * value(QUADRATIC, path[0])


def test_sgd_zigzags_across_the_narrow_valley():
    y = path_of(QUADRATIC, "SGD")[:, 1]
    assert np.all(y[1:] * y[:-1] < 0)  # y changes sign at every step
    assert np.all(np.diff(np.abs(y)) < 0)  # ... and still shrinks: the rate is just stable


def test_momentum_overshoots_where_sgd_does_not():
    lr = QUADRATIC.lrs["Momentum"]
    momentum, sgd = path_of(QUADRATIC, "Momentum"), path_of(QUADRATIC, "SGD", lr=lr)
    assert not np.allclose(momentum, sgd)
    assert sgd[:, 0].max() < 0  # plain descent creeps towards x = 0 from the left
    assert momentum[:, 0].max() > 1  # the velocity carries it past the minimum ...
    assert value(QUADRATIC, momentum[-1]) < 1e-3 * value(QUADRATIC, momentum[0])  # ... and back


def test_adagrad_goes_straight_down_the_valley():
    y = path_of(QUADRATIC, "AdaGrad")[:, 1]
    assert np.all(y >= 0)  # never crosses the valley floor


def test_on_rosenbrock_sgd_crawls_and_momentum_and_adam_arrive():
    def distance(rule):
        return float(np.hypot(*(path_of(ROSENBROCK, rule)[-1] - np.array(ROSENBROCK.minimum))))

    assert distance("SGD") > 1
    assert distance("Momentum") < 0.05 and distance("Adam") < 0.05


def test_a_diverging_path_stops_at_its_last_finite_point():
    path = path_of(QUADRATIC, "SGD", lr=10.0, steps=400)
    assert len(path) < 401 and np.isfinite(path).all()


def open_image(path) -> Image.Image:
    assert path.is_file() and path.stat().st_size > 0
    image = Image.open(path)
    image.load()
    return image


def test_pictures_for_every_function(tmp_path, capsys):
    main(["--steps", "15", "--out", str(tmp_path / "pics")])
    for name in OBJECTIVES:
        image = open_image(tmp_path / "pics" / f"optviz_{name}.png")
        assert image.format == "PNG" and image.width > 300
    out = capsys.readouterr().out
    assert "quadratic SGD" in out and "rosenbrock Adam" in out
    assert not list((tmp_path / "pics").glob("*.gif"))


def test_gif_when_asked(tmp_path, monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "quadratic", dataclasses.replace(QUADRATIC, steps=12))
    main(["--function", "quadratic", "--gif", "--out", str(tmp_path)])
    gif = open_image(tmp_path / "optviz_quadratic.gif")
    assert gif.format == "GIF" and gif.n_frames == 13  # steps 0..12, one frame each
    assert (tmp_path / "optviz_quadratic.gif").stat().st_size < 2_000_000
    assert not (tmp_path / "optviz_rosenbrock.png").exists()


def test_bad_arguments_exit_2_without_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--steps", "0"])
    assert exit_info.value.code == 2
    assert "--steps must be at least 1" in capsys.readouterr().err

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(["--function", "quadratic", "--steps", "2", "--out", str(blocker / "pics")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab-optviz: error: Cannot write pictures into ")
    assert "Traceback" not in err
