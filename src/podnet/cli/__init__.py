"""The command line (layer 7): parse arguments, call the layers, print. Nothing else."""
