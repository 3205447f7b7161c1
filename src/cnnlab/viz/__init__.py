"""Drawing, in one place: image grids and captions (``images``), boxes (``boxes``), masks
(``masks``), a classifier's pictures (``classification``), the report's drawn test predictions
(``samples``) and the update rules' paths (``paths``). TensorBoard images, predict and the
report all draw with these, so a box or a mask looks the same everywhere."""
