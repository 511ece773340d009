"""``python -m Pyro4.naming`` through geopyro.run: the name server (its own module, so that runpy does not run
``naming`` a second time after the package imported it)."""

from .naming import main

if __name__ == "__main__":
    main()
