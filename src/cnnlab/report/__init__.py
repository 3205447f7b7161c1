"""cnnlab-report's work: one self-contained HTML page about a run (``html.write_report``), read
from its folder (``run_data``) and its restored best checkpoint (``analysis``)."""
