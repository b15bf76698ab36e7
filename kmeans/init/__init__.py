"""Initializers: how the first centers are chosen (see :class:`kmeans.protocols.Initializer`)."""
