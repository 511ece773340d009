"""A pretend third party library: it knows nothing about geopyro."""


class Reading:
    def __init__(self, city, celsius):
        self.city = city
        self.celsius = celsius


class Station:
    def __init__(self):
        self._data = {"Oslo": -3.5, "Lisbon": 17.0, "Nairobi": 24.5}

    def cities(self):
        return sorted(self._data)

    def temperature(self, city):
        return self._data[city]

    def reading(self, city):
        return Reading(city, self._data[city])

    @property
    def warmest(self):
        return max(self._data, key=self._data.get)

    def _calibrate(self):
        return "internal"
