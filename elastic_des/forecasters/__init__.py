"""Demand forecasters behind one interface
(:class:`elastic_des.engine.forecast.Forecaster`): ``simple`` (SMA, EWMA,
seasonal naive) and the torch networks (``neural``, ``networks``; their
schemas in ``schemas``, so composing a config never imports torch).
:mod:`elastic_des.config` registers the schemas as ``schema_forecaster_<name>``."""
