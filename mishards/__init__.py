"""The Mishards proxy, and the ``mishards`` command."""
