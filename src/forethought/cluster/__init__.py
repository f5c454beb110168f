"""The cluster: hosts, VMs, power models, and the backend protocol the control loop drives."""
