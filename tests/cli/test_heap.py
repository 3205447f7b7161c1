"""The objects alive when training starts are kept out of Python's full garbage collections."""

import gc
import subprocess
import sys

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


def test_the_exit_of_a_command_skips_the_final_collection():
    """The heap is frozen by an exit handler: after the job, not while a caller goes on."""
    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print(gc.get_freeze_count()))  # runs after the later ones\n"
        "from cnnlab.cli.heap import skip_final_collection\n"
        "skip_final_collection()\n"
        "print(gc.get_freeze_count())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    during, at_exit = (int(n) for n in done.stdout.split())
    assert during == 0 and at_exit > 1000
