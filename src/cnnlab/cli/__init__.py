"""The command-line entry points, and nothing else: each parses its arguments (a Hydra config or
argparse), calls the library (``factory``, ``inference``, ``report``, ``compare``, ``summary``)
and reports. Nothing outside this package imports it."""
