"""Lightning callbacks of cnnlab's own."""
