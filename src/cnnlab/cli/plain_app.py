"""How the argparse entry points (not Hydra apps) end on a user's mistake."""

import os
import sys
from collections.abc import Callable

from cnnlab.errors import UserError


def run_or_exit(prog: str, body: Callable[[], None]) -> None:
    """Run ``body``; a UserError prints ``prog: message`` on stderr and exits with status 2.

    No traceback is shown unless HYDRA_FULL_ERROR=1, the same switch the Hydra commands obey.
    """
    try:
        body()
    except UserError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
