"""The objects alive when training starts are kept out of Python's full garbage collections."""

import gc

from cnnlab.cli.heap import frozen_heap


def test_frozen_heap_freezes_what_exists_and_hands_it_back():
    before = gc.get_freeze_count()
    alive = [object() for _ in range(1000)]
    with frozen_heap():
        assert gc.get_freeze_count() >= before + len(alive)
        gc.collect()  # a full collection inside leaves the frozen objects where they are
        assert gc.get_freeze_count() >= before + len(alive)
    assert gc.get_freeze_count() == 0


def test_frozen_heap_hands_back_on_an_exception():
    try:
        with frozen_heap():
            raise RuntimeError("training failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
