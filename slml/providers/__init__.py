"""Deployment targets behind one protocol (``slml.providers.base``), found through the
``slml.providers`` entry point group (``slml.providers.registry``)."""
