"""elastic_des: a discrete-event simulator of GPU inference fleets under autoscaling policies."""

__version__ = "0.1.0"
