"""`podnet exec`: what a target (NS/POD, node/NAME, internet) enters, the resolv.conf kubelet
would give it, and the fresh interpreter that enters the namespace and execs the command."""
