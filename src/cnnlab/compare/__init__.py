"""cnnlab-compare's work: find the runs under the given folders, tabulate and draw them."""
