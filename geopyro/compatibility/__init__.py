"""Other Pyro APIs on geopyro: ``geopyro.compatibility.Pyro4`` is Pyro4's."""
