"""The command line: one module per command (podnet.cli.<command>), plus `live` (what the
commands on a running cluster share), `common` (manifest arguments), `resources` (kubectl's
resource names) and `output`. Parse arguments, call the layers, print. Nothing else."""
