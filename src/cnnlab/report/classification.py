"""The report's classifier sections: the test split's confusion matrix and per-class recall,
precision and F1, the most confident mistakes with their Grad-CAM, and the first
convolution's filters."""

from html import escape

from cnnlab.errors import UserError
from cnnlab.report import plots
from cnnlab.report.markup import gallery, img, table


def mistake_cams(net, mistakes, names: list[str]) -> list[tuple[bytes, bytes]] | None:
    """For each mistake, Grad-CAM PNGs for the class the network answered and for the true
    one (at the family's ``cam_layer``); None for a network without one."""
    from cnnlab.inference.cam import cam_layer, grad_cam
    from cnnlab.viz.images import heat_tile, tensor_png

    try:
        _, layer = cam_layer(net)
    except UserError:
        return None
    pictures = []
    for m in mistakes:
        x = m.input[None].float()
        tiles = [heat_tile(m.image, grad_cam(net, x, c, layer)) for c in (m.predicted, m.true)]
        pictures.append(tuple(tensor_png(t) for t in tiles))
    return pictures


def mistakes_html(net, tally, names: list[str]) -> str:
    from cnnlab.viz.images import tensor_png

    head = "<h2>Most confident mistakes</h2>"
    if not tally.mistakes:
        return head + "<p>No mistakes on the test split.</p>"
    cams = mistake_cams(net, tally.mistakes, names)
    scale = max(1, 96 // max(m.image.shape[-1] for m in tally.mistakes))
    tiles = []
    for i, m in enumerate(tally.mistakes):
        true, said = escape(names[m.true]), escape(names[m.predicted])
        pictures = img(tensor_png(m.image, scale), f"true {true}, predicted {said}", "pixels")
        if cams is not None:
            pictures += img(cams[i][0], f"Grad-CAM for {said}") + img(
                cams[i][1], f"Grad-CAM for {true}"
            )
        text = f"true <b>{true}</b>, predicted <b>{said}</b><br>confidence {m.confidence:.2f}"
        if cams is not None:
            text += f"<br>Grad-CAM for {said}, for {true}"
        tiles.append((pictures, text))
    if cams is None:
        why = f"{type(net).__name__} declares no Grad-CAM layer, so no heatmaps are drawn."
    else:
        why = (
            "Beside each picture, its Grad-CAM (red: where the evidence was) for the class the "
            "network answered, then for the true class."
        )
    return f"{head}<p>{why}</p>" + gallery(tiles, "mistakes" if cams is None else "mistakes cams")


def filters_html(net) -> str:
    from cnnlab.models.parts import first_conv
    from cnnlab.viz.classification import filter_grid
    from cnnlab.viz.images import tensor_png

    try:
        _, conv = first_conv(net)
    except UserError:
        return "<p>The network has no convolution layer: no filters to show.</p>"
    grid = filter_grid(conv.weight)
    shape = " x ".join(str(d) for d in conv.weight.shape)
    png = tensor_png(grid, scale=max(1, 320 // grid.shape[-1]))
    return (
        f"<h2>First-layer filters</h2><p>The first convolution's weights ({shape}: out x in x "
        "height x width), each filter scaled to its own range.</p>"
        + img(png, "first-layer filters", "pixels")
    )


def per_class_table(tally, names: list[str]) -> str:
    """Recall (the share of a class's images named right), precision (the share of the
    answers naming it that are right), F1 and test images, one row per class."""
    columns = (tally.per_class_recall, tally.per_class_precision, tally.per_class_f1)
    counts = tally.confusion.sum(dim=1)
    rows = [
        [escape(name), *(_score(c[i]) for c in columns), str(int(counts[i]))]
        for i, name in enumerate(names)
    ]
    return table(["class", "recall", "precision", "F1", "images"], rows)


def _score(value) -> str:
    """A score with three decimals, or a dash where it is undefined (NaN)."""
    return "–" if value != value else f"{float(value):.3f}"


def add_classification(result, run, settings) -> None:
    """The classifier's test split (the classification row's ``analysis``)."""
    from cnnlab.report.analysis import names_of
    from cnnlab.report.classifier_results import classify_test_split, normalisation
    from cnnlab.viz.classification import confusion_matrix_image
    from cnnlab.viz.images import tensor_png

    dm, net = run.datamodule, run.module.net
    names = names_of(dm, dm.num_classes)
    mean, std = normalisation(dm)
    loader = dm.test_dataloader()
    tally = classify_test_split(net, loader, dm.num_classes, mean, std, settings.max_images)
    result.test_images = tally.images
    recall = tally.per_class_recall
    where = f"the {tally.images} test images, with {escape(result.checkpoint.name)}"
    matrix_png = tensor_png(confusion_matrix_image(tally.confusion, names))
    result.sections += [
        f"<h2>Test split</h2><p>Accuracy {tally.accuracy:.4f} on {where}.</p>"
        f"<p>Balanced accuracy {tally.balanced_accuracy:.4f} (the mean of the per-class "
        f"recalls), macro F1 {tally.macro_f1:.4f}: every class counts alike, however many "
        "images it has.</p>"
        f'<div class="row">{img(matrix_png, "confusion matrix")}'
        f"{per_class_table(tally, names)}</div>"
        + img(plots.per_class_png(recall, names), "recall per class"),
        mistakes_html(net, tally, names),
        filters_html(net),
    ]
